// Package layout holds no code: its test checks the rules of the tree's
// shape that issue 8 set (layers that do not import upwards, files of one
// job, shell only to boot the VM, notes on issues rather than in the tree),
// so that a change that breaks one fails CI instead of waiting for a
// reviewer to count lines.
package layout
