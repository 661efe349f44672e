package msgr

// This file is the message stream of a ready session: queued messages
// encoded into frames (from the centre or, when idle, from the sending
// goroutine), received messages, acks and the delayed ack.

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/asyncmsgr/asyncmsgr/internal/monoclock"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

func (c *Connection) readyLocked(kind dqKind) {
	c.setStateLocked(stReady)
	c.everReady = true
	c.post = append(c.post, dqItem{kind: kind, c: c})
	c.writeReadyLocked()
}

// canWriteDirectLocked reports whether the calling goroutine may write the
// queue to the socket itself (Ceph lets the sending thread write when the
// connection is idle): the session is ready, its socket allows sends from
// any goroutine, nothing is waiting to be flushed or for writability, and
// the centre is not delivering on this connection (it writes right after,
// batching replies and acks).
func (c *Connection) canWriteDirectLocked() bool {
	return c.state == stReady && c.sockDirect && c.sock != nil && !c.dispatching &&
		!c.wantWrite && c.wpos >= c.wlenLocked() && c.directErr == nil
}

// writeDirectLocked writes queued frames from the calling goroutine (any
// goroutine; c.mu held). It never touches the event centre: when the socket
// would block or fails, the rest is left in the write buffer and the centre
// is kicked to finish (registering writability, or faulting).
func (c *Connection) writeDirectLocked() {
	c.direct = true
	c.writeReadyLocked()
	c.direct = false
	if c.directBlock {
		c.directBlock = false
		c.kickLocked()
	}
}

// kickLocked makes the owner goroutine write if the session can (or, for
// a lossless session idle in standby, reconnect now that there is work).
func (c *Connection) kickLocked() {
	switch c.state {
	case stReady:
		if c.dispatching {
			return // the centre will look at the queue anyway
		}
	case stStandby:
		if !c.redialsLocked() {
			return
		}
	default:
		return // readyLocked writes what is queued
	}
	c.sh.mu.Lock()
	center := c.wakeShLocked()
	c.sh.mu.Unlock()
	c.dispatchKick(center)
}

// wakeShLocked raises the wake flag (c.sh.mu held) and returns the centre
// to queue the kick on, or nil when one is queued already.
func (c *Connection) wakeShLocked() *netstack.EventCenter {
	if c.sh.kicked {
		return nil
	}
	c.sh.kicked = true
	c.sh.kickedOn = c.sh.center
	return c.sh.center
}

// dispatchKick queues writeKick on center (nil: nothing to do); no lock of
// the connection is needed.
func (c *Connection) dispatchKick(center *netstack.EventCenter) {
	if center == nil {
		return
	}
	if err := center.DispatchExternal(c.kickFn); err != nil {
		c.sh.mu.Lock()
		c.sh.kicked = false
		c.sh.mu.Unlock()
	}
}

// writeKick runs on the centre the kick was queued to (kickedOn). The wake
// flag is lowered before the queue is looked at, so a message queued after
// that raises it again and is not left behind.
func (c *Connection) writeKick() {
	c.mu.Lock()
	c.sh.mu.Lock()
	c.sh.kicked = false
	on := c.sh.kickedOn
	c.sh.mu.Unlock()
	if err := c.directErr; err != nil {
		c.directErr = nil
		if c.center == on && c.sock != nil {
			c.faultLocked(fmt.Errorf("msgr: send in state %s: %w", c.state, err))
		}
	}
	switch {
	case c.center != on:
		// The session moved to another socket (maybe another centre) since
		// this kick was queued: kick again where it lives now.
		c.kickLocked()
	case c.state == stReady:
		c.writeReadyLocked()
	case c.state == stStandby && c.redialsLocked():
		c.redialFromStandbyLocked()
	}
	c.unlockAndDeliver()
}

