package raw

import (
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/clock"
)

// goRuntime is how the latency loops share their goroutine with the Go
// runtime while they spin in C (see the package doc for the measurements
// behind the defaults). The RDMAPERF_* variables override them, for
// measuring the alternatives.
type goRuntime struct {
	// maxTicks bounds each PostSpin crossing by time (verbs.SpinWait.MaxTicks).
	maxTicks uint64
	// yieldNs: after a post, runtime.Gosched once this long has passed
	// since the last yield (0: never), so that sysmon sees the goroutine
	// scheduled and never preempts it.
	yieldNs   int64
	lastYield int64
	// lockThread: the loops run locked to their OS thread.
	lockThread bool
	// procs: GOMAXPROCS while the run lasts (0: as the caller set it).
	procs int
}

// The defaults, from the measurements in the package doc: one P, crossings
// of at most 15 µs (sysmon's shortest tick is 20 µs, and a P in a call that
// spans two of its ticks is retaken when no other P is idle), a yield every
// 2 ms (well inside the 10 ms after which sysmon preempts a goroutine that
// was never rescheduled, and takes its P if it is in C).
const (
	defaultProcs = 1
	defaultSpin  = 15 * time.Microsecond
	defaultYield = 2 * time.Millisecond
)

func envDur(name string, def time.Duration) time.Duration {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return time.Duration(v * float64(time.Microsecond))
	}
	return def
}

func loadGoRuntime() goRuntime {
	g := goRuntime{
		maxTicks: clock.Ticks(envDur("RDMAPERF_SPIN_US", defaultSpin)),
		yieldNs:  int64(envDur("RDMAPERF_YIELD_US", defaultYield)),
	}
	g.lockThread = os.Getenv("RDMAPERF_LOCK_THREAD") == "1"
	g.procs = defaultProcs
	if n, err := strconv.Atoi(os.Getenv("RDMAPERF_PROCS")); err == nil {
		g.procs = n
	}
	return g
}

// enter applies the settings for a run; the returned func undoes them.
func (g *goRuntime) enter() func() {
	undo := func() {}
	if g.procs > 0 {
		old := runtime.GOMAXPROCS(g.procs)
		undo = func() { runtime.GOMAXPROCS(old) }
	}
	if g.lockThread {
		runtime.LockOSThread()
		u := undo
		undo = func() { runtime.UnlockOSThread(); u() }
	}
	return undo
}

// posted is called right after a send left (a safe point: the reply is in
// flight, nothing waits on this goroutine).
func (g *goRuntime) posted() {
	if g.yieldNs <= 0 {
		return
	}
	if now := clock.Now(); now-g.lastYield >= g.yieldNs {
		g.lastYield = now
		runtime.Gosched()
	}
}
