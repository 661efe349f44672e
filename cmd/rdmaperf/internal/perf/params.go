package perf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Test names the subcommands.
const (
	SendLat  = "send_lat"
	WriteLat = "write_lat"
	ReadLat  = "read_lat"
	SendBW   = "send_bw"
	WriteBW  = "write_bw"
	MsgrLat  = "msgr_lat"
	MsgrBW   = "msgr_bw"
)

// Tests lists every subcommand in usage order.
var Tests = []string{SendLat, WriteLat, ReadLat, SendBW, WriteBW, MsgrLat, MsgrBW}

// perftest's limits and defaults (perftest_parameters.h, v4.5).
const (
	DefPort      = 18515
	DefSizeBW    = 65536
	DefSizeLat   = 2
	DefIters     = 1000
	DefItersWB   = 5000
	DefTxBW      = 128
	DefTxLat     = 1
	DefRxSend    = 512
	DefCQMod     = 100
	MaxSize      = 8388608
	MaxInline    = 912
	MinIters     = 5
	cqModSizeCap = 8192
	noPeakIters  = 20000
	maxTxDepth   = 16384
	maxDurationS = 3600
	defaultStack = "rdma"
	maxBgBytes   = 1 << 40
)

// Params are one side's test parameters, after perftest's defaults and
// dependencies (force_dependencies) are applied.
type Params struct {
	Test string
	// Verb is "send", "write", "read" or "msgr"; Lat is true for latency tests.
	Verb string
	Lat  bool

	Device      string   // -d, "" = first device
	IBPort      int      // -i
	GIDIndex    int      // -x, -1 = pick the RoCE v2 IPv4 GID
	Port        int      // -p, TCP port of the out-of-band exchange
	Size        int      // -s
	All         bool     // -a: sizes 2..2^23
	Iters       int      // -n
	Duration    int      // -D seconds (0 = iterations mode)
	Inline      int      // -I, -1 = default (0 on devices perftest does not know, as rxe)
	TxDepth     int      // -t
	RxDepth     int      // receive queue depth of send tests
	CQMod       int      // completions are requested every CQMod WRs (bw)
	NoPeak      bool     // -N
	CPUFreqF    bool     // -F (accepted; rdmaperf uses the monotonic clock)
	ReportGbits bool     // --report_gbits
	JSON        bool     // --json
	Trace       bool     // --trace
	Stack       string   // --stack rdma|posix (msgr tests)
	MsgrOpts    []string // --msgr_opt key=value (msgr tests)
	MsgrBgBytes int      // --msgr_bg_bytes: msgr_lat's background stream per size (0 = none)
	MsgrLoop    string   // --msgr_loop: who sends msgr_lat's next ping (MsgrLoopInline, MsgrLoopApp)
	Server      string   // server address; "" = this side is the server
	Progress    string   // --progress auto|on|off

	sizeSet, itersSet, txSet, inlineSet bool
}

// IsServer reports whether this side is the server (no address given).
func (p *Params) IsServer() bool { return p.Server == "" }

// IsBW reports whether the test is a bandwidth test.
func (p *Params) IsBW() bool { return !p.Lat }

// NoPeakBW reports whether a bandwidth run skips the peak: with -N, and
// with -D (a timed run keeps no per-iteration times).
func (p *Params) NoPeakBW() bool { return p.NoPeak || p.Duration > 0 }

// BWStamps are a bandwidth run's post and completion times: one of each
// without a peak, else one per iteration.
func (p *Params) BWStamps() (posted, completed []int64) {
	n := p.Iters
	if p.NoPeakBW() {
		n = 1
	}
	return make([]int64, n), make([]int64, n)
}

// Sizes returns the message sizes to run: Size, or 2, 4, ... 2^23 with -a.
func (p *Params) Sizes() []int {
	if !p.All {
		return []int{p.Size}
	}
	var s []int
	for i := 1; i < 24; i++ {
		s = append(s, 1<<i)
	}
	return s
}

// MaxMsgSize is the largest size of the run (buffers are sized for it).
func (p *Params) MaxMsgSize() int {
	if p.All {
		return MaxSize
	}
	return p.Size
}

// msgr_lat's client loops (--msgr_loop).
const (
	// MsgrLoopInline: the pong's fast dispatch sends the next ping, on the
	// messenger's worker goroutine (run to completion, the default).
	MsgrLoopInline = "inline"
	// MsgrLoopApp: a test goroutine sends each ping and waits on a channel
	// for its pong (a goroutine wake-up per round trip).
	MsgrLoopApp = "app"
)

// ErrHelp is returned by Parse for -h/--help.
var ErrHelp = errors.New("help requested")

