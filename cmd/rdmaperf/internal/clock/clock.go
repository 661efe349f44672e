package clock

import (
	"sync"
	"time"
	_ "unsafe" // go:linkname
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

var (
	once      sync.Once
	nsPerTick float64
	base      uint64
	useTSC    bool
)

// Calibrate measures the counter's rate (about 50 ms, once); Now calls it
// on first use, so call it before a measured loop.
func Calibrate() {
	once.Do(func() {
		if !haveTSC {
			return
		}
		t0, c0 := nanotime(), rdtsc()
		time.Sleep(50 * time.Millisecond)
		t1, c1 := nanotime(), rdtsc()
		if c1 <= c0 || t1 <= t0 {
			return
		}
		nsPerTick = float64(t1-t0) / float64(c1-c0)
		base = c0
		useTSC = true
	})
}

// Now returns nanoseconds on a monotonic scale (only differences mean
// anything).
func Now() int64 {
	if useTSC {
		return int64(float64(rdtsc()-base) * nsPerTick)
	}
	Calibrate()
	if useTSC {
		return int64(float64(rdtsc()-base) * nsPerTick)
	}
	return nanotime()
}

// Source names the clock in use ("tsc" or "monotonic").
func Source() string {
	Calibrate()
	if useTSC {
		return "tsc"
	}
	return "monotonic"
}

// TSC reports whether Now reads the CPU's time-stamp counter (after
// calibrating it), so that raw counter readings taken elsewhere (the verbs
// shim's post stamps) can be converted with FromStamp.
func TSC() bool {
	Calibrate()
	return useTSC
}

// FromStamp converts a stamp to Now's scale: a raw time-stamp counter
// reading when TSC is true, else CLOCK_MONOTONIC nanoseconds (which is
// what Now returns then).
func FromStamp(s uint64) int64 {
	if useTSC {
		return int64(float64(s-base) * nsPerTick)
	}
	return int64(s)
}
