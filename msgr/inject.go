package msgr

// This file is Ceph's fault injection (the ms_inject_* options, off by
// default): socket operations that fail as a broken socket would, received
// messages held back before dispatch (Ceph's DelayedDelivery) and sleeps at
// the point a reconnecting peer takes over a session. Everything here runs
// on the connection's owner goroutine, under c.mu, like the code it hooks.

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// ErrInjectedSocketFailure is the error of a socket operation that
// ms_inject_socket_failures made fail; the connection faults on it as on
// a real socket error.
var ErrInjectedSocketFailure = errors.New("msgr: injected socket failure (ms_inject_socket_failures)")

// injectFailure reports whether this socket operation is the 1 in
// ms_inject_socket_failures that fails (Ceph draws rand() % N == 0 before
// each read and write and shuts the socket down on a hit).
func (c *Connection) injectFailure() bool {
	n := c.msgr.cfg.InjectSocketFailures
	return n > 0 && rand.IntN(n) == 0
}

// sockRead is c.sock.Read with ms_inject_socket_failures applied.
func (c *Connection) sockRead(b []byte) (int, error) {
	if c.injectFailure() {
		c.msgr.log.Log(context.Background(), LevelMs0, "msgr: injecting socket failure", "conn", c, "op", "read")
		return 0, ErrInjectedSocketFailure
	}
	return c.sock.Read(b)
}

// sockSend is c.sock.Send with ms_inject_socket_failures applied.
func (c *Connection) sockSend(iov [][]byte, more bool) (int, error) {
	if c.injectFailure() {
		c.msgr.log.Log(context.Background(), LevelMs0, "msgr: injecting socket failure", "conn", c, "op", "write")
		return 0, ErrInjectedSocketFailure
	}
	return c.sock.Send(iov, more)
}

// injectInternalDelay sleeps ms_inject_internal_delays, 1 in
// ms_inject_socket_failures times, where Ceph does (handle_existing_connection
// and reuse_connection: a dialling peer meeting our own dial, a
// reconnecting one taking over its session): it widens the races a test
// wants hit.
func (c *Connection) injectInternalDelay() {
	cfg := c.msgr.cfg
	if cfg.InjectInternalDelays > 0 && c.injectFailure() {
		c.msgr.log.Log(context.Background(), LevelMs10, "msgr: injecting internal delay", "conn", c, "sleep", cfg.InjectInternalDelays)
		time.Sleep(cfg.InjectInternalDelays)
	}
}

// delayedDelivery is Ceph's DelayedDelivery: the received messages of a
// connection whose peer type ms_inject_delay_type lists, each with the
// time it may be dispatched. They leave in arrival order: one held back
// holds back those behind it, so per-connection order is kept. It lives
// as long as the connection, across faults and reconnects: a message in it
// has been acknowledged and must be delivered exactly once, unless its
// session is gone (discardDelayedLocked).
type delayedDelivery struct {
	q     []delayedItem
	armed bool // a release timer is pending
}

type delayedItem struct {
	it  dqItem
	due time.Time
}

// queueReceivedLocked queues a received message for delivery, through the
// connection's delay queue when ms_inject_delay_type names its peer type.
func (c *Connection) queueReceivedLocked(it dqItem) {
	if c.delay == nil && !c.delayPeerLocked() {
		c.post = append(c.post, it)
		return
	}
	cfg := c.msgr.cfg
	var d time.Duration
	if p := cfg.InjectDelayProbability; p > 0 && rand.Float64() < p {
		d = time.Duration(rand.Float64() * float64(cfg.InjectDelayMax))
	}
	dd := c.delay
	if d == 0 && len(dd.q) == 0 {
		c.post = append(c.post, it)
		return
	}
	if d > 0 {
		c.msgr.log.Log(context.Background(), LevelMs10, "msgr: delaying received message", "conn", c, "seq", it.m.Seq, "delay", d)
	}
	dd.q = append(dd.q, delayedItem{it: it, due: time.Now().Add(d)})
	c.armDelayedLocked()
}

// delayPeerLocked sets up the delay queue when ms_inject_delay_type names
// the peer's type (Ceph's maybe_start_delay_thread).
func (c *Connection) delayPeerLocked() bool {
	types := c.msgr.cfg.InjectDelayType
	if types == "" {
		return false
	}
	name := msgr2.EntityTypeName(c.peerName.Type)
	if name == "" || !strings.Contains(types, name) {
		return false
	}
	c.delay = &delayedDelivery{}
	return true
}

// armDelayedLocked schedules the release of the head of the delay queue
// on the connection's centre (owner goroutine).
func (c *Connection) armDelayedLocked() {
	dd := c.delay
	if dd.armed || len(dd.q) == 0 || c.center == nil {
		return
	}
	dd.armed = true
	on := c.center
	on.CreateTimeEvent(time.Until(dd.q[0].due), func() { c.releaseDelayed(on) })
}

// releaseDelayed runs on the centre the timer was created on: it hands the
// messages now due to the dispatchers. A session that moved to another
// centre meanwhile is followed there (delivery writes on the socket's
// centre).
func (c *Connection) releaseDelayed(on *netstack.EventCenter) {
	c.mu.Lock()
	if c.center != on && c.center != nil && c.state != stClosed {
		center := c.center
		c.mu.Unlock()
		if center.DispatchExternal(func() { c.releaseDelayed(center) }) == nil {
			return
		}
		c.mu.Lock()
	}
	dd := c.delay
	dd.armed = false
	if c.state == stClosed || c.center != on {
		// Ceph discards a closed connection's queued messages too.
		c.discardDelayedLocked()
		c.mu.Unlock()
		return
	}
	if c.state == stReplacing {
		// Between its old centre and the new socket's (handOverLocked):
		// delivering here would race the new centre's deliveries of the
		// messages after these. The adoption re-arms the release.
		c.mu.Unlock()
		return
	}
	now := time.Now()
	n := 0
	for n < len(dd.q) && !dd.q[n].due.After(now) {
		c.post = append(c.post, dd.q[n].it)
		n++
	}
	rest := copy(dd.q, dd.q[n:])
	clear(dd.q[rest:])
	dd.q = dd.q[:rest]
	c.armDelayedLocked()
	c.unlockAndDeliver()
}

// discardDelayedLocked drops the messages held back, which belong to a
// session that is gone: the connection closed, or the peer reset the
// session (Ceph's reset_session discards its DelayedDelivery).
func (c *Connection) discardDelayedLocked() {
	dd := c.delay
	if dd == nil {
		return
	}
	for i := range dd.q {
		dd.q[i].it.rx.put()
	}
	clear(dd.q)
	dd.q = dd.q[:0]
}
