// Package clock is rdmaperf's timestamp source: the runtime's monotonic
// nanosecond clock, read without the wall-clock half that time.Now also
// reads, so a hot loop pays for one vDSO call per timestamp. It must not
// keep state or start goroutines.
package clock

import (
	_ "unsafe" // go:linkname
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Now returns monotonic nanoseconds (only differences are meaningful).
func Now() int64 { return nanotime() }
