package bench

import (
	"math"
	"strconv"
	"strings"
)

// Series is one curve of the report: a tool (or the messenger on one stack
// and in one configuration) whose runs are grouped by test and size. Adding
// a row to the benchmark is adding a Series (and, for a new comparison, a
// Target).
type Series struct {
	Name  string   // key in results.jsonl and in targets
	Label string   // column heading and plot legend
	Tool  string   // ToolPerftest, ToolRdmaperf or ToolMsgr
	Stack string   // ToolMsgr: "rdma" or "posix"
	Opts  []string // ToolMsgr: --msgr_opt key=value, both sides
	// Args are extra rdmaperf flags of both sides, ClientArgs of the
	// client only.
	Args       []string
	ClientArgs []string
	// NeedOpt is a messenger option (key=value) this series sets that the
	// tree may not know yet; NeedFlag an rdmaperf flag it may not have yet.
	// A series whose need is missing is recorded as not measured.
	NeedOpt  string
	NeedFlag string
}

// The tools a Series runs.
const (
	ToolPerftest = "perftest"
	ToolRdmaperf = "rdmaperf"
	ToolMsgr     = "msgr"
)

// The option that selects where RDMA completions are handled (issue 9), and
// the rdmaperf flag the held-sender row needs: msgr_lat's client opens a
// second connection to the same server, on the same worker, which sends
// this many bytes in 64 KiB messages while the ping-pong runs. rdmaperf
// does not have it yet; its rows stay "not measured" until it does.
const (
	PollingModeOpt = "ms_async_rdma_polling_mode"
	HeldFlag       = "msgr_bg_bytes"
	HeldBytes      = 64 << 20
)

// PollingModes are the values of PollingModeOpt, each measured as its own
// series when the option exists.
var PollingModes = []string{"dispatcher", "worker"}

// Perftest and Rdmaperf are the raw-verbs series.
var (
	Perftest = Series{Name: "perftest", Label: "C perftest", Tool: ToolPerftest}
	Rdmaperf = Series{Name: "rdmaperf", Label: "rdmaperf", Tool: ToolRdmaperf}
	Posix    = Series{Name: "msgr-posix", Label: "messenger / posix", Tool: ToolMsgr, Stack: "posix"}
)

// MsgrRDMA is the messenger over rdma with the tree's defaults.
var MsgrRDMA = Series{Name: "msgr-rdma", Label: "messenger / rdma", Tool: ToolMsgr, Stack: "rdma"}

// ModeSeries is the messenger over rdma in one polling mode.
func ModeSeries(mode string) Series {
	return Series{Name: "msgr-rdma-" + mode, Label: "messenger / rdma " + mode, Tool: ToolMsgr, Stack: "rdma",
		Opts: []string{PollingModeOpt + "=" + mode}, NeedOpt: PollingModeOpt + "=" + mode}
}

// HeldSeries is ModeSeries(mode) measured while another connection on the
// same worker sends HeldBytes.
func HeldSeries(mode string) Series {
	s := ModeSeries(mode)
	s.Name += "-held"
	s.Label += ", 64 MiB beside"
	s.Args = []string{"--" + HeldFlag, strconv.Itoa(HeldBytes)}
	s.NeedFlag = HeldFlag
	return s
}

// AppLoopFlag is the rdmaperf flag of AppLoopSeries.
const AppLoopFlag = "msgr_loop"

// AppLoopSeries is ModeSeries(mode) with msgr_lat's client sending each ping
// from a test goroutine that waits on a channel for the pong
// (--msgr_loop=app), where the other series send the next ping from the
// pong's fast dispatch: what a goroutine wake-up per round trip costs.
func AppLoopSeries(mode string) Series {
	s := ModeSeries(mode)
	s.Name += "-app"
	s.Label += ", app goroutine"
	s.ClientArgs = []string{"--" + AppLoopFlag + "=app"}
	s.NeedFlag = AppLoopFlag
	return s
}

// MergeSeries is msgr_bw over rdma with adaptive send-merging on or off,
// traced (doorbells per message; needs root).
func MergeSeries(on bool) Series {
	v := strconv.FormatBool(on)
	return Series{Name: "merge-" + v, Label: v, Tool: ToolMsgr, Stack: "rdma",
		Opts:       []string{"ms_async_rdma_buffer_size=256"},
		ClientArgs: []string{"--trace", "--msgr_opt", "ms_async_rdma_submit_time_trigger=" + v}}
}

