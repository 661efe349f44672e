package clock

import "time"

// Ticks converts a duration to the unit of raw stamps (see FromStamp): TSC
// ticks when TSC is true, else nanoseconds; for time bounds given to the
// verbs shim (verbs.SpinWait.MaxTicks).
func Ticks(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	if TSC() {
		return uint64(float64(d) / nsPerTick)
	}
	return uint64(d)
}