type optSpec struct {
	short  byte
	long   string
	hasArg bool
	apply  func(p *Params, v string) error
}

func intArg(name string, lo, hi int, dst func(p *Params) *int, mark func(p *Params)) func(p *Params, v string) error {
	return func(p *Params, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%s must be an integer in [%d, %d], got %q", name, lo, hi, v)
		}
		*dst(p) = n
		if mark != nil {
			mark(p)
		}
		return nil
	}
}

var specs = []optSpec{
	{'d', "ib-dev", true, func(p *Params, v string) error { p.Device = v; return nil }},
	{'i', "ib-port", true, intArg("ib port (-i)", 1, 254, func(p *Params) *int { return &p.IBPort }, nil)},
	{'x', "gid-index", true, intArg("gid index (-x)", 0, 255, func(p *Params) *int { return &p.GIDIndex }, nil)},
	{'p', "port", true, intArg("port (-p)", 1, 65535, func(p *Params) *int { return &p.Port }, nil)},
	{'s', "size", true, intArg("size (-s)", 1, MaxSize, func(p *Params) *int { return &p.Size }, func(p *Params) { p.sizeSet = true })},
	{'a', "all", false, func(p *Params, _ string) error { p.All = true; return nil }},
	{'n', "iters", true, intArg("iterations (-n)", MinIters, 100000000, func(p *Params) *int { return &p.Iters }, func(p *Params) { p.itersSet = true })},
	{'D', "duration", true, intArg("duration (-D)", 1, maxDurationS, func(p *Params) *int { return &p.Duration }, nil)},
	{'I', "inline_size", true, intArg("inline size (-I)", 0, MaxInline, func(p *Params) *int { return &p.Inline }, func(p *Params) { p.inlineSet = true })},
	{'t', "tx-depth", true, intArg("tx depth (-t)", 1, maxTxDepth, func(p *Params) *int { return &p.TxDepth }, func(p *Params) { p.txSet = true })},
	{'N', "noPeak", false, func(p *Params, _ string) error { p.NoPeak = true; return nil }},
	{'F', "CPU-freq", false, func(p *Params, _ string) error { p.CPUFreqF = true; return nil }},
	{0, "report_gbits", false, func(p *Params, _ string) error { p.ReportGbits = true; return nil }},
	{0, "json", false, func(p *Params, _ string) error { p.JSON = true; return nil }},
	{0, "trace", false, func(p *Params, _ string) error { p.Trace = true; return nil }},
	{0, "stack", true, func(p *Params, v string) error {
		if v != "rdma" && v != "posix" {
			return fmt.Errorf("--stack must be rdma or posix, got %q", v)
		}
		p.Stack = v
		return nil
	}},
	{0, "msgr_opt", true, func(p *Params, v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("--msgr_opt wants key=value, got %q", v)
		}
		p.MsgrOpts = append(p.MsgrOpts, v)
		return nil
	}},
	{0, "msgr_loop", true, func(p *Params, v string) error {
		if v != MsgrLoopInline && v != MsgrLoopApp {
			return fmt.Errorf("--msgr_loop must be %s or %s, got %q", MsgrLoopInline, MsgrLoopApp, v)
		}
		p.MsgrLoop = v
		return nil
	}},
	{0, "msgr_bg_bytes", true, intArg("--msgr_bg_bytes", 0, maxBgBytes, func(p *Params) *int { return &p.MsgrBgBytes }, nil)},
	{0, "progress", true, func(p *Params, v string) error {
		switch v {
		case "auto", "on", "off":
			p.Progress = v
			return nil
		}
		return fmt.Errorf("--progress must be auto, on or off, got %q", v)
	}},
	{'h', "help", false, func(*Params, string) error { return ErrHelp }},
}

