package rdmastack

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/asyncmsgr/asyncmsgr/dispatcher"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// receivedLocked handles the receive completions taken over into rxq[k:]:
// immediate data at once, the rest stays queued for Read (readiness is
// synced by unlock).
func (c *conn) receivedLocked(k int) {
	for i := range c.rxq[k:] {
		if it := &c.rxq[k+i]; it.HasImm {
			c.onImmLocked(it)
		}
	}
	if len(c.rets) > 0 {
		c.h.ReturnRX(c.rets...)
		c.rets = c.rets[:0]
	}
	if c.state == stHandshake && c.qpOK {
		// The server is connected on the first data received.
		c.setConnectedLocked()
	}
}

// onImmLocked handles a received item with immediate data (WRITE mode).
// Its RX chunk carries no data and goes back at once. An advertisement frees
// a peer buffer now (the reader skips it); a WRITE stays queued for the
// reader, in sequence. Anything else faults the connection (and is skipped).
func (c *conn) onImmLocked(it *dispatcher.RxItem) {
	c.rets = append(c.rets, it.Chunk)
	it.Chunk = noChunk
	bad := func(err error) {
		it.Imm = 0 // the reader skips it
		c.faultLocked(c.opErr("read", errors.Join(err, net.ErrClosed)))
	}
	if c.wr == nil {
		bad(errWriteMismatch(0, "the peer sends RDMA WRITE / immediate data"))
		return
	}
	switch immKind(it.Imm) {
	case immKindAdv:
		if !c.wr.putPeer(immSlot(it.Imm)) {
			bad(fmt.Errorf("rdmastack: peer advertised buffer %d, which is not ours to use", immSlot(it.Imm)))
			return
		}
		c.d.C.AdvertsRecv.Add(1)
	case immKindWrite:
		if s, n := immSlot(it.Imm), immLen(it.Imm); s >= writeSlots || n == 0 || n > c.wr.slotSize {
			bad(fmt.Errorf("rdmastack: peer wrote %d bytes into buffer %d (we have %d of %d bytes)", n, s, writeSlots, c.wr.slotSize))
		}
	default:
		bad(fmt.Errorf("rdmastack: unknown immediate data %#x", it.Imm))
	}
}

// Read copies received bytes, strictly in receive-sequence order.
func (c *conn) Read(p []byte) (int, error) {
	c.lock()
	defer c.unlock()
	if c.unusable() {
		return 0, c.unusableErr("read")
	}
	n := 0
read:
	for n < len(p) && len(c.rxq) > c.rxHead && !c.finRecv {
		h := c.rxHead
		if c.rxq[h].Seq != c.rxNext {
			// Out of order: find the next in sequence (never expected
			// with one poller, kept as the contract's guard).
			i := h + 1
			for ; i < len(c.rxq) && c.rxq[i].Seq != c.rxNext; i++ {
			}
			if i == len(c.rxq) {
				break
			}
			c.rxq[h], c.rxq[i] = c.rxq[i], c.rxq[h]
		}
		it := &c.rxq[h]
		switch {
		case it.HasImm && immKind(it.Imm) != immKindWrite:
			// an advertisement, handled at completion: skip it
		case it.HasImm:
			// WRITE mode: the bytes are in our receive buffer; once read
			// it is advertised to the peer again.
			s, ln := immSlot(it.Imm), immLen(it.Imm)
			k := copy(p[n:], c.wr.slot(s)[c.rxOff:ln])
			n += k
			c.rxOff += k
			if c.rxOff < ln {
				break read // the caller's buffer is full
			}
			c.wr.adPend = append(c.wr.adPend, immAdv(s))
		case it.Len == 0:
			c.finRecv = true
		default:
			buf := c.d.RX().Bytes(it.Chunk)
			k := copy(p[n:], buf[c.rxOff:it.Len])
			n += k
			c.rxOff += k
			if c.rxOff < int(it.Len) {
				break read // the caller's buffer is full
			}
		}
		if it.Chunk != noChunk {
			c.rets = append(c.rets, it.Chunk)
		}
		c.rxOff = 0
		c.rxNext++
		c.rxHead++
		if c.rxHead == len(c.rxq) {
			c.rxq, c.rxHead = c.rxq[:0], 0 // reuse the array: no allocation
		}
	}
	if c.rxHead >= 64 && c.rxHead*2 >= len(c.rxq) {
		// a reader that never drains everything: reclaim the read prefix
		k := copy(c.rxq, c.rxq[c.rxHead:])
		c.rxq, c.rxHead = c.rxq[:k], 0
	}
	if len(c.rets) > 0 {
		c.h.ReturnRX(c.rets...)
		c.rets = c.rets[:0]
	}
	if c.finRecv && len(c.rxq) > c.rxHead {
		// bytes after a FIN are not data; give the chunks back
		for _, it := range c.rxq[c.rxHead:] {
			if it.Chunk != noChunk {
				c.rets = append(c.rets, it.Chunk)
			}
		}
		c.rxq, c.rxHead = c.rxq[:0], 0
		c.h.ReturnRX(c.rets...)
		c.rets = c.rets[:0]
	}
	if c.wr != nil && len(c.wr.adPend) > 0 {
		c.postAdsLocked()
	}
	c.syncReadyLocked()
	if n > 0 || len(p) == 0 {
		return n, nil
	}
	if c.finRecv {
		return 0, io.EOF
	}
	if c.err != nil {
		return 0, c.err
	}
	return 0, netstack.ErrWouldBlock
}
