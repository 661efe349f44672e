package msgr

// This file is what a fault does to a connection: which sessions close and
// which reconnect or wait in standby, to which address, after which
// back-off, and how a session that the peer keeps dropping before it
// acknowledges the same message is told apart (ErrSessionStalled).

import (
	"fmt"
	"time"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

// faultLocked handles a connection error (owner goroutine): lossy sessions
// and half-open accepted ones close and report; lossless ones keep their
// queue and reconnect, or wait in standby (a server policy, or nothing to
// send: redialsLocked, idleLocked), and report the fault (FaultHandler,
// RefusedHandler).
func (c *Connection) faultLocked(err error) {
	if c.state == stClosed {
		return
	}
	c.noteUnsupportedLocked()
	wasConnecting := c.state.handshaking() || c.state == stConnecting
	refused := c.state == stConnecting && isRefused(err)
	retries := c.redialsLocked()
	stalled := retries && !wasConnecting && c.stalledLocked()
	switch {
	case stalled:
		// (a ready session resets c.backoff, so it counts from the stalls)
		c.backoff = c.stallBackoffLocked()
		err = c.stallErrLocked(err)
	case wasConnecting:
		c.backoff = c.nextBackoffLocked()
	}
	c.setErrLocked(err, false)
	c.stats.faults.Add(1)
	c.logFaultLocked(err)
	if refused {
		c.post = append(c.post, dqItem{kind: dqRefused, c: c})
	}
	c.closeSocketLocked()
	if c.policy.Lossy || (!c.outgoing && c.serverCookie == 0) {
		c.closeLocked(err, true)
		return
	}
	if !refused {
		c.post = append(c.post, dqItem{kind: dqFault, c: c, err: err})
	}
	c.requeueSentLocked()
	if !retries || c.idleLocked() {
		// (connect_seq moves when the session next dials: a peer that
		// reconnects meanwhile comes with a higher one and takes it over)
		c.setStateLocked(stStandby)
		return
	}
	switch {
	case !wasConnecting:
		c.connectSeq++
		if !stalled {
			c.backoff = 0 // a session that got somewhere retries at once
		}
	case c.serverCookie != 0:
		c.connectSeq++
	}
	c.scheduleReconnectLocked(c.backoff)
}

// redialsLocked reports whether the session reconnects by itself after a
// fault, as Ceph's lossless sessions do whichever side dialled: not lossy,
// not a server policy (which waits for the peer), and with an address to
// dial (dialAddrLocked).
func (c *Connection) redialsLocked() bool {
	return !c.policy.Lossy && !c.policy.Server && c.dialAddrLocked() != ""
}

// dialAddrLocked is the address a (re)connect of the session dials:
// Connect's target, else, for a session the peer dialled, the address the
// peer is bound to (its CLIENT_IDENT's); "" for an unbound peer.
func (c *Connection) dialAddrLocked() string {
	if c.target != "" {
		return c.target
	}
	if len(c.peerAddrs) == 0 {
		return ""
	}
	a := c.peerAddrs[0]
	if a.Type != msgr2.AddrTypeMsgr2 || !a.Addr.Addr().IsValid() || a.Addr.Port() == 0 {
		return ""
	}
	return a.Addr.String()
}

// idleLocked reports whether a faulted session waits in standby for work
// (or for the peer) instead of reconnecting: it has nothing to send, and
// it is under the Standby policy or the peer initiated it (the peer
// reconnects when it has something to send; Ceph's lossless_peer is
// standby).
func (c *Connection) idleLocked() bool {
	return (c.policy.Standby || !c.initiated.Load()) && len(c.resend) == 0 && !c.workQueuedLocked()
}

// redialFromStandbyLocked reconnects a session in standby that has work
// now: a new attempt of the session (connect_seq), dialled at once.
func (c *Connection) redialFromStandbyLocked() {
	if c.serverCookie != 0 {
		c.connectSeq++
	}
	c.scheduleReconnectLocked(0)
}

// nextBackoffLocked is the delay before the next connect attempt after a
// failed one: ms_initial_backoff, doubling up to ms_max_backoff.
func (c *Connection) nextBackoffLocked() time.Duration {
	b := c.backoff * 2
	if b == 0 {
		b = c.msgr.cfg.InitialBackoff
	}
	if mb := c.msgr.cfg.MaxBackoff; mb > 0 && b > mb {
		b = mb
	}
	return b
}

// stallBackoffLocked is the back-off after the c.stalls-th stall in a row:
// ms_initial_backoff doubled per earlier stall, up to ms_max_backoff.
func (c *Connection) stallBackoffLocked() time.Duration {
	b, mb := c.msgr.cfg.InitialBackoff, c.msgr.cfg.MaxBackoff
	for i := 1; i < c.stalls && (mb <= 0 || b < mb); i++ {
		b *= 2
	}
	if mb > 0 && b > mb {
		b = mb
	}
	return b
}

// unackedLocked is the oldest message sent and not acknowledged, if any.
func (c *Connection) unackedLocked() *Message {
	switch {
	case len(c.sent) > 0:
		return c.sent[0]
	case len(c.resend) > 0 && c.resend[0].Seq != 0:
		return c.resend[0]
	}
	return nil
}

// stalledLocked reports (at a fault of a ready session) whether the peer
// dropped the session again before acknowledging the message it was stuck
// on at the previous fault: reconnecting at once would resend it in a loop
// (a peer refusing a frame over its ms_max_frame_segment did so hundreds
// of times a second).
func (c *Connection) stalledLocked() bool {
	var seq uint64
	if m := c.unackedLocked(); m != nil {
		seq = m.Seq
	}
	if seq != 0 && seq == c.stuckSeq {
		c.stalls++
		return true
	}
	c.stuckSeq, c.stalls = seq, 0
	return false
}

func (c *Connection) stallErrLocked(err error) error {
	m := c.unackedLocked()
	return fmt.Errorf("%w: the peer dropped the session %d times in a row before acknowledging message seq %d (type %d, %d bytes; more than it accepts?), next attempt in %v: %w",
		ErrSessionStalled, c.stalls+1, m.Seq, m.Type, m.payloadLen(), c.backoff, err)
}

func (c *Connection) scheduleReconnectLocked(after time.Duration) {
	c.setStateLocked(stBackoff)
	c.stats.reconnects.Add(1)
	g := c.gen
	if after <= 0 {
		c.startConnectLocked()
		return
	}
	c.armTimerLocked(tmBackoff, after, func() {
		c.mu.Lock()
		if c.gen == g && c.state == stBackoff {
			c.startConnectLocked()
		}
		c.unlockAndDeliver()
	})
}
