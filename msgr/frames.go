package msgr

// This file is frame I/O: reading the socket into the read buffer and
// cutting it into frames, and sending the write buffer (wbuf, then a big
// message's data segment by reference, then its epilogue).

import (
	"errors"
	"fmt"
	"io"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// readLocked reads what the socket has and handles every complete frame.
func (c *Connection) readLocked() {
	g := c.gen
	if c.rx.blocked {
		// Held back by a throttle (throttle.go): the bytes wait in the
		// socket, which is what pushes back on the peer. Not idle, though.
		c.readSinceTick = true
		return
	}
	if c.state == stReady && len(c.rbuf) < defaultRBuf && c.rstart == c.rend && !c.ownFrame {
		c.rbuf = make([]byte, defaultRBuf) // the handshake's small buffer is outgrown
	}
	budget := maxReadBytes
	for i := 0; i < maxReadLoops && budget > 0 && !c.rx.blocked; i++ {
		if c.rend == len(c.rbuf) {
			c.makeRoomLocked(0)
		}
		space := len(c.rbuf) - c.rend
		if c.bigFrames && !c.ownFrame && !c.havePre && space > prefetchBig {
			// Big messages are flowing: read little past the next preamble
			// so that the frame's body goes straight into its own buffer.
			space = prefetchBig
		}
		n, err := c.sockRead(c.rbuf[c.rend : c.rend+space])
		if n > 0 {
			budget -= n
			c.rend += n
			c.readSinceTick = true
			c.stats.bytesRecv.Add(uint64(n))
			c.parseLocked()
			if c.gen != g || c.sock == nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, netstack.ErrWouldBlock) {
				return
			}
			if errors.Is(err, io.EOF) {
				err = c.peerClosedErrLocked()
			} else {
				err = fmt.Errorf("msgr: read in state %s: %w", c.state, err)
			}
			c.faultLocked(err)
			return
		}
		if n < space {
			return // drained; readiness will tell us about more
		}
	}
	// Read budget used up with input maybe still pending: come back after
	// the centre's other work rather than rely on the FD staying readable
	// (readiness is only a hint; rdma's FD is an eventfd).
	center := c.center
	_ = center.DispatchExternal(func() {
		c.mu.Lock()
		if c.gen == g && c.sock != nil && c.center == center {
			c.readLocked()
			if c.gen == g && c.state == stReady && len(c.post) == 0 {
				c.writeReadyLocked()
			}
		}
		c.unlockAndDeliver()
	})
}

