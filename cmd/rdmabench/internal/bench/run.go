package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Result is one measurement as results.jsonl stores it. Row is nil when the
// run failed (Err says how) or was not measured (Skipped says why).
type Result struct {
	Series  string  `json:"series"`
	Test    string  `json:"test"`
	Size    int     `json:"size"`
	Iters   int     `json:"iterations"`
	Rep     int     `json:"rep"`
	Row     *Row    `json:"row,omitempty"`
	Err     string  `json:"error,omitempty"`
	Skipped string  `json:"not_measured,omitempty"`
	Seconds float64 `json:"seconds"`
	// Profile is the client's CPU profile, relative to the results
	// directory, when the spec asked for one and it was written.
	Profile string `json:"profile,omitempty"`
}

// Key is the point r measured.
func (r Result) Key() Key { return Key{r.Series, r.Test, r.Size} }

// Runner runs Specs as server/client pairs on one machine: the server in
// the background, the client against 127.0.0.1 once the server listens
// (perftest's client gives up at once when nobody does).
type Runner struct {
	Rdmaperf string // path of the rdmaperf binary
	Dev      Device
	Caps     Caps
	RawDir   string        // each run's client and server output, for the post-mortem
	Timeout  time.Duration // per side (default 300 s)
	Log      io.Writer     // one line per run
	Planned  int           // runs in the plan, for the progress count
	port     int
	n        int
}

// Run measures s.
func (rn *Runner) Run(ctx context.Context, s Spec) Result {
	res := Result{Series: s.Series.Name, Test: s.Test, Size: s.Size, Iters: s.Iters, Rep: s.Rep}
	rn.n++
	if why := rn.Caps.Missing(s.Series); why != "" {
		res.Skipped = why
		rn.logf("%-22s %-9s %7d B: not measured (%s)", res.Series, res.Test, res.Size, why)
		return res
	}
	if rn.port == 0 {
		rn.port = 20000
	}
	rn.port++
	timeout := rn.Timeout
	if timeout == 0 {
		timeout = 300 * time.Second
	}
	base := fmt.Sprintf("%03d-%s-%s-%d", rn.n, res.Series, res.Test, res.Size)
	var prof string
	if s.Profile && rn.RawDir != "" {
		prof = filepath.Join(rn.RawDir, base+".pprof")
	}
	start := time.Now()
	cli, srv, err := rn.pair(ctx, s, timeout, prof)
	res.Seconds = time.Since(start).Round(100 * time.Millisecond).Seconds()
	if fi, e := os.Stat(prof); prof != "" && e == nil && fi.Size() > 0 {
		res.Profile = filepath.Join(filepath.Base(rn.RawDir), base+".pprof")
	}
	if rn.RawDir != "" {
		os.WriteFile(filepath.Join(rn.RawDir, base+".cli"), cli, 0o644)
		os.WriteFile(filepath.Join(rn.RawDir, base+".srv"), srv, 0o644)
	}
	if err == nil {
		var row Row
		if s.Series.Tool == ToolPerftest {
			row, err = ParsePerftest(cli, IsLat(s.Test))
		} else {
			row, err = ParseRdmaperf(cli, IsLat(s.Test))
		}
		if err == nil {
			res.Row = &row
		}
	}
	if err != nil {
		res.Err = err.Error()
		rn.logf("%-22s %-9s %7d B: FAILED: %v (%s.cli)", res.Series, res.Test, res.Size, err, base)
		return res
	}
	rn.logf("%-22s %-9s %7d B: %10.2f  (%.1fs)", res.Series, res.Test, res.Size, res.Row.Value(IsLat(s.Test)), res.Seconds)
	return res
}

func (rn *Runner) logf(format string, a ...any) {
	if rn.Log != nil {
		fmt.Fprintf(rn.Log, "bench: [%d/%d] "+format+"\n", append([]any{rn.n, rn.Planned}, a...)...)
	}
}

