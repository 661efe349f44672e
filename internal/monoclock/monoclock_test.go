package monoclock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Now lies between two time.Now readings on the monotonic scale, and its
// wall reading stays with the monotonic one.
func TestNowBetweenTimeNow(t *testing.T) {
	const skew = time.Millisecond // start's pairing, with room for a preempted read
	for i := 0; i < 1000; i++ {
		a := time.Now()
		n := Now()
		b := time.Now()
		require.False(t, n.Before(a.Add(-skew)), "monoclock %v before time.Now %v", n, a)
		require.False(t, b.Add(skew).Before(n), "time.Now %v before monoclock %v", b, n)
	}
	n := Now()
	time.Sleep(10 * time.Millisecond)
	d := time.Since(n)
	require.GreaterOrEqual(t, d, 10*time.Millisecond)
	// the wall reading moves with the monotonic one (no wall clock step
	// happens during a test)
	w := Now().Round(0).Sub(n.Round(0))
	require.InDelta(t, float64(d), float64(w), float64(50*time.Millisecond))
}

func TestNowAllocatesNothing(t *testing.T) {
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = Now() }))
}

func BenchmarkNow(b *testing.B) {
	for b.Loop() {
		_ = Now()
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		_ = time.Now()
	}
}
