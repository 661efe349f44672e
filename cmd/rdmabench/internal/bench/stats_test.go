package bench

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMedian(t *testing.T) {
	require.True(t, math.IsNaN(Median(nil)))
	require.Equal(t, 3.0, Median([]float64{5, 3, 1}))
	require.Equal(t, 2.5, Median([]float64{4, 1, 3, 2}))
	v := []float64{9, 1, 5}
	Median(v)
	require.Equal(t, []float64{9, 1, 5}, v, "Median must not reorder its argument")
}

func TestRatio(t *testing.T) {
	require.Equal(t, 2.0, Ratio(4, 2))
	require.True(t, math.IsNaN(Ratio(4, 0)))
	require.True(t, math.IsNaN(Ratio(math.NaN(), 2)))
	require.Equal(t, "n/a", Num(Ratio(1, 0)))
	require.Equal(t, "1.05", Num(1.049999))
}

func lat(series, test string, size, rep int, typ, avg float64) Result {
	return Result{Series: series, Test: test, Size: size, Rep: rep, Iters: 1000, Row: &Row{Bytes: size, TTypical: typ, TAvg: avg, TMin: typ / 2}}
}

func bw(series, test string, size, rep int, v float64) Result {
	return Result{Series: series, Test: test, Size: size, Rep: rep, Iters: 200, Row: &Row{Bytes: size, BWAvg: v, MsgRate: v / 64}}
}

func TestSetMedianSkipsFailures(t *testing.T) {
	s := NewSet([]Result{
		lat("perftest", "send_lat", 2, 1, 10, 11),
		{Series: "perftest", Test: "send_lat", Size: 2, Rep: 2, Err: "client: exit status 1"},
		lat("perftest", "send_lat", 2, 3, 30, 31),
		lat("perftest", "send_lat", 256, 0, 40, 41),
		{Series: "msgr-rdma-worker", Test: "msgr_lat", Size: 2, Skipped: "no option"},
	})
	k := Key{"perftest", "send_lat", 2}
	require.Equal(t, 20.0, s.Median(k, TTypical))
	require.Equal(t, 21.0, s.Median(k, TAvg))
	require.Equal(t, []int{2, 256}, s.Sizes("send_lat"))
	require.True(t, s.Has(k))
	require.False(t, s.Has(Key{"msgr-rdma-worker", "msgr_lat", 2}))
	require.Equal(t, "no option", s.NotMeasured(Key{"msgr-rdma-worker", "msgr_lat", 2}))
	require.Empty(t, s.SeriesOf("msgr_lat"))
}
