package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	rtrace "runtime/trace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/clock"
	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/perf"
	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/raw"
	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/trace"
)

func main() {
	// RDMAPERF_CPUPROFILE=FILE writes a CPU profile of the run (pprof).
	if f := os.Getenv("RDMAPERF_CPUPROFILE"); f != "" {
		if out, err := os.Create(f); err == nil {
			if pprof.StartCPUProfile(out) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	// RDMAPERF_GOTRACE=FILE writes a Go execution trace (go tool trace):
	// which goroutine woke which, and when a thread slept or a P moved.
	if f := os.Getenv("RDMAPERF_GOTRACE"); f != "" {
		if out, err := os.Create(f); err == nil && rtrace.Start(out) == nil {
			defer rtrace.Stop()
		}
	}
	code := mainCode()
	pprof.StopCPUProfile()
	rtrace.Stop()
	os.Exit(code)
}

func mainCode() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runMain(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
}

// runMain runs one rdmaperf invocation and returns its exit code. ln, when
// set, is the server's out-of-band listener (tests pass one on port 0).
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer, ln net.Listener) int {
	p, err := perf.Parse(args)
	if errors.Is(err, perf.ErrHelp) {
		io.WriteString(stdout, perf.Usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "rdmaperf: %v\n\n%s", err, perf.Usage)
		return 2
	}
	if err := run(ctx, p, stdout, stderr, ln); err != nil {
		msg := err.Error()
		for strings.HasPrefix(msg, "rdmaperf: ") {
			msg = strings.TrimPrefix(msg, "rdmaperf: ")
		}
		fmt.Fprintf(stderr, "rdmaperf: %s\n", msg)
		return 1
	}
	return 0
}

// syncWriter serialises writes of the report and the progress line.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func run(ctx context.Context, p *perf.Params, stdout, stderr io.Writer, ln net.Listener) error {
	var tr *trace.Tracer
	if p.Trace {
		var err error
		if tr, err = trace.Open(p.Device, p.IBPort); err != nil {
			return err
		}
		defer tr.Close()
	}
	var oob *perf.OOB
	var err error
	if p.IsServer() {
		if ln == nil {
			if ln, err = perf.Listen(p.Port); err != nil {
				return err
			}
		}
		defer ln.Close()
		if !p.JSON {
			io.WriteString(stdout, perf.WaitingBanner)
		}
		stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
		oob, err = perf.Accept(ln, 0)
		stopAccept()
		if err != nil {
			return err
		}
		defer oob.Close()
		if err := oob.HelloServer(p.Agreement()); err != nil {
			return err
		}
	} else {
		if oob, err = perf.Dial(p.Server, p.Port, 30*time.Second); err != nil {
			return err
		}
		defer oob.Close()
		if err := oob.HelloClient(p.Agreement()); err != nil {
			return err
		}
	}
	// Closing the exchange socket on a signal makes both sides stop.
	defer context.AfterFunc(ctx, func() { oob.Close() })()

	clock.Calibrate()
	out := &syncWriter{w: stdout}
	prog := newProgress(p, stderr)
	h := raw.Hooks{
		Info: func(d perf.DeviceInfo) { perf.TestInfo(out, p, d) },
		Dests: func(l, r perf.Dest, gid bool) {
			perf.PrintDest(out, p, "local", l, gid)
			perf.PrintDest(out, p, "remote", r, gid)
		},
		Header:   func() { perf.ResultHeader(out, p) },
		Progress: prog.counter(),
	}
	var before trace.Snapshot
	var delta *trace.Delta
	var traceErr error
	h.BeforeSize = func(size int) {
		prog.start(size)
		if tr != nil {
			before, traceErr = tr.Snap()
		}
	}
	h.AfterSize = func(size, msgs int) {
		prog.stop()
		delta = nil
		if tr != nil && traceErr == nil {
			after, err := tr.Snap()
			if err == nil {
				d := trace.Diff(before, after, msgs)
				delta = &d
			}
		}
	}
	printTrace := func() {
		if delta == nil {
			return
		}
		if p.JSON {
			perf.WriteJSON(out, map[string]any{"trace": delta})
		} else {
			fmt.Fprintln(out, delta.String())
		}
	}
	h.Lat = func(r perf.LatResult) { perf.WriteLatRow(out, r, p.JSON); printTrace() }
	h.BW = func(r perf.BWResult) { perf.WriteBWRow(out, r, p.JSON); printTrace() }

	if p.Verb == "msgr" {
		err = runMsgr(ctx, p, oob, h, stderr)
	} else {
		// raw.Run sets GOMAXPROCS for the run (one P; RDMAPERF_PROCS)
		err = raw.Run(p, oob, h)
	}
	prog.stop()
	if err != nil {
		return err
	}
	if !p.JSON {
		io.WriteString(out, perf.ResultLine)
	}
	return nil
}

// progress shows "size N: i/iters" on stderr while a size runs, when stderr
// is a terminal (or --progress=on).
type progress struct {
	p    *perf.Params
	w    io.Writer
	n    atomic.Int64
	on   bool
	done chan struct{}
	wg   sync.WaitGroup
}

func newProgress(p *perf.Params, w io.Writer) *progress {
	pr := &progress{p: p, w: w}
	switch p.Progress {
	case "on":
		pr.on = true
	case "auto":
		if f, ok := w.(*os.File); ok {
			_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
			pr.on = err == nil
		}
	}
	return pr
}

func (pr *progress) counter() *atomic.Int64 {
	if !pr.on {
		return nil
	}
	return &pr.n
}

func (pr *progress) start(size int) {
	if !pr.on {
		return
	}
	pr.n.Store(0)
	pr.done = make(chan struct{})
	pr.wg.Add(1)
	go func(done chan struct{}) {
		defer pr.wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		begin := time.Now()
		for {
			select {
			case <-done:
				fmt.Fprintf(pr.w, "\r\033[K")
				return
			case <-t.C:
				total := fmt.Sprint(pr.p.Iters)
				if pr.p.Duration > 0 {
					total = fmt.Sprintf("%ds", pr.p.Duration)
				}
				fmt.Fprintf(pr.w, "\r\033[K rdmaperf %s: size %d: %d/%s (%.0fs)", pr.p.Test, size, pr.n.Load(), total, time.Since(begin).Seconds())
			}
		}
	}(pr.done)
}

func (pr *progress) stop() {
	if !pr.on || pr.done == nil {
		return
	}
	close(pr.done)
	pr.done = nil
	pr.wg.Wait()
}
