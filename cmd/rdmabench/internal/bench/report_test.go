package bench

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.md")

// sample is a small run: two repetitions of some ratio points, a failure,
// a not-measured series and the merging trace.
func sample() []Result {
	db := func(v float64) *float64 { return &v }
	rs := []Result{
		lat("perftest", "send_lat", 2, 1, 10, 20), lat("rdmaperf", "send_lat", 2, 1, 10.2, 22),
		lat("perftest", "send_lat", 2, 2, 30, 40), lat("rdmaperf", "send_lat", 2, 2, 40, 60),
		lat("perftest", "send_lat", 4096, 1, 100, 110), {Series: "rdmaperf", Test: "send_lat", Size: 4096, Rep: 1, Iters: 1000, Err: "client: exit status 1"},
		bw("perftest", "send_bw", 65536, 1, 20), bw("rdmaperf", "send_bw", 65536, 1, 19.5),
		lat("msgr-rdma", "msgr_lat", 2, 1, 1000, 1100), lat("msgr-posix", "msgr_lat", 2, 1, 700, 800),
		bw("msgr-rdma", "msgr_bw", 65536, 1, 8), bw("msgr-posix", "msgr_bw", 65536, 1, 14),
		{Series: "msgr-rdma-dispatcher-held", Test: "msgr_lat", Size: 2, Rep: 1, Skipped: "this tree's config has no ms_async_rdma_polling_mode"},
		lat("perftest", "send_lat", 256, 0, 50, 55), lat("msgr-posix", "msgr_lat", 256, 0, 720, 810),
		{Series: "merge-true", Test: "msgr_bw", Size: 64, Iters: 2000, Row: &Row{Bytes: 64, BWAvg: 1, MsgRate: 0.01, DoorbellsPerMsg: db(0.446)}},
		{Series: "merge-false", Test: "msgr_bw", Size: 64, Iters: 2000, Row: &Row{Bytes: 64, BWAvg: 1, MsgRate: 0.01, DoorbellsPerMsg: db(0.9045)}},
	}
	rs[8].Profile = "raw/009-msgr-rdma-msgr_lat-2.pprof"
	return rs
}

func sampleConditions() Conditions {
	return Conditions{Date: "2026-12-02 21:00 UTC", Seconds: 300, Reps: 2, Sizes: QuickSizes, Quick: true, Rev: "abc1234",
		HostCPUs: 2, LoadBefore: "3.10 2.50 1.00", LoadAfter: "4.00 3.00 1.50", VM: true, Command: "BENCH_REPS=\"2\" make bench",
		Env: []string{"kernel: 6.1.0", "cpus: 2"}}
}

func TestBuildTargets(t *testing.T) {
	r := Build(sample(), sampleConditions(), "BENCHMARKS.png")
	rows := map[string]TargetRow{}
	for _, x := range r.Targets {
		rows[x.What+" / "+x.Against] = x
	}
	// medians: perftest 20 / rdmaperf 25.1 -> 1.255
	require.Equal(t, TargetRow{What: "rdmaperf send_lat 2 B t_typical", Against: "ib_send_lat 2 B", Value: "25.10", Base: "20.00",
		Ratio: "1.26", Goal: "≤ 1.05×", Met: "**no**"}, rows["rdmaperf send_lat 2 B t_typical / ib_send_lat 2 B"])
	// t_avg: 41 / 30 = 1.367 > 1.3
	require.Equal(t, "**no**", rows["rdmaperf send_lat 2 B t_avg / ib_send_lat 2 B"].Met)
	require.Equal(t, "yes", rows["rdmaperf send_bw 65536 B bw_average / ib_send_bw 65536 B"].Met) // 0.975
	require.Equal(t, "n/a", rows["rdmaperf send_lat 4096 B t_typical / ib_send_lat 4096 B"].Met)  // failed run
	posix := rows["messenger / rdma msgr_lat 2 B t_typical / messenger / posix msgr_lat 2 B"]
	require.Equal(t, "1.43", posix.Ratio)
	require.Equal(t, "≤ 0.2×", posix.Goal)
	above := rows["messenger / rdma msgr_bw 65536 B bw_average / messenger / posix msgr_bw 65536 B"]
	require.Equal(t, "> 1×", above.Goal)
	require.Equal(t, "**no**", above.Met)
	require.Contains(t, r.Missed, "rdmaperf send_lat 2 B t_typical against ib_send_lat 2 B")
	require.Len(t, r.Failed, 1)
	require.True(t, r.MergeLow)
	require.NotNil(t, r.Merge)
	require.Equal(t, []string{"dispatcher", "not measured",
		"not measured: this tree's config has no ms_async_rdma_polling_mode", "n/a"}, r.Held.Rows[0])
}

func TestTargetMet(t *testing.T) {
	require.True(t, Target{Op: "≤", Limit: 1.05}.Met(1.05))
	require.False(t, Target{Op: "≤", Limit: 1.05}.Met(1.06))
	require.True(t, Target{Op: "≥", Limit: 0.8}.Met(0.8))
	require.False(t, Target{Op: ">", Limit: 1}.Met(1))
	require.False(t, Target{Op: "≥", Limit: 0.8}.Met(Ratio(1, 0)))
}

