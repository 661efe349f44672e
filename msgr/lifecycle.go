package msgr

// This file is a connection's life: dialling, attaching a socket, its
// timers, closing, and running the deliveries queued while c.mu was held.
// What a fault does (reconnect, standby, give up) is fault.go.

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// startConnectLocked dials the target on a helper goroutine; the socket is
// handed back to the owner centre.
func (c *Connection) startConnectLocked() {
	c.setStateLocked(stConnecting)
	c.outgoing = true // this side is the client of the socket it dials
	c.gen++
	c.ackArmed = false
	g := c.gen
	w, center, target := c.worker, c.center, c.dialAddrLocked()
	opts := c.msgr.sockOpts()
	m := c.msgr
	if !m.dialing.tryAdd() {
		c.closeLocked(ErrMarkedDown, false)
		return
	}
	if t := m.cfg.ConnectionReadyTimeout; t > 0 {
		c.armTimerLocked(tmReady, t, func() {
			c.mu.Lock()
			if c.gen == g && c.state == stConnecting {
				c.faultLocked(&timeoutError{fmt.Sprintf("msgr: connect %s did not complete within %v", target, t)})
			}
			c.unlockAndDeliver()
		})
	}
	ref := c.newDialRefLocked()
	go func() {
		defer m.dialing.done()
		sock, err := w.Connect(target, opts)
		c := ref.c.Load()
		if c == nil {
			if sock != nil {
				_ = sock.Close()
			}
			return
		}
		if err := center.DispatchExternal(func() { c.onDialed(g, target, sock, err) }); err != nil && sock != nil {
			_ = sock.Close()
		}
	}()
}

// dialRef is all a dial goroutine holds of its connection: closing the
// connection clears it, so that a dial stuck in the kernel (a peer that
// does not answer, until ms_connection_ready_timeout) does not keep a
// closed connection alive.
type dialRef struct{ c atomic.Pointer[Connection] }

// newDialRefLocked gives a new dial its reference, dropping the last one's.
func (c *Connection) newDialRefLocked() *dialRef {
	c.dropDialRefLocked()
	c.dial = &dialRef{}
	c.dial.c.Store(c)
	return c.dial
}

func (c *Connection) dropDialRefLocked() {
	if c.dial != nil {
		c.dial.c.Store(nil)
		c.dial = nil
	}
}

func (c *Connection) onDialed(g uint64, target string, sock netstack.ConnectedSocket, err error) {
	c.mu.Lock()
	if c.gen != g || c.state != stConnecting {
		c.mu.Unlock()
		if sock != nil {
			_ = sock.Close()
		}
		return
	}
	if err != nil {
		c.faultLocked(fmt.Errorf("msgr: connect %s: %w", target, err))
	} else {
		c.attachLocked(sock)
	}
	c.unlockAndDeliver()
}

// installSocketLocked makes sock the connection's socket under a new
// generation, with fresh read and write state (leftover: bytes to write
// first), and watches it for reads (owner goroutine). False if that failed
// and the connection faulted.
func (c *Connection) installSocketLocked(sock netstack.ConnectedSocket, leftover []byte) (g uint64, ok bool) {
	c.gen++
	c.ackArmed = false
	g = c.gen
	c.sock = sock
	c.notePeerAddr(sock)
	c.sockDirect = netstack.SendsFromAnyGoroutine(sock)
	c.directErr = nil
	c.fd = sock.FD()
	c.wantWrite = false
	c.resetReadLocked()
	if c.rbuf == nil {
		c.rbuf = make([]byte, defaultRBuf)
	}
	c.resetWriteLocked()
	c.wbuf = append(c.wbuf, leftover...)
	c.idleFor, c.quietFor = 0, 0
	// The first tick comes at the next point of the tick grid, maybe at
	// once: the new socket counts as incoming bytes for it.
	c.readSinceTick = true
	c.handler = c.handlerFor(g)
	if err := c.center.CreateFileEvent(c.fd, netstack.EventReadable, c.handler); err != nil {
		c.faultLocked(fmt.Errorf("msgr: register socket: %w", err))
		return g, false
	}
	return g, true
}

