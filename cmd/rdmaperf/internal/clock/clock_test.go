package clock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNowTracksMonotonic(t *testing.T) {
	Calibrate()
	t0 := time.Now()
	a := Now()
	t1 := time.Now()
	time.Sleep(20 * time.Millisecond)
	t2 := time.Now()
	b := Now()
	t3 := time.Now()
	// b-a lies between t2-t1 and t3-t0 on the monotonic clock; allow a
	// factor of two for the calibration (no timing assumption otherwise).
	d := time.Duration(b - a)
	require.GreaterOrEqual(t, d, t2.Sub(t1)/2, "source %s", Source())
	require.LessOrEqual(t, d, 2*t3.Sub(t0), "source %s", Source())
}

// A stamp read between two Now calls converts to a value between them.
func TestFromStampOrdersWithNow(t *testing.T) {
	for range 1000 {
		a := Now()
		var s uint64
		if TSC() {
			s = rdtsc()
		} else {
			s = uint64(nanotime())
		}
		b := Now()
		v := FromStamp(s)
		require.LessOrEqual(t, a, v, "source %s", Source())
		require.LessOrEqual(t, v, b, "source %s", Source())
	}
}