// Spec is one measurement: a server and a client of one series, test and
// size. Rep numbers the repetitions of a ratio point (1..reps); curve
// points measured once have Rep 0.
type Spec struct {
	Series Series
	Test   string
	Size   int
	Iters  int
	Rep    int
	// Profile writes the client's CPU profile (RDMAPERF_CPUPROFILE) beside
	// its output: where the messenger's time goes, for the report.
	Profile bool
}

// Key groups the repetitions of one point.
type Key struct {
	Series string
	Test   string
	Size   int
}

// Key is the point this spec measures.
func (s Spec) Key() Key { return Key{s.Series.Name, s.Test, s.Size} }

// IsLat reports whether test is a latency test.
func IsLat(test string) bool { return strings.HasSuffix(test, "_lat") }

// itersStep is one step of an iteration table: runs of up to upTo bytes
// take iters iterations.
type itersStep struct{ upTo, iters int }

// The iterations per run, by message size: fewer for large sizes, so that
// a run takes seconds, not minutes, under TCG. The last step takes every
// larger size.
var (
	latIters = []itersStep{{4096, 1000}, {65536, 300}, {math.MaxInt, 100}}
	bwIters  = []itersStep{{4096, 1000}, {16384, 300}, {65536, 200}, {262144, 50}, {math.MaxInt, 20}}
)

func itersFor(steps []itersStep, size int) int {
	for _, s := range steps {
		if size <= s.upTo {
			return s.iters
		}
	}
	return steps[len(steps)-1].iters
}

// LatIters and BWIters are the iterations per run of a latency and a
// bandwidth test.
func LatIters(size int) int { return itersFor(latIters, size) }

// BWIters: see LatIters.
func BWIters(size int) int { return itersFor(bwIters, size) }

func iters(test string, size int) int {
	if IsLat(test) {
		return LatIters(size)
	}
	return BWIters(size)
}

// The ratio points: where targets compare the tools.
var (
	LatPoints = []int{2, 4096}
	BWPoint   = 65536
)

// DefaultSizes are the curve's sizes; QuickSizes those of -quick.
var (
	DefaultSizes = []int{2, 256, 4096, 65536, 1048576}
	QuickSizes   = []int{2, 4096, 65536}
)

// Caps is what the tree under test can do: which messenger options its
// config knows and which flags its rdmaperf has.
type Caps struct {
	OptOK  func(kv string) bool
	FlagOK func(flag string) bool
	Root   bool // --trace needs root
}

// Missing says why s cannot be measured with caps, or "".
func (c Caps) Missing(s Series) string {
	if s.NeedOpt != "" && (c.OptOK == nil || !c.OptOK(s.NeedOpt)) {
		k, _, _ := strings.Cut(s.NeedOpt, "=")
		return "this tree's config has no " + k
	}
	if s.NeedFlag != "" && (c.FlagOK == nil || !c.FlagOK(s.NeedFlag)) {
		return "rdmaperf has no --" + s.NeedFlag + " yet"
	}
	return ""
}

// MsgrRDMASeries are the messenger-over-rdma series to measure: one per
// polling mode when the config has the option, else the default.
func MsgrRDMASeries(c Caps) []Series {
	if c.Missing(ModeSeries(PollingModes[0])) != "" {
		return []Series{MsgrRDMA}
	}
	var out []Series
	for _, m := range PollingModes {
		out = append(out, ModeSeries(m))
	}
	return out
}

