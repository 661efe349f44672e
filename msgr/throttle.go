package msgr

// This file is the receive side's throttles, after Ceph's: a Policy's
// throttler_bytes / throttler_messages and the DispatchQueue's
// ms_dispatch_throttle_bytes. A MESSAGE frame's body is read off the socket
// only once every throttle in its way has granted its size; until then the
// connection stops reading, so the bytes wait in the peer's socket (TCP
// flow control, or the rdma stack's receive buffers and RNR) and the peer's
// sends wait too. The grant travels with the message and is put back when
// its dispatcher returns (Ceph keeps the policy throttlers' share until the
// Message is freed; Go has no such moment).
//
// Known limit, as in Ceph: the grant is the whole frame's, taken when its
// preamble arrives, so an authenticated peer that announces a message as
// big as a throttle and then stalls holds that throttle, and every other
// connection behind it waits, until its own ms_connection_idle_timeout
// closes it. A connection waiting for a throttle is not idle.

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/asyncmsgr/asyncmsgr/perfcounters"
)

// Throttle is Ceph's Throttle: a budget of units (bytes or messages) that
// takers get and put back. A take that does not fit waits; one larger than
// the whole budget is let through when the budget is not overdrawn, so that
// it cannot wait forever (Ceph's rule). Max 0 is no limit. Safe for
// concurrent use; its lock is a leaf (taken under any msgr lock, never
// holding one).
type Throttle struct {
	name    string
	max     int64
	mu      sync.Mutex
	cur     int64
	waiters []func()
	// Ceph's throttle perf counters (under mu): get_or_fail successes
	// (also counted as get, get_sum) and failures, put, put_sum.
	gets, getSum, fails, puts, putSum uint64
}

// NewThrottle returns a throttle of max units (0: unlimited) named name
// (Ceph names them e.g. "msgr_dispatch_throttler-osd.0").
func NewThrottle(name string, max int64) *Throttle {
	return &Throttle{name: name, max: max}
}

// Name is the throttle's name.
func (t *Throttle) Name() string { return t.name }

// Max is the budget (0: unlimited).
func (t *Throttle) Max() int64 { return t.max }

// Current is how many units are taken now.
func (t *Throttle) Current() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur
}

// GetOrFail takes n units if they fit now (Ceph's get_or_fail).
func (t *Throttle) GetOrFail(n int64) bool { return t.getOrWait(n, nil) }

// Put gives n units back and wakes whoever waits for room.
func (t *Throttle) Put(n int64) {
	if t == nil || n == 0 {
		return
	}
	t.mu.Lock()
	t.cur -= n
	if t.cur < 0 {
		t.cur = 0
	}
	t.puts++
	t.putSum += uint64(n)
	ws := t.waiters
	t.waiters = nil
	t.mu.Unlock()
	for _, w := range ws {
		w()
	}
}

// shouldWait is Ceph's Throttle::_should_wait (t.mu held).
func (t *Throttle) shouldWait(n int64) bool {
	m := t.max
	return m > 0 && ((n <= m && t.cur+n > m) || (n >= m && t.cur > m))
}

// getOrWait takes n units if they fit; otherwise wake (when not nil) is
// called once, without t's lock, by the next Put. Checking and registering
// under one lock means no Put can slip between them.
func (t *Throttle) getOrWait(n int64, wake func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shouldWait(n) {
		t.fails++
		if wake != nil {
			t.waiters = append(t.waiters, wake)
		}
		return false
	}
	t.cur += n
	t.gets++
	t.getSum += uint64(n)
	return true
}

// RegisterPerf adds the throttle's counters to reg as Ceph names them: a
// set "throttle-<name>" with val, max, get, get_sum, get_or_fail_fail,
// get_or_fail_success, put and put_sum. The messenger registers its
// dispatch throttle and the policy throttlers it is given.
func (t *Throttle) RegisterPerf(reg *perfcounters.Registry) {
	set := reg.Set("throttle-" + t.name)
	read := func(f func() uint64) func() uint64 {
		return func() uint64 {
			t.mu.Lock()
			defer t.mu.Unlock()
			return f()
		}
	}
	set.Func("val", "Currently taken slots", perfcounters.Gauge, read(func() uint64 { return uint64(t.cur) }))
	set.Func("max", "Max value for throttle", perfcounters.Gauge, func() uint64 { return uint64(t.max) })
	set.Func("get", "Gets", perfcounters.Counter, read(func() uint64 { return t.gets }))
	set.Func("get_sum", "Got data", perfcounters.Counter, read(func() uint64 { return t.getSum }))
	set.Func("get_or_fail_fail", "Get blocked during get_or_fail", perfcounters.Counter, read(func() uint64 { return t.fails }))
	set.Func("get_or_fail_success", "Successful get during get_or_fail", perfcounters.Counter, read(func() uint64 { return t.gets }))
	set.Func("put", "Puts", perfcounters.Counter, read(func() uint64 { return t.puts }))
	set.Func("put_sum", "Put data", perfcounters.Counter, read(func() uint64 { return t.putSum }))
}

