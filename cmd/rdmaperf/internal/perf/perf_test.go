package perf

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, p *Params)
		err   string
	}{
		{name: "lat defaults", args: []string{"send_lat"}, check: func(t *testing.T, p *Params) {
			require.True(t, p.IsServer())
			require.Equal(t, 2, p.Size)
			require.Equal(t, 1000, p.Iters)
			require.Equal(t, 1, p.TxDepth)
			require.Equal(t, 512, p.RxDepth)
			require.Equal(t, DefPort, p.Port)
			require.Equal(t, -1, p.GIDIndex)
			require.Equal(t, 1, p.CQMod)
			require.Equal(t, 0, p.InlineSize())
		}},
		{name: "bw defaults", args: []string{"write_bw", "10.0.0.1"}, check: func(t *testing.T, p *Params) {
			require.Equal(t, "10.0.0.1", p.Server)
			require.Equal(t, 65536, p.Size)
			require.Equal(t, 5000, p.Iters)
			require.Equal(t, 128, p.TxDepth)
			require.Equal(t, 1, p.CQMod, "cq moderation is disabled above 8 KiB")
			require.Equal(t, 1, p.RxDepth)
		}},
		{name: "small bw keeps cq moderation", args: []string{"send_bw", "-s", "64", "h"}, check: func(t *testing.T, p *Params) {
			require.Equal(t, 100, p.CQMod)
			require.False(t, p.NoPeak)
		}},
		{name: "send_bw server has no peak", args: []string{"send_bw"}, check: func(t *testing.T, p *Params) {
			require.True(t, p.NoPeak)
		}},
		{name: "getopt forms", args: []string{"send_lat", "-s64", "--iters=20", "-d", "rxe0", "host", "-x", "1", "--port", "9999", "-aF"}, err: "do not combine"},
		{name: "getopt forms ok", args: []string{"send_lat", "-s64", "--iters=20", "-d", "rxe0", "host", "-x", "1", "--port", "9999", "-F", "-t", "8", "-I", "32"}, check: func(t *testing.T, p *Params) {
			require.Equal(t, 64, p.Size)
			require.Equal(t, 20, p.Iters)
			require.Equal(t, "rxe0", p.Device)
			require.Equal(t, "host", p.Server)
			require.Equal(t, 1, p.GIDIndex)
			require.Equal(t, 9999, p.Port)
			require.True(t, p.CPUFreqF)
			require.Equal(t, 8, p.TxDepth)
			require.Equal(t, 32, p.InlineSize())
			require.Equal(t, 20, p.RxDepth, "rx depth is capped at the iterations")
		}},
		{name: "all sizes", args: []string{"send_bw", "-a", "--report_gbits", "--json"}, check: func(t *testing.T, p *Params) {
			require.Len(t, p.Sizes(), 23)
			require.Equal(t, 2, p.Sizes()[0])
			require.Equal(t, 1<<23, p.Sizes()[22])
			require.Equal(t, MaxSize, p.MaxMsgSize())
			require.True(t, p.ReportGbits)
			require.True(t, p.JSON)
		}},
		{name: "duration", args: []string{"send_lat", "-D", "3"}, check: func(t *testing.T, p *Params) {
			require.Equal(t, 3, p.Duration)
			require.True(t, p.NoPeak)
		}},
		{name: "msgr", args: []string{"msgr_bw", "--stack=posix", "--msgr_opt", "ms_async_rdma_submit_time_trigger=0", "-s", "4"}, check: func(t *testing.T, p *Params) {
			require.Equal(t, "posix", p.Stack)
			require.Equal(t, []string{"ms_async_rdma_submit_time_trigger=0"}, p.MsgrOpts)
			require.Equal(t, 4, p.Size)
		}},
		{name: "read forbids inline", args: []string{"read_lat", "-I", "64"}, err: "inline"},
		{name: "unknown subcommand", args: []string{"atomic_lat"}, err: "unknown subcommand"},
		{name: "no subcommand", args: nil, err: "missing subcommand"},
		{name: "unknown option", args: []string{"send_lat", "-z"}, err: "unknown option -z"},
		{name: "unknown long option", args: []string{"send_lat", "--bogus"}, err: "unknown option --bogus"},
		{name: "missing value", args: []string{"send_lat", "-s"}, err: "needs a value"},
		{name: "bad size", args: []string{"send_lat", "-s", "0"}, err: "size (-s)"},
		{name: "too big", args: []string{"send_lat", "-s", "8388609"}, err: "size (-s)"},
		{name: "few iters", args: []string{"send_lat", "-n", "2"}, err: "iterations"},
		{name: "two addresses", args: []string{"send_lat", "a", "b"}, err: "too many arguments"},
		{name: "bad stack", args: []string{"msgr_lat", "--stack", "tcp"}, err: "rdma or posix"},
		{name: "flag value on bool", args: []string{"send_lat", "--json=1"}, err: "takes no value"},
		{name: "background bytes", args: []string{"msgr_lat", "--msgr_bg_bytes", "67108864", "h"}, check: func(t *testing.T, p *Params) {
			require.Equal(t, 64<<20, p.MsgrBgBytes)
			require.Equal(t, 64<<20, p.Agreement().BgBytes)
		}},
		{name: "background bytes attached", args: []string{"msgr_lat", "--msgr_bg_bytes=0"}, check: func(t *testing.T, p *Params) {
			require.Zero(t, p.MsgrBgBytes)
		}},
		{name: "background bytes negative", args: []string{"msgr_lat", "--msgr_bg_bytes", "-1"}, err: "--msgr_bg_bytes must be an integer"},
		{name: "background bytes not a number", args: []string{"msgr_lat", "--msgr_bg_bytes", "64M"}, err: "--msgr_bg_bytes must be an integer"},
		{name: "background bytes only for msgr_lat", args: []string{"msgr_bw", "--msgr_bg_bytes", "1024"}, err: "option of msgr_lat"},
		{name: "background bytes not for raw tests", args: []string{"send_lat", "--msgr_bg_bytes", "1024"}, err: "option of msgr_lat"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.args)
			if tc.err != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			tc.check(t, p)
		})
	}
	_, err := Parse([]string{"send_lat", "--help"})
	require.ErrorIs(t, err, ErrHelp)
}

