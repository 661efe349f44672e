package raw

import (
	"math"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/clock"
	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/perf"
)

// goRuntime is how the latency loops share their goroutine with the Go
// runtime while they spin in C (see the package doc for the measurements
// behind the defaults). The RDMAPERF_* variables override them, for
// measuring the alternatives.
type goRuntime struct {
	// loopTicks bounds each crossing of a whole-loop run (latLoop, the
	// -n send_lat and write_lat runs); 0 runs them step by step
	// (PostSpin) like the others.
	loopTicks uint64
	// maxTicks bounds each PostSpin crossing by time (verbs.SpinWait.MaxTicks).
	maxTicks uint64
	// yieldNs: after a post (a step) or a crossing (a loop),
	// runtime.Gosched once this long has passed since the last yield (0:
	// never), so that sysmon sees the goroutine scheduled and never
	// preempts it.
	yieldNs   int64
	lastYield int64
	// lockThread: the loops run locked to their OS thread.
	lockThread bool
	// procs: GOMAXPROCS while the run lasts (0: as the caller set it).
	procs int
	// postList: the bandwidth client posts the WRs its window allows in
	// chains of at most this many (RDMAPERF_POST_LIST).
	postList int
}

// The defaults, from the measurements in the package doc.
//
// A whole-loop run: two Ps (one idle, so sysmon leaves a goroutine in C
// alone for up to 10 ms and never wakes a thread for its P), crossings of at
// most 1 ms (well inside those 10 ms), no yield (with an idle P a Gosched
// wakes a spinning thread; the one preemption per 10 ms does too, but only
// that once).
//
// The step-by-step runs: one P (no idle P, so no spinning thread is ever
// woken), crossings of at most 15 µs (under sysmon's shortest tick of 20
// µs: a P in a call spanning two of its ticks is retaken when no other P is
// idle), a yield every 2 ms (well inside the 10 ms after which sysmon
// preempts a goroutine that was never rescheduled, and takes its P if it is
// in C).
const (
	defaultLoop      = time.Millisecond
	defaultLoopProcs = 2
	defaultProcs     = 1
	defaultSpin      = 15 * time.Microsecond
	defaultYield     = 2 * time.Millisecond
)

func envDur(name string, def time.Duration) time.Duration {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return time.Duration(v * float64(time.Microsecond))
	}
	return def
}

// usesLoop says whether p's run is a whole-loop one when loops are on.
func usesLoop(p *perf.Params) bool {
	return p.Lat && p.Duration == 0 && (p.Verb == "send" || p.Verb == "write")
}

func loadGoRuntime(p *perf.Params) goRuntime {
	g := goRuntime{maxTicks: clock.Ticks(envDur("RDMAPERF_SPIN_US", defaultSpin))}
	procs, yield := defaultProcs, defaultYield
	if usesLoop(p) {
		g.loopTicks = clock.Ticks(envDur("RDMAPERF_LOOP_US", defaultLoop))
	}
	if g.loopTicks > 0 {
		procs, yield = defaultLoopProcs, 0
	}
	g.yieldNs = int64(envDur("RDMAPERF_YIELD_US", yield))
	g.lockThread = os.Getenv("RDMAPERF_LOCK_THREAD") == "1"
	g.procs = procs
	g.postList = math.MaxInt
	if n, err := strconv.Atoi(os.Getenv("RDMAPERF_POST_LIST")); err == nil && n > 0 {
		g.postList = n
	}
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

// posted is called right after a send left or a loop's crossing ended (a
// safe point: nothing waits on this goroutine).
func (g *goRuntime) posted() {
	if g.yieldNs <= 0 {
		return
	}
	if now := clock.Now(); now-g.lastYield >= g.yieldNs {
		g.lastYield = now
		runtime.Gosched()
	}
}