func (c *Connection) handleMessageLocked(segs [4][]byte) {
	var h msgr2.MsgHeader2
	if err := h.Unmarshal(segs[0]); err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad message header: %w", err))
		return
	}
	if !c.policy.Lossy {
		c.handleAckLocked(h.AckSeq)
	}
	if h.Seq <= c.inSeq {
		c.stats.dups.Add(1)
		return
	}
	c.inSeq = h.Seq
	if !c.policy.Lossy {
		c.ackLeft++
	}
	fl, ml, dl := len(segs[1]), len(segs[2]), len(segs[3])
	var m *Message
	var buf []byte
	if n := fl + ml + dl; n > 0 && n <= smallPayload && !c.donateRBuf {
		// A small payload shares the Message's allocation.
		mb := new(messageWithPayload)
		m, buf = &mb.Message, mb.payload[:n:n]
	} else {
		m = new(Message)
	}
	*m = Message{Type: h.Type, Priority: h.Priority, Version: h.Version, Tid: h.Tid, Seq: h.Seq,
		Conn: c, RecvStamp: monoclock.Now(), Peer: c.peerName}
	if c.donateRBuf {
		// the segments live in a read buffer allocated for this frame alone
		c.rbufDonated = true
		m.Front, m.Middle, m.Data = clip(segs[1]), clip(segs[2]), clip(segs[3])
		if c.ownFrame {
			m.rxBuf = c.ownBuf // Release recycles it
		}
	} else {
		if buf == nil && fl+ml+dl > 0 {
			buf = make([]byte, fl+ml+dl) // the message's own storage: one allocation
		}
		copy(buf, segs[1])
		copy(buf[fl:], segs[2])
		copy(buf[fl+ml:], segs[3])
		if fl > 0 {
			m.Front = buf[:fl:fl]
		}
		if ml > 0 {
			m.Middle = buf[fl : fl+ml : fl+ml]
		}
		if dl > 0 {
			m.Data = buf[fl+ml:]
		}
	}
	c.stats.msgsRecv.Add(1)
	c.queueReceivedLocked(dqItem{kind: dqMessage, m: m, c: c, rx: c.takeGrantLocked()})
}

// smallPayload is the largest payload (front+middle+data) received into the
// Message's own allocation (messageWithPayload) instead of a second one.
const smallPayload = 64

// messageWithPayload is a received Message with room for a small payload,
// so that such a message costs one allocation.
type messageWithPayload struct {
	Message
	payload [smallPayload]byte
}

// clip returns b with its capacity cut to its length (nil when empty).
func clip(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[:len(b):len(b)]
}

func (c *Connection) handleAckLocked(seq uint64) {
	if c.policy.Lossy {
		return
	}
	i := 0
	for i < len(c.sent) && c.sent[i].Seq <= seq {
		c.doneLocked(c.sent[i], nil)
		c.sent[i] = nil
		i++
	}
	if i == len(c.sent) {
		c.sent = c.sent[:0]
	} else if i > 0 {
		n := copy(c.sent, c.sent[i:])
		clear(c.sent[n:])
		c.sent = c.sent[:n]
	}
}

func (c *Connection) moreQueuedLocked() bool {
	if c.state != stReady {
		return false
	}
	if len(c.resend) > 0 {
		return true
	}
	c.sh.mu.Lock()
	defer c.sh.mu.Unlock()
	return c.sh.outQ.len() > 0
}