// Parse parses `SUBCOMMAND [flags] [server-address]` the way perftest's
// getopt_long does: short options take their value attached (-s64) or as
// the next word (-s 64), long options as --size=64 or --size 64, and the
// address may stand anywhere. It then applies perftest's defaults.
func Parse(args []string) (*Params, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("missing subcommand (one of %s)", strings.Join(Tests, ", "))
	}
	p := &Params{Test: args[0], IBPort: 1, GIDIndex: -1, Port: DefPort, Inline: -1, Stack: defaultStack, Progress: "auto", MsgrLoop: MsgrLoopInline}
	switch p.Test {
	case SendLat:
		p.Verb, p.Lat = "send", true
	case WriteLat:
		p.Verb, p.Lat = "write", true
	case ReadLat:
		p.Verb, p.Lat = "read", true
	case SendBW:
		p.Verb = "send"
	case WriteBW:
		p.Verb = "write"
	case MsgrLat:
		p.Verb, p.Lat = "msgr", true
	case MsgrBW:
		p.Verb = "msgr"
	case "-h", "--help", "help":
		return nil, ErrHelp
	default:
		return nil, fmt.Errorf("unknown subcommand %q (one of %s)", p.Test, strings.Join(Tests, ", "))
	}
	var pos []string
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			pos = append(pos, rest[i+1:]...)
			i = len(rest)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			sp := findLong(name)
			if sp == nil {
				return nil, fmt.Errorf("unknown option --%s", name)
			}
			if sp.hasArg && !hasVal {
				if i+1 >= len(rest) {
					return nil, fmt.Errorf("option --%s needs a value", name)
				}
				i++
				val = rest[i]
			} else if !sp.hasArg && hasVal {
				return nil, fmt.Errorf("option --%s takes no value", name)
			}
			if err := sp.apply(p, val); err != nil {
				return nil, err
			}
		case len(a) > 1 && a[0] == '-':
			// A cluster of short options: -aF, -s64, -s 64.
			for j := 1; j < len(a); j++ {
				sp := findShort(a[j])
				if sp == nil {
					return nil, fmt.Errorf("unknown option -%c", a[j])
				}
				if !sp.hasArg {
					if err := sp.apply(p, ""); err != nil {
						return nil, err
					}
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(rest) {
						return nil, fmt.Errorf("option -%c needs a value", a[j])
					}
					i++
					val = rest[i]
				}
				if err := sp.apply(p, val); err != nil {
					return nil, err
				}
				break
			}
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) > 1 {
		return nil, fmt.Errorf("too many arguments: %q (want at most one server address)", pos)
	}
	if len(pos) == 1 {
		p.Server = pos[0]
	}
	if err := p.applyDefaults(); err != nil {
		return nil, err
	}
	return p, nil
}

func findLong(name string) *optSpec {
	for i := range specs {
		if specs[i].long == name {
			return &specs[i]
		}
	}
	return nil
}

func findShort(c byte) *optSpec {
	for i := range specs {
		if specs[i].short != 0 && specs[i].short == c {
			return &specs[i]
		}
	}
	return nil
}

// applyDefaults is perftest's init_perftest_params + force_dependencies for
// the RC tests rdmaperf runs.
func (p *Params) applyDefaults() error {
	if p.MsgrBgBytes > 0 && p.Test != MsgrLat {
		return errors.New("--msgr_bg_bytes is an option of msgr_lat")
	}
	if p.All && p.Duration > 0 {
		return errors.New("duration mode (-D) does not support running on all sizes (-a)")
	}
	if p.All && p.sizeSet {
		return errors.New("-a runs every size: do not combine it with -s")
	}
	if !p.sizeSet {
		p.Size = DefSizeBW
		if p.Lat {
			p.Size = DefSizeLat
		}
	}
	if !p.itersSet {
		p.Iters = DefIters
		if p.Test == WriteBW {
			p.Iters = DefItersWB
		}
	}
	if !p.txSet {
		p.TxDepth = DefTxBW
		if p.Lat {
			p.TxDepth = DefTxLat
		}
	}
	p.RxDepth = 1
	if p.Verb == "send" {
		p.RxDepth = DefRxSend
	}
	if p.Duration == 0 {
		p.TxDepth = min(p.TxDepth, p.Iters)
		if p.Verb == "send" {
			p.RxDepth = min(p.RxDepth, p.Iters)
		}
	}
	if p.Verb == "send" && p.RxDepth%2 == 1 {
		p.RxDepth++
	}
	p.CQMod = DefCQMod
	if p.IsBW() && p.MaxMsgSize() > cqModSizeCap && !p.All {
		p.CQMod = 1
	}
	p.CQMod = min(p.CQMod, p.TxDepth)
	if p.Verb == "read" {
		if p.inlineSet && p.Inline > 0 {
			return errors.New("inline data (-I) is not possible with RDMA READ")
		}
		p.Inline = 0
	}
	if p.Duration > 0 || (p.IsBW() && p.Iters > noPeakIters) {
		p.NoPeak = true
	}
	if p.Test == SendBW && p.IsServer() {
		p.NoPeak = true
	}
	return nil
}

// InlineSize is the inline threshold to use: -I, or perftest's default for a
// device it does not recognise (rxe): 0.
func (p *Params) InlineSize() int {
	if p.Inline < 0 {
		return 0
	}
	return p.Inline
}