// SetPolicyThrottlers sets the throttlers of the policy for peers of
// entityType (Ceph's Messenger::set_policy_throttlers): bytes bounds the
// bytes, msgs the number of received messages from all such peers that are
// not yet dispatched; either may be nil. The type's policy is the default
// one until SetPolicy gives it its own. Connections already up keep the
// policy they started with.
func (m *Messenger) SetPolicyThrottlers(entityType uint8, bytes, msgs *Throttle) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.policies[entityType]
	if !ok {
		p = m.defaultPolicy
	}
	p.ThrottlerBytes, p.ThrottlerMessages = bytes, msgs
	m.policies[entityType] = p
	for _, t := range []*Throttle{bytes, msgs} {
		if t != nil && m.perf != nil {
			t.RegisterPerf(m.perf.reg)
		}
	}
}

// DispatchThrottle is the messenger's ms_dispatch_throttle_bytes throttle
// (Ceph's DispatchQueue::dispatch_throttler).
func (d *DispatchQueue) DispatchThrottle() *Throttle { return d.thr }

// rxGrant is what a received message holds of the throttles; it goes back
// when the message's dispatcher returns (rxGrant.put).
type rxGrant struct {
	n          int64     // bytes (the frame's segments); 0: nothing held
	dispatch   *Throttle // ms_dispatch_throttle_bytes
	bytes, msg *Throttle // the policy's throttlers (nil: none)
}

func (g *rxGrant) put() {
	if g.n == 0 {
		return
	}
	g.dispatch.Put(g.n)
	g.bytes.Put(g.n)
	g.msg.Put(1)
	*g = rxGrant{}
}

// rxThrottle is a connection's receive throttling state (owner goroutine,
// but center, which a throttle's Put reads from any goroutine).
type rxThrottle struct {
	grant   rxGrant // held for the pending frame (c.pre) until a message takes it
	blocked bool    // reading stopped until a throttle has room
	wake    func()  // c.rxWake, made once: a throttle holds it while we wait
	// center is where the connection blocked: the wake-up goes there.
	center atomic.Pointer[netstack.EventCenter]
}

// admitFrameLocked decides whether the pending frame's body may be read:
// always, but for a MESSAGE of a ready session, which first takes its size
// from every throttle in its way. When one has no room, what was taken goes
// back, reading stops (the readable event is dropped, or the level-triggered
// socket would spin) and the throttle's next Put resumes it.
func (c *Connection) admitFrameLocked() bool {
	if c.pre.Tag != msgr2.TagMessage || c.state != stReady || c.rx.grant.n != 0 {
		return true
	}
	var n int64
	for i := 0; i < c.pre.NumSegments; i++ {
		n += int64(c.pre.Segments[i].Length)
	}
	if n == 0 {
		return true
	}
	g := rxGrant{dispatch: c.msgr.dq.thr, bytes: c.policy.ThrottlerBytes, msg: c.policy.ThrottlerMessages}
	if g.dispatch == nil && g.bytes == nil && g.msg == nil {
		return true
	}
	if c.rx.wake == nil {
		c.rx.wake = c.rxWake
	}
	c.rx.center.Store(c.center) // (before a throttle can call wake)
	wake := c.rx.wake
	switch {
	case g.msg != nil && !g.msg.getOrWait(1, wake):
	case g.bytes != nil && !g.bytes.getOrWait(n, wake):
		g.msg.Put(1)
	case g.dispatch != nil && !g.dispatch.getOrWait(n, wake):
		g.bytes.Put(n)
		g.msg.Put(1)
	default:
		g.n = n
		c.rx.grant = g
		return true
	}
	c.rx.blocked = true
	if c.sock != nil {
		// (an rdma socket's send space is signalled on the same readable
		// event: a blocked write waits for the resume too)
		_ = c.center.DeleteFileEvent(c.fd, netstack.EventReadable)
	}
	return false
}

// rxWake is called by a throttle's Put (any goroutine, maybe under a
// connection's or the DispatchQueue's lock: it takes none).
func (c *Connection) rxWake() {
	center := c.rx.center.Load()
	_ = center.DispatchExternal(func() { c.resumeRx(center) })
}

// resumeRx runs on center after a throttle the connection waits for had
// units put back: reading starts again with the pending frame.
func (c *Connection) resumeRx(center *netstack.EventCenter) {
	c.mu.Lock()
	if c.center != center {
		// moved to another centre since (a new socket starts unblocked)
		c.mu.Unlock()
		return
	}
	if c.rx.blocked && c.sock != nil {
		g := c.gen
		c.rx.blocked = false
		if err := c.center.CreateFileEvent(c.fd, netstack.EventReadable, c.handler); err != nil {
			c.faultLocked(fmt.Errorf("msgr: register socket: %w", err))
		} else {
			c.parseLocked()
			if c.gen == g && c.sock != nil && !c.rx.blocked {
				c.readLocked()
			}
			if c.gen == g && c.state == stReady && len(c.post) == 0 {
				c.writeReadyLocked()
			}
		}
	}
	c.unlockAndDeliver()
}

// takeGrantLocked hands the pending frame's grant to the message built
// from it.
func (c *Connection) takeGrantLocked() rxGrant {
	g := c.rx.grant
	c.rx.grant = rxGrant{}
	return g
}

// releaseRxLocked puts back a grant no message took (a duplicate, a bad
// frame, a dropped socket).
func (c *Connection) releaseRxLocked() { c.rx.grant.put() }
