package netstack

import (
	"runtime"
	"sync/atomic"
	"time"
)

// spinYieldTurns is how many non-blocking turns a spinning loop runs between
// runtime.Gosched calls. A spinning loop never parks, so without a yield the
// goroutines sharing its P (an application goroutine woken by a callback,
// a Submit waiter) would wait for the runtime's asynchronous preemption,
// about 10 ms; each turn is bounded (one batch per poller, at most
// maxEventsPerWait file events), so yielding every spinYieldTurns turns
// bounds that wait to a few tens of turns. Gosched with nothing else
// runnable returns at once.
const spinYieldTurns = 32

// pollerReg is one AddPoller registration.
type pollerReg struct {
	p       Poller
	spin    time.Duration
	removed atomic.Bool // set by remove; the loop stops calling p once it sees it
}

// pollState is the loop goroutine's polling state.
type pollState struct {
	pollers   []*pollerReg
	spin      time.Duration // the longest spin window among pollers
	spinning  bool          // a poll found work and the window after it is open
	idleSince time.Time     // first empty turn of the current window (zero: not yet)
	turns     uint64        // non-blocking turns, for the yield
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
	work := 0
	for _, r := range ps.pollers {
		if !r.removed.Load() {
			work += r.p.Poll()
		}
	}
	switch {
	case work > 0:
		ps.spinning = true
		ps.idleSince = time.Time{}
	case ps.spinning && ps.spin > 0:
		// The clock is read only on empty turns: busy turns restart the
		// window without it.
		now := time.Now()
		if ps.idleSince.IsZero() {
			ps.idleSince = now
		}
		if now.Sub(ps.idleSince) < ps.spin {
			break
		}
		fallthrough
	default:
		if c.armAll() {
			ps.spinning = false
			ps.idleSince = time.Time{}
			return false
		}
		// Work arrived while arming: poll again instead of sleeping.
	}
	c.turnNoWait()
	ps.turns++
	if ps.turns%spinYieldTurns == 0 {
		runtime.Gosched()
	}
	return true
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