// pair runs the server and the client of s and returns their outputs; the
// client writes its CPU profile to prof unless it is "".
func (rn *Runner) pair(ctx context.Context, s Spec, timeout time.Duration, prof string) (cli, srv []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sa := s.ServerArgv(rn.Rdmaperf, rn.Dev, rn.port)
	var srvOut bytes.Buffer
	sc := exec.CommandContext(ctx, sa[0], sa[1:]...)
	sc.Stdout, sc.Stderr = &srvOut, &srvOut
	if err := sc.Start(); err != nil {
		return nil, nil, fmt.Errorf("server: %w", err)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- sc.Wait() }()
	if err := waitListen(ctx, rn.port, srvDone); err != nil {
		sc.Process.Kill()
		<-srvDone
		return nil, srvOut.Bytes(), fmt.Errorf("server: %w", err)
	}
	ca := s.ClientArgv(rn.Rdmaperf, rn.Dev, rn.port, "127.0.0.1")
	cc := exec.CommandContext(ctx, ca[0], ca[1:]...)
	if prof != "" {
		cc.Env = append(os.Environ(), "RDMAPERF_CPUPROFILE="+prof)
	}
	cli, cerr := cc.CombinedOutput()
	// The server ends once its client has; one still running 30 s later is
	// stuck. Its exit status is not the measurement's: the client's row is
	// (perftest's server exits non-zero for reasons that spoil nothing).
	select {
	case <-srvDone:
	case <-time.After(30 * time.Second):
		sc.Process.Kill()
		<-srvDone
		rn.logf("server of %s %s %d B still running 30 s after its client: killed", s.Series.Name, s.Test, s.Size)
	}
	if cerr != nil {
		err = fmt.Errorf("client: %w", cerr)
	}
	return cli, srvOut.Bytes(), err
}

// waitListen waits until a TCP socket listens on port (at most 30 s), or the
// server has ended.
func waitListen(ctx context.Context, port int, ended <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if listening(port) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on port %d after 30 s", port)
		}
		select {
		case err := <-ended:
			return fmt.Errorf("ended before listening on port %d: %v", port, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// listening reports whether /proc/net/tcp or tcp6 shows a listener on port.
// Probing with connect would be accepted by perftest's server as its client.
func listening(port int) bool {
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err == nil && ListensOn(b, port) {
			return true
		}
	}
	return false
}

// ListensOn reports whether a /proc/net/tcp table has a socket in state
// LISTEN (0A) on local port port.
func ListensOn(table []byte, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 3 && f[3] == "0A" && strings.HasSuffix(f[1], want) {
			return true
		}
	}
	return false
}

// WriteResults writes rs as JSON lines.
func WriteResults(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// ReadResults reads what WriteResults wrote.
func ReadResults(r io.Reader) ([]Result, error) {
	var out []Result
	dec := json.NewDecoder(r)
	for {
		var x Result
		err := dec.Decode(&x)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("results line %d: %w", len(out)+1, err)
		}
		out = append(out, x)
	}
}

// DeviceFromEnv is the device of RXE_DEV_A / RXE_GID_IDX (what vm-run.sh
// sets), else the first device in sysfs and GID index 1.
func DeviceFromEnv() (Device, error) {
	d := Device{Name: os.Getenv("RXE_DEV_A"), GIDIndex: 1}
	if v := os.Getenv("RXE_GID_IDX"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return d, fmt.Errorf("RXE_GID_IDX=%q: %w", v, err)
		}
		d.GIDIndex = n
	}
	if d.Name == "" {
		ents, _ := os.ReadDir("/sys/class/infiniband")
		if len(ents) == 0 {
			return d, errors.New("no RDMA device (RXE_DEV_A unset, /sys/class/infiniband empty)")
		}
		d.Name = ents[0].Name()
	}
	return d, nil
}

// HasDevice reports whether this machine has an RDMA device.
func HasDevice() bool {
	ents, _ := os.ReadDir("/sys/class/infiniband")
	return len(ents) > 0
}