// Agreement is the part of the parameters both sides must agree on; it is
// what the client sends in its hello.
type Agreement struct {
	Test     string `json:"test"`
	Size     int    `json:"size"`
	All      bool   `json:"all"`
	Iters    int    `json:"iters"`
	Duration int    `json:"duration"`
	Stack    string `json:"stack,omitempty"`
	BgBytes  int    `json:"msgr_bg_bytes,omitempty"`
	Version  string `json:"version"`
}

// Version is rdmaperf's protocol version, compared in the hello.
const Version = "rdmaperf-1"

// Agreement returns this side's Agreement.
func (p *Params) Agreement() Agreement {
	a := Agreement{Test: p.Test, Size: p.Size, All: p.All, Iters: p.Iters, Duration: p.Duration, Version: Version}
	if p.Verb == "msgr" {
		a.Stack = p.Stack
		a.BgBytes = p.MsgrBgBytes
	}
	return a
}

// Mismatch names every parameter on which a and b differ, as
// "name: server X, client Y" strings (a is the server's).
func Mismatch(server, client Agreement) []string {
	var out []string
	add := func(name string, s, c any) {
		if s != c {
			out = append(out, fmt.Sprintf("%s: server %v, client %v", name, s, c))
		}
	}
	add("test", server.Test, client.Test)
	add("version", server.Version, client.Version)
	add("size (-s)", server.Size, client.Size)
	add("all sizes (-a)", server.All, client.All)
	add("iterations (-n)", server.Iters, client.Iters)
	add("duration (-D)", server.Duration, client.Duration)
	add("stack (--stack)", server.Stack, client.Stack)
	add("background bytes (--msgr_bg_bytes)", server.BgBytes, client.BgBytes)
	return out
}

// Usage is the help text.
const Usage = `usage: rdmaperf SUBCOMMAND [options] [server-address]

Without a server address rdmaperf is the server; with one it is the client
(as perftest's ib_* tools). Subcommands:
  send_lat, write_lat, read_lat   latency ping-pong over raw verbs (RC)
  send_bw, write_bw               bandwidth over raw verbs (RC)
  msgr_lat, msgr_bw               latency / bandwidth through the messenger

Options (perftest's):
  -d, --ib-dev=DEV         RDMA device (default: the first)
  -i, --ib-port=N          device port (default 1)
  -x, --gid-index=N        GID index (default: the RoCE v2 IPv4 GID)
  -p, --port=N             TCP port of the out-of-band exchange (default 18515)
  -s, --size=N             message size (default 2 for latency, 65536 for bandwidth)
  -a, --all                run sizes 2 .. 2^23
  -n, --iters=N            iterations (default 1000, write_bw 5000)
  -D, --duration=SEC       run for SEC seconds instead of -n iterations
  -I, --inline_size=N      max inline data (default 0 on rxe, like perftest)
  -t, --tx-depth=N         send queue depth (default 128 bandwidth, 1 latency)
  -N, --noPeak             do not compute the peak bandwidth
  -F, --CPU-freq           accepted for compatibility (rdmaperf uses the monotonic clock)
      --report_gbits       bandwidth in Gb/sec instead of MB/sec
Options (rdmaperf's):
      --json               one JSON object per result row instead of the text report
      --trace              kernel counters per message (eBPF doorbells, rxe hw_counters); needs root
      --stack=rdma|posix   messenger transport (msgr_*; default rdma)
      --msgr_opt=KEY=VAL   set a messenger option (msgr_*), e.g. ms_async_rdma_submit_time_trigger=0
      --msgr_loop=inline|app  msgr_lat: inline (default) sends the next ping from the pong's
                           fast dispatch on the messenger's worker goroutine, as the server
                           answers; app sends from a test goroutine that waits on a channel
                           for each pong (adds a goroutine wake-up per round trip)
      --msgr_bg_bytes=N    msgr_lat: a second connection between the same two messengers
                           streams N bytes client -> server in 64 KiB messages (the server
                           discards them), from before each size's first ping until all N
                           arrived; both sides run ms_async_op_threads=1, so that both
                           connections share the one worker of each side; the bytes moved
                           during the measurement are on stderr and in the row's
                           msgr_bg_bytes_moved and msgr_bg_mb_sec (--json)
      --progress=auto|on|off  progress on stderr (auto: when stderr is a terminal)

The raw tests run with one P and crossings into C of at most 15 µs, so that
the runtime neither retakes the poller's P nor wakes another thread
(RDMAPERF_PROCS, RDMAPERF_SPIN_US change that). GODEBUG=cgocheck=0 removes
the runtime's pointer checks from every verbs crossing (the shim passes only
C memory); RDMAPERF_CPUPROFILE=FILE writes a pprof CPU profile,
RDMAPERF_GOTRACE=FILE a Go execution trace (go tool trace).
`