// attachLocked starts the msgr2 handshake on a fresh socket (owner goroutine).
func (c *Connection) attachLocked(sock netstack.ConnectedSocket) {
	c.readSinceTick, c.wroteSinceTick = false, false
	g, ok := c.installSocketLocked(sock, nil)
	if !ok {
		return
	}
	if t := c.msgr.cfg.ConnectionReadyTimeout; t > 0 {
		c.armTimerLocked(tmReady, t, func() { c.onReadyTimeout(g, t) })
	}
	if c.tick > 0 {
		c.armTickLocked(g)
	}
	c.setStateLocked(stBanner)
	if c.outgoing {
		c.globalSeq = c.msgr.nextGlobalSeq(0)
	}
	c.auth = authState{recording: true}
	start := len(c.wbuf)
	c.wbuf = msgr2.AppendBanner(c.wbuf, msgr2.FeatureRevision1, 0)
	c.auth.recordTx(c.wbuf[start:])
	c.flushLocked(false)
}

func (c *Connection) handlerFor(g uint64) netstack.FileHandler {
	return func(fd int, mask netstack.EventMask) {
		c.mu.Lock()
		if c.gen != g || c.sock == nil || fd != c.fd {
			c.mu.Unlock()
			return
		}
		if mask&netstack.EventWritable != 0 || (mask&netstack.EventReadable != 0 && c.wantWrite) {
			c.flushLocked(c.moreQueuedLocked())
		}
		quiet := -1
		if mask&netstack.EventReadable != 0 && c.gen == g && c.sock != nil {
			msgs, acks, kas := c.stats.msgsRecv.Load(), c.stats.kaAcks.Load(), c.kaRecv
			c.readLocked()
			if c.stats.msgsRecv.Load() == msgs {
				// Keepalive frames only: no busy polling after them, nor
				// after the completion of the KEEPALIVE2_ACK sent back.
				switch {
				case c.kaRecv != kas:
					quiet = 1
				case c.stats.kaAcks.Load() != acks:
					quiet = 0
				}
			}
		}
		if c.gen == g && c.state == stReady && len(c.post) == 0 {
			// (with deliveries pending, the write happens after them so that
			// replies carry the ack instead of a separate ACK frame)
			c.writeReadyLocked()
		}
		if quiet >= 0 && c.gen == g {
			c.center.Quiet(quiet)
		}
		c.unlockAndDeliver()
	}
}

// closeSocketLocked drops the socket (owner goroutine); stale events and
// timers see a new generation and do nothing.
func (c *Connection) closeSocketLocked() {
	c.gen++
	c.ackArmed = false
	c.cancelTimersLocked()
	if c.sock != nil {
		_ = c.center.DeleteFileEvent(c.fd, netstack.EventReadable|netstack.EventWritable)
		_ = c.sock.Close()
		c.sock = nil
	}
	c.fd = -1
	c.wantWrite = false
	c.sockDirect, c.directErr = false, nil
	c.resetReadLocked()
	c.rbuf = nil // a connection between sockets holds no read buffer
	c.resetWriteLocked()
}

func (c *Connection) onReadyTimeout(g uint64, t time.Duration) {
	c.mu.Lock()
	if c.gen == g && c.state.handshaking() {
		c.faultLocked(&timeoutError{fmt.Sprintf("msgr: handshake not finished within %v (stuck in state %s)", t, c.state)})
	}
	c.unlockAndDeliver()
}

