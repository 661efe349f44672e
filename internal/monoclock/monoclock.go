// Package monoclock reads the time with one clock read instead of
// time.Now's two.
//
// time.Now reads CLOCK_REALTIME and then CLOCK_MONOTONIC. Where the
// clocksource has no vDSO (qemu TCG, some hypervisors) each read is a
// system call, and a stamp per message shows in a latency profile (issue 9:
// 16 clock_gettime calls per round trip in the rdma ping-pong). Now reads
// only the monotonic clock and derives the wall reading from the process's
// first one, so that durations between stamps (Sub, Since) are exact, and against
// time.Now readings off by a constant well under a microsecond, while
// the wall reading ignores clock steps made after start.
//
// It owns no state but the base reading taken at package initialisation,
// and must not be used where the wall clock itself matters (certificate
// and ticket validity, keepalive timestamps sent to a peer).
package monoclock

import (
	"time"
	_ "unsafe" // go:linkname
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

var base, baseMono = start()

// start pairs a time.Now reading with the monotonic clock read half-way
// between two reads around it: stamps are off by at most half that gap
// (well under a microsecond), the same for every stamp.
func start() (time.Time, int64) {
	t0 := nanotime()
	b := time.Now()
	t1 := nanotime()
	return b, t0 + (t1-t0)/2
}

// Now is time.Now with one monotonic clock read: its monotonic reading is
// exact, its wall reading is the start's plus the monotonic time elapsed.
func Now() time.Time { return base.Add(time.Duration(nanotime() - baseMono)) }
