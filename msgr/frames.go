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
	budget := maxReadBytes
	for i := 0; i < maxReadLoops && budget > 0; i++ {
		if c.rend == len(c.rbuf) {
			c.makeRoomLocked(0)
		}
		space := len(c.rbuf) - c.rend
		if c.bigFrames && !c.ownFrame && !c.havePre && space > prefetchBig {
			// Big messages are flowing: read little past the next preamble
			// so that the frame's body goes straight into its own buffer.
			space = prefetchBig
		}
		n, err := c.sock.Read(c.rbuf[c.rend : c.rend+space])
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
				err = fmt.Errorf("msgr: peer closed the connection in state %s: %w", c.state, io.EOF)
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
func (c *Connection) resetReadLocked() {
	if c.ownFrame {
		c.rbuf, c.normRBuf, c.ownFrame = c.normRBuf, nil, false
	}
	c.rstart, c.rend, c.havePre = 0, 0, false
	c.donateRBuf, c.rbufDonated = false, false
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
			p, err := msgr2.ParsePreamble(c.rbuf[c.rstart:c.rstart+msgr2.PreambleLen], c.msgr.cfg.MaxFrameSegment)
			if err != nil {
				c.faultLocked(fmt.Errorf("msgr: bad frame preamble in state %s: %w", c.state, err))
				return
			}
			c.pre = p
			c.havePre = true
			if total := msgr2.PreambleLen + p.RestLen(); p.Tag == msgr2.TagMessage &&
				total >= ownFrameMin && avail < total && !c.ownFrame {
				// A big message is read straight into a buffer of its own,
				// which then becomes the message's storage: no compaction
				// of the shared buffer, no copy out.
				nb := make([]byte, total)
				n := copy(nb, c.rbuf[c.rstart:c.rend])
				c.normRBuf = c.rbuf
				c.rbuf, c.rstart, c.rend = nb, 0, n
				c.ownFrame = true
				avail = n
			}
		}
		total := msgr2.PreambleLen + c.pre.RestLen()
		if avail < total {
			if c.rstart+total > len(c.rbuf) {
				c.makeRoomLocked(total - avail)
			}
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
		// A message whose frame sits in a buffer of its own (see above, or
		// a one-off big buffer) takes that buffer; reading continues in the
		// normal one.
		c.donateRBuf = c.ownFrame || (len(c.rbuf) > maxKeepRBuf && c.pre.Tag == msgr2.TagMessage)
		c.bigFrames = total >= ownFrameMin
		c.handleFrameLocked(c.pre.Tag, segs)
		switch {
		case c.ownFrame:
			// the own buffer held exactly this frame
			c.rbuf, c.normRBuf, c.rstart, c.rend = c.normRBuf, nil, 0, 0
			c.ownFrame = false
		case c.donateRBuf && c.rbufDonated:
			rest := c.rbuf[c.rstart:c.rend]
			nb := make([]byte, max(defaultRBuf, len(rest)))
			c.rend = copy(nb, rest)
			c.rbuf, c.rstart = nb, 0
		}
		c.donateRBuf, c.rbufDonated = false, false
	}
	if c.rstart == c.rend && !c.ownFrame {
		c.rstart, c.rend = 0, 0
		if cap(c.rbuf) > maxKeepRBuf && c.sock != nil {
			c.rbuf = make([]byte, defaultRBuf)
		}
	}
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
// Records are decrypted in place in the read buffer.
func (c *Connection) parseSecureLocked() bool {
	avail := c.rend - c.rstart
	if !c.havePre {
		if avail < msgr2.SecurePreambleLen {
			return false
		}
		p, inline, err := c.auth.sec.OpenPreamble(c.rbuf[c.rstart:c.rstart+msgr2.SecurePreambleLen], c.msgr.cfg.MaxFrameSegment)
		if err != nil {
			c.faultLocked(fmt.Errorf("msgr: bad secure preamble in state %s: %w", c.state, err))
			return false
		}
		c.pre, c.havePre = p, true
		c.secInlineN = copy(c.secInline[:], inline)
		c.rstart += msgr2.SecurePreambleLen
		avail -= msgr2.SecurePreambleLen
	}
	n := c.pre.SecureRestLen()
	if avail < n {
		if c.rstart+n > len(c.rbuf) {
			c.makeRoomLocked(n - avail)
		}
		return false
	}
	segs, err := c.auth.sec.OpenRest(&c.pre, c.secInline[:c.secInlineN:c.secInlineN], c.rbuf[c.rstart:c.rstart+n])
	c.havePre = false
	c.rstart += n
	if err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad secure %s frame in state %s: %w", c.pre.Tag, c.state, err))
		return false
	}
	// Segments alias the read buffer (or, for segment 0, secInline): the
	// message takes copies (donateRBuf stays false).
	c.handleFrameLocked(c.pre.Tag, segs)
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
		n, err := c.sock.Send(iov, more)
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