func TestMismatch(t *testing.T) {
	s, err := Parse([]string{"send_lat", "-s", "64"})
	require.NoError(t, err)
	c, err := Parse([]string{"send_lat", "-s", "128", "-n", "50", "srv"})
	require.NoError(t, err)
	mm := Mismatch(s.Agreement(), c.Agreement())
	require.Len(t, mm, 2)
	require.Contains(t, mm[0], "size (-s): server 64, client 128")
	require.Contains(t, mm[1], "iterations (-n): server 1000, client 50")
	require.Empty(t, Mismatch(s.Agreement(), s.Agreement()))
	w, err := Parse([]string{"write_lat", "-s", "64", "srv"})
	require.NoError(t, err)
	require.Contains(t, Mismatch(s.Agreement(), w.Agreement())[0], "test: server send_lat, client write_lat")
	ms, err := Parse([]string{"msgr_lat"})
	require.NoError(t, err)
	mc, err := Parse([]string{"msgr_lat", "--msgr_bg_bytes", "4096", "srv"})
	require.NoError(t, err)
	require.Equal(t, []string{"background bytes (--msgr_bg_bytes): server 0, client 4096"}, Mismatch(ms.Agreement(), mc.Agreement()))
}

// perftestFields splits a result row the way scripts around perftest do
// (awk's default field splitting).
func perftestFields(line string) []string { return strings.Fields(line) }

func TestLatStatsAndRow(t *testing.T) {
	// 12 posts 10us apart except two slow ones: deltas (ns) 11 values.
	posted := []int64{0}
	gaps := []int64{10000, 10000, 12000, 10000, 10000, 50000, 10000, 14000, 10000, 90000, 10000}
	for _, g := range gaps {
		posted = append(posted, posted[len(posted)-1]+g)
	}
	r := LatStats(SendLat, 2, posted, 2, nil)
	// sorted deltas: 10000 x7, 12000, 14000, 50000, 90000; the two largest
	// are dropped: measure = 9 -> median delta[4] = 10000 -> 5us one way.
	require.Equal(t, 12, r.Iters)
	require.InDelta(t, 5.0, r.TMin, 1e-9)
	require.InDelta(t, 5.0, r.TTypical, 1e-9)
	require.InDelta(t, 25.0, r.TMax, 1e-9, "t_max is the largest kept delta (perftest keeps index measure)")
	avg := (7*10000.0 + 12000 + 14000) / 9 / 2000
	require.InDelta(t, avg, r.TAvg, 1e-9)
	require.InDelta(t, 25.0, r.P99, 1e-9, "ceil(9*0.99) = 9: perftest's index past the kept deltas")

	var b bytes.Buffer
	WriteLatRow(&b, r, false)
	line := b.String()
	require.True(t, strings.HasPrefix(line, " 2       12          5.00"), line)
	f := perftestFields(line)
	require.Len(t, f, 9)
	require.Equal(t, "2", f[0])
	require.Equal(t, "12", f[1])
	typ, err := strconv.ParseFloat(f[4], 64) // t_typical, as scripts read it
	require.NoError(t, err)
	require.InDelta(t, 5.0, typ, 1e-9)

	b.Reset()
	WriteLatRow(&b, r, true)
	var j map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &j))
	require.Equal(t, 5.0, j["t_typical_usec"])
	require.Equal(t, "send_lat", j["test"])
}