func (c *Connection) onTick(g uint64) {
	c.mu.Lock()
	if c.gen != g || c.sock == nil {
		c.mu.Unlock()
		return
	}
	cfg := c.msgr.cfg
	if !c.readSinceTick {
		// readiness is a hint: poll once before calling the link idle
		c.readLocked()
		if c.gen != g || c.sock == nil {
			c.unlockAndDeliver()
			return
		}
	}
	if c.readSinceTick {
		c.idleFor = 0
	} else {
		c.idleFor += c.tick
	}
	c.readSinceTick = false
	if cfg.ConnectionIdleTimeout > 0 && c.idleFor >= cfg.ConnectionIdleTimeout {
		msg := fmt.Sprintf("msgr: no incoming bytes for %v (idle timeout %v) in state %s", c.idleFor, cfg.ConnectionIdleTimeout, c.state)
		if c.havePre {
			msg += fmt.Sprintf(": half a frame pending (%s frame, have %d of %d bytes after its preamble)",
				c.pre.Tag, c.rend-c.rstart-msgr2.PreambleLen, c.pre.RestLen())
		} else if n := c.rend - c.rstart; n > 0 {
			msg += fmt.Sprintf(": incomplete preamble pending (%d of %d bytes)", n, msgr2.PreambleLen)
		}
		c.faultLocked(&timeoutError{msg})
		c.unlockAndDeliver()
		return
	}
	if c.state == stReady && cfg.KeepaliveInterval > 0 {
		c.keepaliveTickLocked(cfg.KeepaliveInterval)
	}
	if c.gen == g {
		c.armTickLocked(g)
	}
	c.unlockAndDeliver()
}

// keepaliveTickLocked sends a KEEPALIVE2 when the session has been quiet
// for the keepalive interval (owner goroutine, at a tick of a ready
// session). Quiet means no message written; the KEEPALIVE2 itself is not
// traffic, so an idle session sends one per interval. One end of a session
// keeping it alive is enough: its peer's KEEPALIVE2_ACK is incoming bytes
// for its idle timeout, and the KEEPALIVE2s are for the peer's (Ceph's
// clients keep their sessions alive, the daemons only answer). So the end
// that did not initiate the session counts a KEEPALIVE2 received as
// traffic, and sends its own only after twice the interval without one (a
// peer with keepalives off): an idle session costs one frame each way per
// interval, not two. The sends ask the centre not to busy-poll for their
// completion (EventCenter.Quiet).
func (c *Connection) keepaliveTickLocked(interval time.Duration) {
	quiet := !c.wroteSinceTick
	if !c.initiated.Load() {
		quiet = quiet && c.kaRecv == c.kaRecvTick
		interval *= 2
	}
	c.wroteSinceTick, c.kaRecvTick = false, c.kaRecv
	if !quiet {
		c.quietFor = 0
		return
	}
	c.quietFor += c.tick
	if c.quietFor < interval {
		return
	}
	c.quietFor = 0
	c.sh.mu.Lock()
	c.sh.keepalive = true
	c.sh.mu.Unlock()
	sent := c.stats.msgsSent.Load()
	c.writeReadyLocked()
	if c.stats.msgsSent.Load() == sent && c.state == stReady {
		c.wroteSinceTick = false
		c.center.Quiet(1)
	}
}

// closeLocked closes the connection for good (owner goroutine or socket
// already gone). report queues MsHandleReset.
func (c *Connection) closeLocked(err error, report bool) {
	if c.state == stClosed {
		return
	}
	if c.sock != nil {
		c.closeSocketLocked()
	}
	c.gen++
	c.ackArmed = false
	c.sh.mu.Lock()
	c.sh.closed = true
	if c.sh.err == nil {
		c.sh.err = err
	}
	c.sh.mu.Unlock()
	c.setStateLocked(stClosed)
	c.discardQueuesLocked()
	// Nothing may keep a closed connection alive: no timer (the dial or
	// back-off one when there was no socket to close), no read buffer for
	// whoever still holds the *Connection.
	c.dropTimersLocked()
	c.dropDialRefLocked()
	c.rbuf, c.normRBuf = nil, nil
	close(c.closedCh)
	c.msgr.unregister(c)
	if report {
		c.post = append(c.post, dqItem{kind: dqReset, c: c, err: err})
	}
}

