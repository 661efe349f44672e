//go:build race

package msgrsuite

// The race detector's shadow memory roughly triples a process's RSS.
const raceEnabled = true