func TestCurveTable(t *testing.T) {
	r := Build(sample(), sampleConditions(), "x.png")
	require.Equal(t, []string{"size", "ib_send_lat", "rdmaperf send_lat", "ratio", "ib_write_lat", "rdmaperf write_lat", "ratio",
		"messenger / rdma msgr_lat", "messenger / posix msgr_lat", "messenger / rdma / posix"}, r.Latency.Head)
	require.Equal(t, []string{"2", "20.00", "25.10", "1.26", "n/a", "n/a", "n/a", "1000.00", "700.00", "1.43"}, r.Latency.Rows[0])
	require.Equal(t, "256", r.Latency.Rows[1][0])
	require.Len(t, r.Bandwidth.Rows, 1, "the traced 64 B runs are no curve point")
	require.Equal(t, "|---:|---:|", Table{Head: []string{"a", "b"}, Right: []bool{true, true}}.Sep())
}

func TestNotFinal(t *testing.T) {
	c := sampleConditions()
	why := strings.Join(c.NotFinal(), "\n")
	require.Contains(t, why, "BENCH_REPS=2")
	require.Contains(t, why, "sizes 2 4096 65536")
	require.Contains(t, why, "load average 3.10 2.50 1.00")
	c = Conditions{Reps: 5, Sizes: DefaultSizes, Rev: "abc1234", LoadBefore: "0.20 0.30 0.40", HostCPUs: 2}
	require.Empty(t, c.NotFinal())
	c.Rev += "+dirty"
	require.Len(t, c.NotFinal(), 1)
}

func TestRender(t *testing.T) {
	b, err := Render(Build(sample(), sampleConditions(), "BENCHMARKS.png"))
	require.NoError(t, err)
	md := string(b)
	for _, want := range []string{
		"> **Not a final run:** BENCH_REPS=2 (a final run takes 5)",
		"| rdmaperf send_lat 2 B t_typical | 25.10 | ib_send_lat 2 B | 20.00 | 1.26 | ≤ 1.05× | **no** |",
		"| 2 | 20.00 | 25.10 | 1.26 | n/a | n/a | n/a | 1000.00 | 700.00 | 1.43 |",
		"| true | 0.4460 |",
		"Adaptive merging lowered the doorbells per message in this run.",
		"![latency and bandwidth against message size](BENCHMARKS.png)",
		"- rdmaperf send_lat 4096 B (rep 1): client: exit status 1",
		"kernel: 6.1.0\ncpus: 2\n```",
		"messenger / rdma msgr_lat 2 B (`.build/bench/raw/009-msgr-rdma-msgr_lat-2.pprof`):",
	} {
		require.Contains(t, md, want)
	}
	require.NotContains(t, md, "<no value>")
	golden := "testdata/report.golden.md"
	if *update {
		require.NoError(t, os.WriteFile(golden, b, 0o644))
	}
	g, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(g), md, "run go test -update to accept a template change")
}

func TestSplice(t *testing.T) {
	sec := []byte("## new\n")
	out := string(Splice(nil, sec))
	require.Equal(t, "# Benchmarks\n\n"+BeginMark+"\n## new\n"+EndMark+"\n", out)
	doc := "# B\n\nhand text\n\n<!-- rdmaperf-bench:begin (generated by soft-roce/bench.sh) -->\nold\n<!-- rdmaperf-bench:end -->\ntail\n"
	require.Equal(t, "# B\n\nhand text\n\n"+BeginMark+"\n## new\n"+EndMark+"\ntail\n", string(Splice([]byte(doc), sec)))
	require.Equal(t, "# B\n\n"+BeginMark+"\n## new\n"+EndMark+"\n", string(Splice([]byte("# B\n"), sec)))
}

func TestPlotScript(t *testing.T) {
	s := NewSet(sample())
	dir := t.TempDir()
	p, err := PlotOf(s, dir, dir+"/b.png", `a "quoted" title`)
	require.NoError(t, err)
	require.Len(t, p.Lat, 4) // ib_send_lat, rdmaperf send_lat, msgr rdma, msgr posix
	dat, err := os.ReadFile(p.Lat[0].Data)
	require.NoError(t, err)
	require.Equal(t, "2 20\n256 50\n4096 100\n", string(dat))
	sc := p.Script()
	require.Contains(t, sc, `set multiplot layout 1,2 title "a \"quoted\" title"`)
	require.Contains(t, sc, `w lp t "ib_send_lat (C)", "`+dir+`/rdmaperf.send_lat.dat" w lp t "rdmaperf send_lat"`)
}

func TestWriteDemo(t *testing.T) {
	var b strings.Builder
	ok := WriteDemo(&b, sample(), 2)
	require.False(t, ok, "rdmaperf rows are missing")
	require.Contains(t, b.String(), "send_lat      2     20.00     25.10  1.26x")
	require.Contains(t, b.String(), "failed")
}