func (c *Connection) discardQueuesLocked() {
	c.sh.mu.Lock()
	err := c.closedErrShLocked()
	c.sh.outQ.clear(func(m *Message) { c.doneLocked(m, err) })
	c.sh.mu.Unlock()
	for _, m := range c.resend {
		c.doneLocked(m, err)
	}
	for _, m := range c.sent {
		c.doneLocked(m, err)
	}
	clear(c.resend)
	c.resend = c.resend[:0]
	clear(c.sent)
	c.sent = c.sent[:0]
}

// markDown closes the connection from any goroutine.
func (c *Connection) markDown(err error) {
	c.mu.Lock()
	if c.state == stClosed {
		c.mu.Unlock()
		return
	}
	sock, fd, center := c.sock, c.fd, c.center
	c.sock = nil
	c.closeLocked(err, false)
	c.unlockQueueing()
	if sock != nil {
		m := c.msgr
		m.cleanups.Add(1)
		if derr := center.DispatchExternal(func() {
			defer m.cleanups.Done()
			_ = center.DeleteFileEvent(fd, netstack.EventReadable|netstack.EventWritable)
			_ = sock.Close()
		}); derr != nil {
			_ = sock.Close()
			m.cleanups.Done()
		}
	}
}

// requeueSentLocked puts written-but-unacked messages back in front of the
// queue with their sequence numbers (Ceph's requeue_sent).
func (c *Connection) requeueSentLocked() {
	if len(c.sent) == 0 {
		return
	}
	c.outSeq -= uint64(len(c.sent))
	c.resend = append(c.sent, c.resend...)
	c.sent = nil
}

// discardRequeuedUpToLocked drops requeued messages the peer already has.
func (c *Connection) discardRequeuedUpToLocked(seq uint64) {
	i := 0
	for i < len(c.resend) && c.resend[i].Seq != 0 && c.resend[i].Seq <= seq {
		c.doneLocked(c.resend[i], nil)
		c.resend[i] = nil
		i++
		c.outSeq++
	}
	c.resend = c.resend[i:]
	if len(c.resend) == 0 {
		c.resend = nil
	}
}

// unlockAndDeliver releases c.mu and runs the queued deliveries (fast
// dispatch on this goroutine, the rest through the DispatchQueue); messages
// queued by dispatchers meanwhile are written afterwards.
func (c *Connection) unlockAndDeliver() {
	center := c.center // the caller runs on this centre's goroutine
	for len(c.post) > 0 {
		items := c.post
		c.post = c.spare[:0]
		c.dispatching = true
		c.mu.Unlock()
		m := c.msgr
		for i := range items {
			it := &items[i]
			if it.kind == dqMessage && m.fastDispatch(it.m) {
				it.rx.put() // handled on this goroutine
			} else {
				m.dq.enqueue(*it)
			}
			items[i] = dqItem{}
		}
		c.mu.Lock()
		c.spare = items[:0]
		c.dispatching = false
		if c.state == stReady && c.sock != nil && (len(c.resend) > 0 || c.ackLeft > 0 || c.workQueuedLocked()) {
			if c.center == center {
				c.writeReadyLocked()
			} else {
				c.kickLocked() // adopted by another centre meanwhile
			}
		}
	}
	c.mu.Unlock()
}

// addrPortOf is a socket's address as msgr2 carries it (IPv4 unmapped);
// the zero AddrPort when there is none.
func addrPortOf(a net.Addr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ap, err := netstack.AddrPortOf(a)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// workQueuedLocked reports whether the shared part holds work for the
// socket: queued messages or a keepalive request.
func (c *Connection) workQueuedLocked() bool {
	c.sh.mu.Lock()
	defer c.sh.mu.Unlock()
	return c.sh.outQ.len() > 0 || c.sh.keepalive
}