func TestLatRowGolden(t *testing.T) {
	// A row as Debian's ib_send_lat prints it, and ours for the same numbers.
	golden := " 2       1000          4.51           12.37        4.62     \t       4.67        \t0.00   \t\t5.26   \t\t12.37  \n"
	r := LatResult{Bytes: 2, Iters: 1000, TMin: 4.51, TMax: 12.37, TTypical: 4.62, TAvg: 4.67, TStdev: 0, P99: 5.26, P999: 12.37}
	var b bytes.Buffer
	WriteLatRow(&b, r, false)
	require.Equal(t, perftestFields(golden), perftestFields(b.String()))
	require.Equal(t, ResultFmtLat, " #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    t_avg[usec]    t_stdev[usec]   99% percentile[usec]   99.9% percentile[usec] ")
}

func TestBWStatsAndRow(t *testing.T) {
	// 4 WRs of 1 MiB, cq_mod 2: completions at WR 1 and 3.
	const t0 = 1e9 // clock origin; unset completions stay 0
	posted := []int64{t0, t0 + 5e5, t0 + 1e6, t0 + 1e6}
	completed := []int64{0, t0 + 1e6, 0, t0 + 3e6}
	r := BWStats(SendBW, 1<<20, 4, posted, completed, 2, false, false)
	// average: 4 MiB in 3 ms -> 1333.33 MB/s; peak: the best
	// (completed[j]-posted[i])/(j-i+1) is WRs 0..1, 1 ms for 2 MiB -> 2000 MB/s.
	require.InDelta(t, 4000.0/3, r.BWAvg, 1e-6)
	require.InDelta(t, 2000.0, r.BWPeak, 1e-6)
	require.InDelta(t, 4.0/3000, r.MsgRate, 1e-9)
	var b bytes.Buffer
	WriteBWRow(&b, r, false)
	f := perftestFields(b.String())
	require.Len(t, f, 5)
	require.Equal(t, "1048576", f[0])
	require.Equal(t, "4", f[1])
	require.Equal(t, "2000.00", f[2])
	require.Equal(t, "1333.33", f[3])
	require.Equal(t, "0.001333", f[4])

	g := BWStats(SendBW, 1<<20, 4, posted[:1], []int64{t0 + 4e6}, 1, true, true)
	require.Equal(t, "Gb/sec", g.Unit)
	require.Zero(t, g.BWPeak)
	require.InDelta(t, 4*float64(1<<20)*8/4e6, g.BWAvg, 1e-9)
	b.Reset()
	WriteBWRow(&b, g, true)
	var j map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &j))
	require.Equal(t, "Gb/sec", j["unit"])
}

func TestCHashX(t *testing.T) {
	for _, tc := range []struct {
		v     uint64
		width int
		want  string
	}{{0, 4, "0000"}, {0x11, 6, "0x0011"}, {0x3c3a2b, 6, "0x3c3a2b"}, {0x1234567, 6, "0x1234567"}, {0x7fbfd4005000, 16, "0x007fbfd4005000"}} {
		require.Equal(t, tc.want, cHashX(tc.v, tc.width))
	}
}

func FuzzParse(f *testing.F) {
	f.Add("send_lat -s 64 -n 10 host")
	f.Add("write_bw -a --json")
	f.Add("msgr_bw --stack=posix -D 2")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(strings.Fields(s))
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, p.Size, 1)
		require.LessOrEqual(t, p.MaxMsgSize(), MaxSize)
		require.GreaterOrEqual(t, p.TxDepth, 1)
		require.GreaterOrEqual(t, p.CQMod, 1)
		require.LessOrEqual(t, p.CQMod, p.TxDepth)
	})
}
