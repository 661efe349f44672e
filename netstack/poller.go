package netstack

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/asyncmsgr/asyncmsgr/internal/monoclock"
)

// A spinning loop's turn must cost little more than the polls themselves:
// the time between a completion's arrival and its handling is half a turn
// on average. Under emulation (qemu TCG with an hpet clocksource) every
// syscall and clock read traps, so a turn that made them every time took
// tens of microseconds.
const (
	// spinCheckTurns: an empty spinning turn runs the external queue (one
	// atomic load), and only every spinCheckTurns turns does it also look
	// at epoll (a syscall), the timers and the clock for the spin window.
	// A turn whose pollers found work always does, so that what the work
	// caused (a socket still readable, a timer armed) is seen at once,
	// unless every poller that found work is an InlinePoller that made no
	// file ready (its timers then wait for the periodic check).
	spinCheckTurns = 16
	// spinYieldTurns: a spinning loop calls runtime.Gosched every
	// spinYieldTurns turns. It never parks, so without a yield the
	// goroutines sharing its P (an application goroutine woken by a
	// callback, a Submit waiter, a dial's netpoller wake-up) would wait for
	// the runtime's asynchronous preemption, about 10 ms, whenever every P
	// is spinning. Gosched wakes an idle P's thread (wakep) when there is
	// one, so it is not free: yielding every 1024 turns instead made no
	// difference to a spinning worker's context switches (perf, issue 9),
	// and a loaded VM then starved a dialling goroutine.
	spinYieldTurns = 32
)

// pollerReg is one AddPoller registration.
type pollerReg struct {
	p       Poller
	inline  InlinePoller // p, when it is one
	spin    time.Duration
	removed atomic.Bool // set by remove; the loop stops calling p once it sees it
}

// pollState is the loop goroutine's polling state.
type pollState struct {
	pollers   []*pollerReg
	spin      time.Duration // the longest spin window among pollers
	spinning  bool          // a poll found work and the window after it is open
	idleSince time.Time     // first empty turn of the current window (zero: not yet)
	turns     uint64        // non-blocking turns, for the checks and the yield
	// quiet: work found by the pollers opens no spin window until the
	// loop has gone to sleep this many times (Quiet).
	quiet int
	stats pollCounters
}

// pollCounters are the centre's polling counters (written on the loop, read
// by PollStats from any goroutine).
type pollCounters struct {
	windows, busyTurns, armRetries, turns, idleSpinNS, sleeps atomic.Uint64
}

// PollStats are an event centre's busy-polling counters.
type PollStats struct {
	// Windows counts spin windows opened (a poll found work while the
	// loop was not spinning).
	Windows uint64
	// Turns counts non-blocking polling turns (as of the last window's
	// close), BusyTurns those whose pollers found work.
	Turns, BusyTurns uint64
	// ArmRetries counts closes refused by a poller's Arm (work found).
	ArmRetries uint64
	// IdleSpin is the time spun without work, summed over closed windows.
	IdleSpin time.Duration
	// Sleeps counts the loop's sleeping turns (each ends in a wake-up).
	Sleeps uint64
}

// PollStats returns the centre's polling counters (any goroutine).
func (c *EventCenter) PollStats() PollStats {
	s := &c.polling.stats
	return PollStats{Windows: s.windows.Load(), Turns: s.turns.Load(), BusyTurns: s.busyTurns.Load(),
		ArmRetries: s.armRetries.Load(), IdleSpin: time.Duration(s.idleSpinNS.Load()), Sleeps: s.sleeps.Load()}
}