// BenchPlan is `make bench`: the ratio points reps times, alternating the
// tools (perftest, rdmaperf; then each messenger series), then every other
// size of the curves once, then the merging trace when root.
func BenchPlan(reps int, sizes []int, c Caps) []Spec {
	var out []Spec
	add := func(s Series, test string, size, rep int) {
		out = append(out, Spec{Series: s, Test: test, Size: size, Iters: iters(test, size), Rep: rep})
	}
	msgr := append(MsgrRDMASeries(c), Posix)
	for r := 1; r <= reps; r++ {
		for _, t := range []string{"send_lat", "write_lat"} {
			for _, s := range LatPoints {
				add(Perftest, t, s, r)
				add(Rdmaperf, t, s, r)
			}
		}
		for _, t := range []string{"send_bw", "write_bw"} {
			add(Perftest, t, BWPoint, r)
			add(Rdmaperf, t, BWPoint, r)
		}
		for _, s := range LatPoints {
			for _, m := range msgr {
				add(m, "msgr_lat", s, r)
				// The first 2 B round trips over rdma are profiled: the
				// sampling costs about 1% of a CPU at 100 Hz.
				out[len(out)-1].Profile = r == 1 && s == LatPoints[0] && m.Stack == "rdma"
			}
		}
		for _, m := range PollingModes {
			add(HeldSeries(m), "msgr_lat", LatPoints[0], r)
		}
		add(AppLoopSeries("worker"), "msgr_lat", LatPoints[0], r)
		for _, m := range msgr {
			add(m, "msgr_bw", BWPoint, r)
		}
	}
	isPoint := func(test string, size int) bool {
		if IsLat(test) {
			return size == LatPoints[0] || size == LatPoints[1]
		}
		return size == BWPoint
	}
	for _, s := range sizes {
		for _, t := range []string{"send_lat", "write_lat", "send_bw", "write_bw"} {
			if !isPoint(t, s) {
				add(Perftest, t, s, 0)
				add(Rdmaperf, t, s, 0)
			}
		}
		for _, t := range []string{"msgr_lat", "msgr_bw"} {
			if !isPoint(t, s) {
				for _, m := range msgr {
					add(m, t, s, 0)
				}
			}
		}
	}
	if c.Root {
		for _, on := range []bool{true, false} {
			out = append(out, Spec{Series: MergeSeries(on), Test: "msgr_bw", Size: 64, Iters: 2000})
		}
	}
	return out
}

// DemoPlan is `make demo`: send_lat and write_lat at the latency points,
// reps times alternating, iters each; then send_bw at 4 KiB and 64 KiB.
func DemoPlan(reps, iters int) []Spec {
	var out []Spec
	for r := 1; r <= reps; r++ {
		for _, t := range []string{"send_lat", "write_lat"} {
			for _, s := range LatPoints {
				out = append(out, Spec{Series: Perftest, Test: t, Size: s, Iters: iters, Rep: r},
					Spec{Series: Rdmaperf, Test: t, Size: s, Iters: iters, Rep: r})
			}
		}
	}
	for _, s := range []int{4096, BWPoint} {
		out = append(out, Spec{Series: Perftest, Test: "send_bw", Size: s, Iters: 200, Rep: 1},
			Spec{Series: Rdmaperf, Test: "send_bw", Size: s, Iters: 200, Rep: 1})
	}
	return out
}

// Device is where the RDMA tests run.
type Device struct {
	Name     string // -d
	GIDIndex int    // -x
}

// ServerArgv is the server's command line of s on dev with out-of-band
// port port.
func (s Spec) ServerArgv(rdmaperf string, dev Device, port int) []string {
	sr := s.Series
	var a []string
	switch sr.Tool {
	case ToolPerftest:
		a = []string{"ib_" + s.Test, "-d", dev.Name, "-x", strconv.Itoa(dev.GIDIndex), "-F"}
	case ToolRdmaperf:
		a = []string{rdmaperf, s.Test, "-d", dev.Name, "-x", strconv.Itoa(dev.GIDIndex), "--json"}
	default:
		a = []string{rdmaperf, s.Test, "--stack", sr.Stack}
		if sr.Stack != "posix" {
			a = append(a, "-d", dev.Name, "-x", strconv.Itoa(dev.GIDIndex))
		}
		a = append(a, "--json")
		for _, o := range sr.Opts {
			a = append(a, "--msgr_opt", o)
		}
	}
	a = append(a, sr.Args...)
	return append(a, "-s", strconv.Itoa(s.Size), "-n", strconv.Itoa(s.Iters), "-p", strconv.Itoa(port))
}

// ClientArgv is the client's: the server's, its own flags and the server's
// address.
func (s Spec) ClientArgv(rdmaperf string, dev Device, port int, server string) []string {
	a := append(s.ServerArgv(rdmaperf, dev, port), s.Series.ClientArgs...)
	return append(a, server)
}
