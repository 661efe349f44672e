package bench

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A go test binary's benchmark output: result lines among the messenger's
// log lines (which go to stderr in a real run, but must not confuse it).
const goBenchOut = `goos: linux
goarch: amd64
pkg: github.com/asyncmsgr/asyncmsgr/tests/msgrsuite
2026/12/03 13:42:01 INFO msgr: session ready conn=127.0.0.1:38592
BenchmarkMessengerLatency2B-2             	   30195	     73626 ns/op	   0.03 MB/s	     769 B/op	       4 allocs/op
BenchmarkMessengerLatency2BSecure-2       	   52531	     65721 ns/op	   0.03 MB/s	     769 B/op	       4 allocs/op
BenchmarkMessengerThroughput64K           	    8508	    318721 ns/op	 205.62 MB/s	   74070 B/op	       3 allocs/op
PASS
`

func TestParseGoBench(t *testing.T) {
	ns, mb, err := ParseGoBench([]byte(goBenchOut), "BenchmarkMessengerLatency2B")
	require.NoError(t, err)
	require.Equal(t, 73626.0, ns) // not the Secure line, which shares the prefix
	require.Equal(t, 0.03, mb)
	ns, mb, err = ParseGoBench([]byte(goBenchOut), "BenchmarkMessengerThroughput64K")
	require.NoError(t, err) // no -GOMAXPROCS suffix (GOMAXPROCS=1)
	require.Equal(t, 318721.0, ns)
	require.Equal(t, 205.62, mb)
	_, _, err = ParseGoBench([]byte(goBenchOut), "BenchmarkMessengerThroughput64KSecure")
	require.ErrorIs(t, err, ErrNoRow)
	_, _, err = ParseGoBench([]byte("BenchmarkX-2 10 fast ns/op\n"), "BenchmarkX")
	require.ErrorContains(t, err, `"fast" is not a number`)
}

func TestBuildSecure(t *testing.T) {
	require.Nil(t, BuildSecure(nil))
	var rs []GoBench
	for rep, lat := range []struct{ crc, sec, crcBW, secBW float64 }{
		{100e3, 130e3, 200, 120}, {110e3, 120e3, 210, 150}, {90e3, 200e3, 190, 160},
	} {
		rs = append(rs, GoBench{Name: secureLatCRC, Rep: rep + 1, NsPerOp: lat.crc},
			GoBench{Name: secureLatSec, Rep: rep + 1, NsPerOp: lat.sec},
			GoBench{Name: secureBWCRC, Rep: rep + 1, NsPerOp: 1, MBPerS: lat.crcBW},
			GoBench{Name: secureBWSec, Rep: rep + 1, NsPerOp: 1, MBPerS: lat.secBW})
	}
	rs = append(rs, GoBench{Name: secureBWSec, Rep: 4, Err: "exit status 1"})
	sc := BuildSecure(rs)
	require.Equal(t, 4, sc.Reps)
	// medians: latency 130 / 100 µs = 1.3 > 1.2; throughput 150 / 200 = 0.75 ≥ 0.7
	require.Equal(t, TargetRow{What: "secure mode 2 B round trip (µs)", Against: "crc mode", Value: "130.00", Base: "100.00",
		Ratio: "1.30", Goal: "≤ 1.2×", Met: "**no**"}, sc.Targets[0])
	require.Equal(t, TargetRow{What: "secure mode 64 KiB throughput (MB/s)", Against: "crc mode", Value: "150.00", Base: "200.00",
		Ratio: "0.75", Goal: "≥ 0.7×", Met: "yes"}, sc.Targets[1])
	require.Equal(t, []string{"BenchmarkMessengerThroughput64KSecure (rep 4): exit status 1"}, sc.Failed)
	require.Len(t, sc.Runs.Rows, 13)

	var lines strings.Builder
	for _, r := range rs {
		lines.WriteString(`{"name":"` + r.Name + `","rep":1,"ns_per_op":5}` + "\n")
	}
	back, err := ReadGoBenches(strings.NewReader(lines.String()))
	require.NoError(t, err)
	require.Len(t, back, len(rs))
	require.Equal(t, "n/a (no run of both)", BuildSecure(back).Targets[1].Met) // no MB/s in any

	r := Build(sample(), sampleConditions(), "BENCHMARKS.png")
	r.Secure = sc
	md, err := Render(r)
	require.NoError(t, err)
	require.Contains(t, string(md), "### Secure mode's cost (issue 10, on the host)")
	require.Contains(t, string(md), "| secure mode 2 B round trip (µs) | 130.00 | crc mode | 100.00 | 1.30 | ≤ 1.2× | **no** |")
	require.Contains(t, string(md), "- failed: BenchmarkMessengerThroughput64KSecure (rep 4): exit status 1")
}