// AddPoller registers p on the loop (callable from any goroutine; applied on the loop). While any
// poller returns >0, and for `spin` after the last work, the centre does not block: it calls Poll
// on each poller every turn and checks epoll with a zero timeout (file events and timers still run).
// Then it calls Arm on each; if all return true it sleeps in epoll_wait as today. The returned
// remove func unregisters p (idempotent, any goroutine).
//
// Poll and Arm run on the loop goroutine, so they may use the loop-only
// methods. A spinning loop calls runtime.Gosched every spinYieldTurns
// turns, so goroutines sharing its P are not starved. Once remove has
// returned, Poll and Arm are not called again (a call already running on the
// loop, when remove comes from another goroutine, finishes first). On a
// centre that is stopped, or stops, p is never called again.
func (c *EventCenter) AddPoller(p Poller, spin time.Duration) (remove func()) {
	r := &pollerReg{p: p, spin: max(spin, 0)}
	r.inline, _ = p.(InlinePoller)
	_ = c.DispatchExternal(func() {
		if r.removed.Load() {
			return
		}
		c.polling.pollers = append(c.polling.pollers, r)
		c.polling.spin = max(c.polling.spin, r.spin)
		// The next turn polls it; the window opens only once it finds work.
	})
	return func() {
		if r.removed.Swap(true) {
			return
		}
		_ = c.DispatchExternal(func() { c.dropPoller(r) })
	}
}

func (c *EventCenter) dropPoller(r *pollerReg) {
	ps := &c.polling
	kept := ps.pollers[:0]
	ps.spin = 0
	for _, q := range ps.pollers {
		if q != r {
			kept = append(kept, q)
			ps.spin = max(ps.spin, q.spin)
		}
	}
	clear(ps.pollers[len(kept):])
	ps.pollers = kept
}

// pollTurn polls every poller once and, while they find work or the spin
// window after it is open, runs a non-blocking turn and returns true. It
// returns false when the loop should sleep: the window has passed and every
// poller re-armed its notification.
func (c *EventCenter) pollTurn() bool {
	ps := &c.polling
	work, turn := 0, false
	for _, r := range ps.pollers {
		if !r.removed.Load() {
			n := r.p.Poll()
			work += n
			if n > 0 && !turn {
				turn = r.inline == nil || r.inline.PollNeedsTurn()
			}
		}
	}
	switch {
	case work > 0 && (ps.spinning || ps.quiet == 0):
		if !ps.spinning {
			ps.stats.windows.Add(1)
		}
		ps.quiet = 0 // traffic: the spinning goes on as usual
		ps.stats.busyTurns.Add(1)
		ps.spinning = true
		ps.idleSince = time.Time{}
	case ps.spinning && ps.spin > 0:
		// The clock is read only on empty turns: busy turns restart the
		// window without it.
		if ps.turns%spinCheckTurns != 0 {
			break
		}
		now := monoclock.Now() // one clock read, not time.Now's two
		if ps.idleSince.IsZero() {
			ps.idleSince = now
		}
		if now.Sub(ps.idleSince) < ps.spin {
			break
		}
		ps.stats.idleSpinNS.Add(uint64(now.Sub(ps.idleSince)))
		fallthrough
	default:
		if c.armAll() {
			ps.stats.turns.Store(ps.turns)
			ps.spinning = false
			ps.idleSince = time.Time{}
			if ps.quiet > 0 {
				ps.quiet--
			}
			return false
		}
		// Work arrived while arming: poll again instead of sleeping.
		ps.stats.armRetries.Add(1)
	}
	ps.turns++
	if turn || ps.turns%spinCheckTurns == 0 {
		c.turnNoWait()
	} else if c.hasWork.Load() {
		c.runExternal()
	}
	if ps.turns%spinYieldTurns == 0 {
		runtime.Gosched()
	}
	return true
}

// Quiet tells a loop that is not spinning that the work its callbacks
// handle now predicts no traffic (a keepalive and its ack): what its
// pollers find in this wake-up and in the next `wakeups` ones opens no
// spin window, so the loop re-arms and sleeps at once (a keepalive's
// send completion is such a later wake-up). Busy polling exists to catch
// the next message of a flow; after a keepalive none is coming, and in
// the emulated VM each idle ms_async_rdma_polling_us window cost about
// 1 ms of CPU. A loop already spinning goes on spinning, and work found
// while it spins ends the quiet. Loop goroutine only.
func (c *EventCenter) Quiet(wakeups int) {
	c.polling.quiet = max(c.polling.quiet, wakeups+1)
}

// armAll calls Arm on every poller (all of them, so each one's notification
// is re-armed) and reports whether all agreed to sleep.
func (c *EventCenter) armAll() bool {
	ok := true
	for _, r := range c.polling.pollers {
		if !r.removed.Load() && !r.p.Arm() {
			ok = false
		}
	}
	return ok
}