// writeReadyLocked encodes queued frames in batches and sends them until the
// queue is empty or the socket is full.
func (c *Connection) writeReadyLocked() {
	for c.state == stReady && c.sock != nil {
		if c.wpos < c.wlenLocked() {
			if !c.flushLocked(c.moreQueuedLocked()) {
				return
			}
		}
		c.resetWriteLocked()
		// The batch is taken from the shared queue under its lock (Ceph's
		// write_lock); senders queueing meanwhile wait for no longer than
		// the encoding of one batch.
		c.sh.mu.Lock()
		if c.sh.keepalive {
			c.sh.keepalive = false
			k := msgr2.Keepalive2{Timestamp: time.Now()}
			c.appendFrameLocked(msgr2.TagKeepalive2, k.Marshal(c.cbuf[:0]))
			c.stats.kaSent.Add(1)
			c.wroteSinceTick = true
		}
		wrote := false
		for len(c.wbuf) < writeBatchMax {
			var m *Message
			if len(c.resend) > 0 {
				m = c.resend[0]
				c.resend[0] = nil
				c.resend = c.resend[1:]
			} else if m = c.sh.outQ.pop(); m == nil {
				break
			}
			c.outSeq++
			m.Seq = c.outSeq
			h := msgr2.MsgHeader2{Seq: m.Seq, Tid: m.Tid, Type: m.Type, Priority: m.prio(),
				Version: m.Version, AckSeq: c.inSeq, CompatVersion: m.Version}
			big := len(m.Data) >= zeroCopyMin && c.auth.sec == nil && !c.writtenIsDoneLocked(m)
			if c.auth.sec != nil {
				// Secure mode seals the whole frame: no segment goes by
				// reference.
				var err error
				c.wbuf, err = c.auth.sec.AppendSecureMessageFrame(c.wbuf, &h, m.Front, m.Middle, m.Data)
				if err != nil {
					c.faultLocked(fmt.Errorf("msgr: secure message frame: %w", err))
					return
				}
			} else if big {
				// The data segment goes out by reference, after what is
				// batched so far; the batch ends with it.
				var tail []byte
				c.wbuf, tail = msgr2.AppendMessageFrameParts(c.wbuf, c.wtail[:0], &h, m.Front, m.Middle, m.Data)
				c.wext, c.wtailN = m.Data, len(tail)
			} else {
				c.wbuf = msgr2.AppendMessageFrame(c.wbuf, &h, m.Front, m.Middle, m.Data)
			}
			if !c.policy.Lossy {
				c.sent = append(c.sent, m)
			} else {
				c.doneLocked(m, nil) // copied into the frame
			}
			c.stats.msgsSent.Add(1)
			wrote = true
			c.wroteSinceTick = true
			if big {
				break
			}
		}
		more := len(c.resend) > 0 || c.sh.outQ.len() > 0
		c.sh.mu.Unlock()
		if wrote {
			c.ackLeft = 0
		} else if c.ackLeft > 0 {
			if !c.ackDue && !c.direct && c.ackLeft < ackBatch {
				// Delayed ack: a message sent soon carries it (AckSeq);
				// otherwise the ack timer sends a bare ACK.
				c.armAckTimerLocked()
			} else {
				c.ackLeft = 0
				c.cbuf = binary.LittleEndian.AppendUint64(c.cbuf[:0], c.inSeq) // ACK payload: le64 seq
				c.appendFrameLocked(msgr2.TagAck, c.cbuf)
			}
		}
		if c.wlenLocked() == 0 {
			return
		}
		if !c.flushLocked(more) {
			return
		}
	}
}

// armAckTimerLocked makes sure a bare ACK goes out within ackDelay if no
// message carries the acknowledgement first (owner goroutine).
func (c *Connection) armAckTimerLocked() {
	if c.ackArmed {
		return
	}
	c.ackArmed = true
	g := c.gen
	c.center.CreateTimeEvent(ackDelay, func() {
		c.mu.Lock()
		if c.gen == g {
			c.sendDelayedAckLocked()
		}
		c.unlockAndDeliver()
	})
}

// sendDelayedAckLocked is the ack timer's work (owner goroutine): a bare
// ACK for what no message acknowledged meanwhile.
func (c *Connection) sendDelayedAckLocked() {
	c.ackArmed = false
	if c.state == stReady && c.ackLeft > 0 && c.sock != nil {
		c.ackDue = true
		c.writeReadyLocked()
		c.ackDue = false
	}
}
