package bench

import (
	"fmt"
	"math"
	"strconv"
)

// Target is one comparison the report judges: Num's median over Den's,
// against Limit. The ratios are benchmark results, never test assertions.
type Target struct {
	Num, Den Key
	Metric   Metric // of both
	Op       string // "≤", "≥" or ">"
	Limit    float64
	Issue    int // the issue that set it
}

// Met reports whether ratio q meets t; false for NaN.
func (t Target) Met(q float64) bool {
	switch {
	case math.IsNaN(q):
		return false
	case t.Op == "≤":
		return q <= t.Limit
	case t.Op == "≥":
		return q >= t.Limit
	}
	return q > t.Limit
}

// Goal is how the target reads in a table ("≤ 1.05×").
func (t Target) Goal() string {
	return fmt.Sprintf("%s %s×", t.Op, strconv.FormatFloat(t.Limit, 'f', -1, 64))
}

// NotMet is a TargetRow's Met for a ratio measured and short of its goal.
const NotMet = "**no**"

// Row judges t on the medians a (of Num) and b (of Den): the report's row,
// whose Met is "yes", NotMet, or na when either median is missing.
func (t Target) Row(what, against string, a, b float64, na string) TargetRow {
	q := Ratio(a, b)
	row := TargetRow{What: what, Against: against, Value: Num(a), Base: Num(b), Ratio: Num(q), Goal: t.Goal(), Met: "yes"}
	switch {
	case math.IsNaN(q):
		row.Met = na
	case !t.Met(q):
		row.Met = NotMet
	}
	return row
}

// Targets are issue 9's: rdmaperf's raw loops against perftest, and each
// messenger-over-rdma series against perftest and the messenger over posix.
func Targets(msgrRDMA []string) []Target {
	var ts []Target
	for _, t := range []string{"send_lat", "write_lat"} {
		for _, s := range LatPoints {
			p, r := Key{Perftest.Name, t, s}, Key{Rdmaperf.Name, t, s}
			ts = append(ts, Target{Num: r, Den: p, Metric: TTypical, Op: "≤", Limit: 1.05, Issue: 9},
				Target{Num: r, Den: p, Metric: TAvg, Op: "≤", Limit: 1.3, Issue: 9})
		}
	}
	for _, t := range []string{"send_bw", "write_bw"} {
		ts = append(ts, Target{Num: Key{Rdmaperf.Name, t, BWPoint}, Den: Key{Perftest.Name, t, BWPoint}, Metric: BWAvg, Op: "≥", Limit: 0.95, Issue: 9})
	}
	for _, m := range msgrRDMA {
		for _, s := range LatPoints {
			ts = append(ts, Target{Num: Key{m, "msgr_lat", s}, Den: Key{Perftest.Name, "send_lat", s}, Metric: TTypical, Op: "≤", Limit: 1.5, Issue: 9})
		}
		ts = append(ts,
			Target{Num: Key{m, "msgr_lat", LatPoints[0]}, Den: Key{Posix.Name, "msgr_lat", LatPoints[0]}, Metric: TTypical, Op: "≤", Limit: 0.2, Issue: 9},
			Target{Num: Key{m, "msgr_bw", BWPoint}, Den: Key{Perftest.Name, "send_bw", BWPoint}, Metric: BWAvg, Op: "≥", Limit: 0.8, Issue: 9},
			Target{Num: Key{m, "msgr_bw", BWPoint}, Den: Key{Posix.Name, "msgr_bw", BWPoint}, Metric: BWAvg, Op: ">", Limit: 1, Issue: 9})
	}
	return ts
}

// KnownSeries are every series a plan can hold, by name.
func KnownSeries() map[string]Series {
	m := map[string]Series{}
	for _, s := range []Series{Perftest, Rdmaperf, Posix, MsgrRDMA, MergeSeries(true), MergeSeries(false), AppLoopSeries("worker")} {
		m[s.Name] = s
	}
	for _, p := range PollingModes {
		m[ModeSeries(p).Name] = ModeSeries(p)
		m[HeldSeries(p).Name] = HeldSeries(p)
	}
	return m
}

// PointLabel names one point in prose: "ib_send_lat 2 B", "messenger /
// posix msgr_bw 65536 B".
func PointLabel(k Key) string {
	return ColLabel(k.Series, k.Test) + " " + strconv.Itoa(k.Size) + " B"
}

// ColLabel is the heading of series' column for test: perftest's program
// name, "rdmaperf send_lat", or the messenger series' label.
func ColLabel(series, test string) string {
	s, ok := KnownSeries()[series]
	switch {
	case !ok:
		return series + " " + test
	case s.Tool == ToolPerftest:
		return "ib_" + test
	case s.Tool == ToolRdmaperf:
		return "rdmaperf " + test
	}
	return s.Label + " " + test
}