// peerClosedErrLocked is the error of a socket the peer closed: between
// frames an orderly close (io.EOF); in the middle of one a truncated frame
// (io.ErrUnexpectedEOF), which is a fault.
func (c *Connection) peerClosedErrLocked() error {
	if n := c.rend - c.rstart; n > 0 || c.havePre {
		return fmt.Errorf("msgr: peer closed the connection in state %s in the middle of a frame (truncated; %d bytes of it buffered): %w",
			c.state, n, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("msgr: peer closed the connection in state %s: %w", c.state, io.EOF)
}

// makeRoomLocked ensures the read buffer can hold need more bytes beyond
// rend (0: at least some), compacting or growing it.
func (c *Connection) makeRoomLocked(need int) {
	pending := c.rend - c.rstart
	if need <= 0 {
		need = 1
	}
	if c.rstart > 0 && (c.rend+need > len(c.rbuf) || pending == 0) {
		copy(c.rbuf, c.rbuf[c.rstart:c.rend])
		c.rstart, c.rend = 0, pending
	}
	if c.rend+need > len(c.rbuf) {
		size := len(c.rbuf) * 2
		if c.havePre {
			// no further than the end of the pending frame: doubling is
			// for what has arrived, not for what is only announced
			size = min(size, max(c.frameLenLocked(), defaultRBuf))
		}
		if size < pending+need {
			size = pending + need
		}
		nb := make([]byte, size)
		copy(nb, c.rbuf[c.rstart:c.rend])
		c.rbuf = nb
		c.rstart, c.rend = 0, pending
	}
}

// resetReadLocked forgets buffered input (new or dropped socket).
// Without a socket the buffer goes at once (a closed connection may stay
// reachable for a while, through its timers); a new socket starts with a
// small one, since until the session is ready only small frames are valid.
func (c *Connection) resetReadLocked() {
	if c.ownFrame {
		if c.ownBuf != nil {
			c.ownBuf.put() // a partly read frame: nothing refers to it
		}
		c.rbuf, c.normRBuf, c.ownFrame, c.ownBuf = c.normRBuf, nil, false, nil
	}
	c.rstart, c.rend, c.havePre = 0, 0, false
	c.donateRBuf, c.rbufDonated = false, false
	c.releaseRxLocked()
	c.rx.blocked = false
	switch {
	case c.sock == nil:
		c.rbuf = nil
	case c.rbuf == nil || cap(c.rbuf) > defaultRBuf:
		c.rbuf = make([]byte, handshakeRBuf)
	}
}

// Frame size limits (the memory a peer can make us hold is bounded by who
// it is and by what it has sent):
//   - Until the session is ready the peer has not proven who it is, and
//     every valid frame is a small control frame: banner-sized HELLO,
//     AUTH_REQUEST / AUTH_REPLY_MORE / AUTH_DONE carrying cephx tickets (a
//     monitor's AUTH_DONE with several service tickets is a few KiB),
//     AUTH_SIGNATURE (32 bytes), CLIENT_IDENT / SERVER_IDENT and the
//     reconnect frames (address vectors, tens to hundreds of bytes). So a
//     whole frame, all segments, is at most handshakeFrameMax: 64 KiB,
//     ten times the largest a Ceph cluster sends, and small enough that
//     thousands of unauthenticated peers cannot hold much.
//   - In a ready session, control frames (ACK, KEEPALIVE2) stay under the
//     same bound, and a MESSAGE frame, all segments summed, under
//     ms_max_frame_segment; its body is read only once the throttles
//     (throttle.go) have granted its size.
//   - Either way the read buffer grows with the bytes that arrive (at most
//     about twice them, or ownFrameStep at once for an admitted message),
//     never to what a preamble announces.
const (
	handshakeFrameMax = 64 << 10
	handshakeRBuf     = 4 << 10 // a fresh socket's read buffer
	ownFrameStep      = 1 << 20 // an admitted message's own buffer starts at most this big
)

// segmentLimitLocked is the largest segment a preamble may announce now.
func (c *Connection) segmentLimitLocked() int {
	if c.state != stReady {
		return handshakeFrameMax
	}
	return c.msgr.cfg.MaxFrameSegment
}

// checkFrameSizeLocked bounds a parsed preamble's whole frame (see above).
func (c *Connection) checkFrameSizeLocked(p *msgr2.Preamble) error {
	n := 0
	for i := 0; i < p.NumSegments; i++ {
		n += int(p.Segments[i].Length)
	}
	switch {
	case c.state != stReady && n > handshakeFrameMax:
		return fmt.Errorf("%s frame of %d bytes exceeds the handshake frame limit", p.Tag, n)
	case c.state == stReady && p.Tag != msgr2.TagMessage && n > handshakeFrameMax:
		return fmt.Errorf("%s control frame of %d bytes exceeds the %d-byte limit", p.Tag, n, handshakeFrameMax)
	case n > c.msgr.cfg.MaxFrameSegment:
		return fmt.Errorf("%s frame of %d bytes (all segments) exceeds ms_max_frame_segment %d", p.Tag, n, c.msgr.cfg.MaxFrameSegment)
	}
	return nil
}

// preambleErrLocked is the fault for a preamble refused: it says whether
// the peer had authenticated (and so which limit applied).
func (c *Connection) preambleErrLocked(err error) error {
	if c.state != stReady {
		return fmt.Errorf("msgr: bad frame preamble from a peer not yet authenticated (state %s; handshake frames are at most %d bytes): %w",
			c.state, handshakeFrameMax, err)
	}
	return fmt.Errorf("msgr: bad frame preamble in state %s: %w", c.state, err)
}

// frameLenLocked is the length of the pending frame (havePre) from its
// first byte at rstart: preamble included in crc mode, not in secure mode
// (whose preamble record is consumed when it is opened).
func (c *Connection) frameLenLocked() int {
	if c.auth.sec != nil {
		return c.pre.SecureRestLen()
	}
	return msgr2.PreambleLen + c.pre.RestLen()
}

// frameRoomLocked makes room for more of the pending frame (total bytes,
// avail of them buffered): the buffer grows to about twice what has
// arrived, up to the frame's end, never straight to the announced length.
func (c *Connection) frameRoomLocked(total, avail int) {
	if c.rstart+total <= len(c.rbuf) {
		return
	}
	c.makeRoomLocked(min(total-avail, max(avail, defaultRBuf)))
}

// parseLocked handles every complete banner/frame in the read buffer.
func (c *Connection) parseLocked() {
	g := c.gen
	for c.gen == g && c.sock != nil {
		avail := c.rend - c.rstart
		if c.state == stBanner {
			if avail < msgr2.BannerLen {
				break
			}
			b := c.rbuf[c.rstart : c.rstart+msgr2.BannerLen]
			c.rstart += msgr2.BannerLen
			c.auth.recordRx(b)
			c.handleBannerLocked(b)
			continue
		}
		if c.auth.sec != nil {
			if !c.parseSecureLocked() {
				break
			}
			continue
		}
		if !c.havePre {
			if avail < msgr2.PreambleLen {
				break
			}
			p, err := msgr2.ParsePreamble(c.rbuf[c.rstart:c.rstart+msgr2.PreambleLen], c.segmentLimitLocked())
			if err == nil {
				err = c.checkFrameSizeLocked(&p)
			}
			if err != nil {
				c.faultLocked(c.preambleErrLocked(err))
				return
			}
			c.pre = p
			c.havePre = true
		}
		if !c.admitFrameLocked() {
			break // held back by a throttle; resumed when it has room
		}
		total := msgr2.PreambleLen + c.pre.RestLen()
		avail = c.ownFrameLocked(total, avail)
		if avail < total {
			c.frameRoomLocked(total, avail)
			break
		}
		c.auth.recordRx(c.rbuf[c.rstart : c.rstart+total])
		rest := c.rbuf[c.rstart+msgr2.PreambleLen : c.rstart+total]
		segs, err := msgr2.ParseFrameRest(&c.pre, rest)
		c.havePre = false
		c.rstart += total
		if err != nil {
			c.faultLocked(fmt.Errorf("msgr: bad %s frame in state %s: %w", c.pre.Tag, c.state, err))
			return
		}
		c.frameDoneLocked(segs, total)
	}
	if c.rstart == c.rend && !c.ownFrame {
		c.rstart, c.rend = 0, 0
		if cap(c.rbuf) > maxKeepRBuf && c.sock != nil {
			c.rbuf = make([]byte, defaultRBuf)
		}
	}
}

// ownFrameLocked moves a big message's pending frame (total bytes from
// rstart, avail of them buffered) into a buffer of its own, which it is
// then read straight into and which becomes the message's storage: no
// compaction of the shared buffer, no copy out (crc and secure mode alike;
// secure records are decrypted in place in it). The buffer starts at
// ownFrameStep at most and grows as the bytes arrive. It returns what is
// buffered of the frame.
func (c *Connection) ownFrameLocked(total, avail int) int {
	if c.pre.Tag != msgr2.TagMessage || total < ownFrameMin || avail >= total || c.ownFrame {
		return avail
	}
	var nb []byte
	if total <= ownFrameStep {
		// read whole into a recycled buffer (the Message's storage)
		c.ownBuf = c.msgr.rxBufs.get(total)
		nb = c.ownBuf.b[:total]
	} else {
		nb = make([]byte, min(total, max(ownFrameStep, 2*avail)))
	}
	n := copy(nb, c.rbuf[c.rstart:c.rend])
	c.normRBuf = c.rbuf
	c.rbuf, c.rstart, c.rend = nb, 0, n
	c.ownFrame = true
	return n
}

// frameDoneLocked handles a parsed frame (total bytes of it read, segs
// aliasing the read buffer) and puts reading back in the normal buffer.
func (c *Connection) frameDoneLocked(segs [msgr2.MaxSegments][]byte, total int) {
	// A message whose frame sits in a buffer of its own (ownFrameLocked,
	// or a one-off big buffer) takes that buffer; reading continues in the
	// normal one.
	c.donateRBuf = c.ownFrame || (len(c.rbuf) > maxKeepRBuf && c.pre.Tag == msgr2.TagMessage)
	c.bigFrames = total >= ownFrameMin
	c.handleFrameLocked(c.pre.Tag, segs)
	c.releaseRxLocked() // a grant no message took (a duplicate, a fault)
	switch {
	case c.ownFrame:
		// the own buffer held exactly this frame
		c.rbuf, c.normRBuf, c.rstart, c.rend = c.normRBuf, nil, 0, 0
		c.ownFrame = false
		if c.ownBuf != nil && !c.rbufDonated {
			c.ownBuf.put() // no message took it (a duplicate, a fault)
		}
		c.ownBuf = nil
	case c.donateRBuf && c.rbufDonated:
		rest := c.rbuf[c.rstart:c.rend]
		nb := make([]byte, max(defaultRBuf, len(rest)))
		c.rend = copy(nb, rest)
		c.rbuf, c.rstart = nb, 0
	}
	c.donateRBuf, c.rbufDonated = false, false
}

// appendFrameLocked appends a one-segment control frame to the write buffer.
func (c *Connection) appendFrameLocked(tag msgr2.Tag, payload []byte) {
	if len(c.wext) > 0 || c.wtailN > 0 {
		// A data segment sent by reference is still pending: copy it (and
		// its epilogue) into the buffer so that the frame goes after it.
		c.wbuf = append(c.wbuf, c.wext...)
		c.wbuf = append(c.wbuf, c.wtail[:c.wtailN]...)
		c.wext, c.wtailN = nil, 0
	}
	if c.auth.sec != nil {
		var err error
		if c.wbuf, err = c.auth.sec.AppendSecureFrame(c.wbuf, tag, payload); err != nil {
			c.faultLocked(fmt.Errorf("msgr: secure %s frame: %w", tag, err))
		}
		return
	}
	start := len(c.wbuf)
	c.wbuf = msgr2.AppendFrame(c.wbuf, tag, payload)
	c.auth.recordTx(c.wbuf[start:])
}

// parseSecureLocked handles one secure-mode frame from the read buffer; it
// reports false when the frame is not all there yet (or after a fault).
// Records are decrypted in place in the read buffer (a big message's own
// buffer, as in crc mode).
func (c *Connection) parseSecureLocked() bool {
	avail := c.rend - c.rstart
	if !c.havePre {
		if avail < msgr2.SecurePreambleLen {
			return false
		}
		p, inline, err := c.auth.sec.OpenPreamble(c.rbuf[c.rstart:c.rstart+msgr2.SecurePreambleLen], c.segmentLimitLocked())
		if err == nil {
			err = c.checkFrameSizeLocked(&p)
		}
		if err != nil {
			c.faultLocked(fmt.Errorf("msgr: secure: %w", c.preambleErrLocked(err)))
			return false
		}
		c.pre, c.havePre = p, true
		c.secInlineN = copy(c.secInline[:], inline)
		c.rstart += msgr2.SecurePreambleLen
		avail -= msgr2.SecurePreambleLen
	}
	if !c.admitFrameLocked() {
		return false
	}
	n := c.pre.SecureRestLen()
	avail = c.ownFrameLocked(n, avail)
	if avail < n {
		c.frameRoomLocked(n, avail)
		return false
	}
	segs, err := c.auth.sec.OpenRest(&c.pre, c.secInline[:c.secInlineN:c.secInlineN], c.rbuf[c.rstart:c.rstart+n])
	c.havePre = false
	c.rstart += n
	if err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad secure %s frame in state %s: %w", c.pre.Tag, c.state, err))
		return false
	}
	// Segments 1..3 alias the read buffer, decrypted in place; segment 0
	// (a message's header) is in secInline.
	c.frameDoneLocked(segs, n)
	return true
}

// wlenLocked is the length of the pending output: wbuf, wext, wtail.
func (c *Connection) wlenLocked() int { return len(c.wbuf) + len(c.wext) + c.wtailN }

// resetWriteLocked forgets the pending output (all sent, or socket gone).
func (c *Connection) resetWriteLocked() {
	c.wbuf, c.wpos = c.wbuf[:0], 0
	if cap(c.wbuf) > maxKeepWBuf {
		c.wbuf = nil
	}
	c.wext, c.wtailN = nil, 0
}

// pendingIovLocked returns the unsent part of the output as up to three
// buffers (in c.iov; the caller clears them after the send).
func (c *Connection) pendingIovLocked() [][]byte {
	if cap(c.iov) < 3 {
		c.iov = make([][]byte, 3)
	}
	iov := c.iov[:0]
	p := c.wpos
	for _, b := range [3][]byte{c.wbuf, c.wext, c.wtail[:c.wtailN]} {
		if p >= len(b) {
			p -= len(b)
			continue
		}
		iov = append(iov, b[p:])
		p = 0
	}
	return iov
}

// pendingWriteLocked copies the unsent part of the output.
func (c *Connection) pendingWriteLocked() []byte {
	var out []byte
	for _, b := range c.pendingIovLocked() {
		out = append(out, b...)
	}
	clear(c.iov[:cap(c.iov)])
	return out
}

// flushLocked sends the write buffer; it reports whether everything went out
// (false: blocked, waiting for writability, or faulted).
func (c *Connection) flushLocked(more bool) bool {
	for c.wpos < c.wlenLocked() {
		if c.sock == nil {
			return false
		}
		iov := c.pendingIovLocked()
		n, err := c.sockSend(iov, more)
		clear(iov)
		if n > 0 {
			c.wpos += n
			c.stats.bytesSent.Add(uint64(n))
		}
		if err != nil && !errors.Is(err, netstack.ErrWouldBlock) {
			if c.direct {
				// not the centre's goroutine: it faults the connection
				c.directErr = err
				c.directBlock = true
				return false
			}
			c.faultLocked(fmt.Errorf("msgr: send in state %s: %w", c.state, err))
			return false
		}
		if c.wpos < c.wlenLocked() && (err != nil || n == 0) {
			if c.direct {
				c.directBlock = true // the centre registers writability
				return false
			}
			if !c.wantWrite {
				// Wait for the socket's own send-space signal: an rdma
				// socket's eventfd is always writable and turns readable
				// when TX chunks return (netstack.ReadinessMasks), which
				// the readable registration every socket holds already
				// covers (the handler flushes while wantWrite).
				if _, wm := netstack.ReadinessMasks(c.sock); wm&^netstack.EventReadable != 0 {
					if err := c.center.CreateFileEvent(c.fd, wm&^netstack.EventReadable, c.handler); err != nil {
						c.faultLocked(fmt.Errorf("msgr: register writable: %w", err))
						return false
					}
				}
				c.wantWrite = true
			}
			return false
		}
	}
	c.resetWriteLocked()
	if c.wantWrite {
		_ = c.center.DeleteFileEvent(c.fd, netstack.EventWritable)
		c.wantWrite = false
	}
	return true
}
