package msgr

// This file is a connection's timers: one slot per job, so that a closing
// socket or connection cancels them at once instead of leaving them, and
// the connection they hold, on the centre until they fire (a handshake
// timer kept a closed connection and its read buffer alive for
// ms_connection_ready_timeout).

import (
	"time"

	"github.com/asyncmsgr/asyncmsgr/netstack"
)

const (
	tmReady   = iota // dial or handshake deadline (ms_connection_ready_timeout)
	tmTick           // keepalive and idle-timeout tick
	tmBackoff        // reconnect back-off
	nTimers
)

// timerRef is a scheduled time event and the centre it is on (a session
// adopting a socket moves to another centre; ids are per centre).
type timerRef struct {
	on *netstack.EventCenter
	id netstack.TimerID
}

// armTimerLocked schedules f in slot (owner goroutine), replacing the slot's
// previous timer.
func (c *Connection) armTimerLocked(slot int, after time.Duration, f func()) {
	c.cancelTimerLocked(slot)
	c.timers[slot] = timerRef{on: c.center, id: c.center.CreateTimeEvent(after, f)}
}

// armTickLocked schedules the next tick of generation g. Ticks fall on a
// grid of c.tick common to the process (tickGrid), so the connections of a
// centre with the same period tick in one wake-up of its loop, and the
// centres of a process at the same instant: on an idle messenger the
// ticks are most of the wake-ups.
func (c *Connection) armTickLocked(g uint64) {
	c.cancelTimerLocked(tmTick)
	when := tickGrid(time.Now(), c.tick)
	c.timers[tmTick] = timerRef{on: c.center, id: c.center.CreateTimeEventAt(when, func() { c.onTick(g) })}
}

// tickEpoch is the origin of the tick grid.
var tickEpoch = time.Now()

// tickGrid is the first point of the grid of period d after now.
func tickGrid(now time.Time, d time.Duration) time.Time {
	since := now.Sub(tickEpoch)
	return tickEpoch.Add(since - since%d + d)
}

// cancelTimerLocked cancels slot's timer (owner goroutine). Deleting one
// that already ran is a no-op: a centre never reuses an id.
func (c *Connection) cancelTimerLocked(slot int) {
	r := c.timers[slot]
	c.timers[slot] = timerRef{}
	switch {
	case r.on == nil:
	case r.on == c.center:
		r.on.DeleteTimeEvent(r.id)
	default:
		_ = r.on.DispatchExternal(func() { r.on.DeleteTimeEvent(r.id) })
	}
}

// cancelTimersLocked cancels every timer (owner goroutine).
func (c *Connection) cancelTimersLocked() {
	for i := range c.timers {
		c.cancelTimerLocked(i)
	}
}

// dropTimersLocked cancels every timer from any goroutine holding c.mu: the
// deletions run on the timers' centres (a stopped centre has dropped them
// already).
func (c *Connection) dropTimersLocked() {
	for i, r := range c.timers {
		c.timers[i] = timerRef{}
		if r.on != nil {
			_ = r.on.DispatchExternal(func() { r.on.DeleteTimeEvent(r.id) })
		}
	}
}
