package rdmastack

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"

	"github.com/asyncmsgr/asyncmsgr/dispatcher"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// Merge-mode parameters (seed 003): the first target of WRs per post, and
// its ceiling.
const (
	mergeStartTarget = 3
	mergeMaxTarget   = 10
)

// sendCopyHook, set by tests only, runs in Send after each copy into a TX
// chunk of the SEND path, with the socket's lock held: a test holds a
// sender mid-copy with it.
var sendCopyHook atomic.Pointer[func(*conn)]

// pendWR is a filled TX chunk not yet posted: a SEND, or (WRITE mode) an
// RDMA_WRITE into the peer's buffer at raddr, the last one of a buffer
// WRITE_WITH_IMM with imm.
type pendWR struct {
	chunk uint32
	n     int
	kind  uint8
	rkey  uint32
	imm   uint32
	raddr uint64
}

// pendWR kinds.
const (
	pkSend uint8 = iota
	pkWrite
	pkWriteImm
)

// txCompletedLocked posts what merging deferred and wakes a blocked sender
// once send WRs completed.
func (c *conn) txCompletedLocked() {
	if c.state != stConnected {
		return
	}
	if len(c.pend) > 0 || c.finPending || c.wr != nil && len(c.wr.adPend) > 0 {
		c.flushLocked(false)
	}
	if c.txBlocked {
		c.txReady = true
	}
}

// Send copies bufs into TX chunks and posts them (unless more defers the
// flush). With the TX pool empty it accepts what fit and returns
// ErrWouldBlock when nothing did; the FD turns readable when chunks return.
// In WRITE mode a call of more than ms_async_rdma_send_msg_size bytes goes
// by RDMA WRITE into the peer's free advertised buffers (by SEND when none
// is free).
func (c *conn) Send(bufs [][]byte, more bool) (int, error) {
	c.lock()
	defer c.unlock()
	if c.unusable() {
		return 0, c.unusableErr("write")
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.shut {
		return 0, c.opErr("write", syscall.EPIPE)
	}
	c.txBlocked, c.txReady = false, false
	tx := c.d.TX()
	cs := tx.ChunkSize()
	total, want := 0, 0
	for _, b := range bufs {
		want += len(b)
	}
	wr := c.wr
	write := wr != nil && wr.peer != nil && want > wr.threshold
	short := false
outer:
	for _, b := range bufs {
		if idx, off, ok := tx.Contains(b); ok && off == 0 && c.zeroCopy {
			// Zero copy: the buffer is a whole TX chunk the caller took
			// from Stack.TXPool; it is posted as is and returns to the
			// pool at its completion.
			if write {
				c.endWriteLocked()
			}
			c.pend = append(c.pend, pendWR{chunk: idx, n: len(b)})
			c.open = false
			total += len(b)
			continue
		}
		for len(b) > 0 {
			if write && wr.cur < 0 {
				if s, ok := wr.takePeer(); ok {
					wr.cur, wr.curOff, wr.wopen = s, 0, false
				} else {
					write = false // no free peer buffer: the rest by SEND
					c.d.C.WriteFallbacks.Add(1)
				}
			}
			if write {
				// RDMA WRITE into the peer's buffer wr.cur.
				slotLen := int(wr.peer[wr.cur].Len)
				if !wr.wopen || c.pend[len(c.pend)-1].n == cs {
					if !c.getChunkLocked() {
						short = true
						break outer
					}
					ps := &wr.peer[wr.cur]
					c.pend = append(c.pend, pendWR{chunk: c.one[0], kind: pkWrite, raddr: ps.Addr + uint64(wr.curOff), rkey: ps.RKey})
					wr.wopen = true
					c.open = false
				}
				last := &c.pend[len(c.pend)-1]
				k := copy(tx.Bytes(last.chunk)[last.n:min(cs, last.n+slotLen-wr.curOff)], b)
				last.n += k
				wr.curOff += k
				total += k
				b = b[k:]
				if wr.curOff == slotLen {
					c.endWriteLocked()
				}
				continue
			}
			if !c.open || c.pend[len(c.pend)-1].n == cs {
				if !c.getChunkLocked() {
					short = true
					break outer
				}
				c.pend = append(c.pend, pendWR{chunk: c.one[0]})
				c.open = true
			}
			last := &c.pend[len(c.pend)-1]
			k := copy(tx.Bytes(last.chunk)[last.n:cs], b)
			last.n += k
			total += k
			b = b[k:]
			if h := sendCopyHook.Load(); h != nil {
				(*h)(c)
			}
		}
	}
	if wr != nil {
		c.endWriteLocked() // a peer buffer never spans Send calls
	}
	if short {
		if total == 0 {
			c.d.C.TxNoMem.Add(1)
		} else {
			c.d.C.TxPartialMem.Add(1)
		}
		c.txBlocked = true
	}
	if !more || short {
		c.flushLocked(false)
	}
	if short && total == 0 {
		c.syncReadyLocked()
		return 0, netstack.ErrWouldBlock
	}
	c.syncReadyLocked()
	return total, nil
}

// getChunkLocked takes a free TX chunk into c.one[0]. With the pool empty
// it registers for OnTxSpace first and then retries once, so a chunk
// returned in between is not missed; false when none is free.
func (c *conn) getChunkLocked() bool {
	tx := c.d.TX()
	if tx.Get(c.one[:], false) == 1 {
		return true
	}
	c.d.WaitTxSpace(c)
	return tx.Get(c.one[:], false) == 1
}

// endWriteLocked closes the peer buffer being filled: its last WRITE
// carries the immediate data that tells the peer which buffer holds how
// many bytes (or, when nothing was written, the buffer is free again).
func (c *conn) endWriteLocked() {
	wr := c.wr
	if wr.cur < 0 {
		return
	}
	if wr.curOff == 0 {
		wr.peerBusy[wr.cur] = false
		wr.peerFree = append(wr.peerFree, uint8(wr.cur))
	} else {
		last := &c.pend[len(c.pend)-1]
		last.kind = pkWriteImm
		last.imm = immWrite(wr.cur, wr.curOff)
	}
	wr.cur, wr.curOff, wr.wopen = -1, 0, false
}

// postAdsLocked posts the advertisements of buffers the reader emptied, as
// zero-length SEND_WITH_IMMs (they need no stream order), room permitting.
func (c *conn) postAdsLocked() {
	if c.state != stConnected || c.err != nil {
		return
	}
	ads := c.wr.adPend
	k := min(len(ads), c.d.MaxSendWR()-c.h.Inflight())
	if k <= 0 {
		return
	}
	if cap(c.wrs) < k {
		c.wrs = make([]verbs.WorkRequest, k)
		c.sges = make([]verbs.SGE, k)
	}
	wrs := c.wrs[:k]
	for i := range wrs {
		wrs[i] = verbs.WorkRequest{ID: dispatcher.CtlID(), Opcode: verbs.OpSendWithImm, Flags: verbs.SendSignaled, Imm: ads[i]}
	}
	c.h.AddInflight(k)
	posted, err := c.h.QP().PostSend(wrs)
	c.d.C.Posts.Add(1)
	c.d.C.PostedWRs.Add(uint64(posted))
	c.d.C.AdvertsSent.Add(uint64(posted))
	if posted < k {
		c.h.AddInflight(posted - k)
	}
	c.wr.adPend = append(ads[:0], ads[posted:]...)
	if err != nil {
		c.faultLocked(c.opErr("write", fmt.Errorf("rdmastack: post send: %w", errors.Join(err, net.ErrClosed))))
	}
}

// flushLocked posts pending chunks as one chained post, honouring the send
// queue's room and, unless force, adaptive merging.
func (c *conn) flushLocked(force bool) {
	if c.state != stConnected || c.err != nil {
		return
	}
	if c.wr != nil && len(c.wr.adPend) > 0 {
		c.postAdsLocked()
	}
	cfg := &c.st.cfg
	infl := c.h.Inflight()
	merged := false
	if cfg.RDMASubmitTimeTrigger && !force {
		switch {
		case !c.merge && infl > cfg.RDMACountTrigger:
			c.merge, c.target, c.lastInfl = true, mergeStartTarget, infl
			c.d.C.MergeEnter.Add(1)
		case c.merge && infl == 0:
			c.merge = false
			c.d.C.MergeLeave.Add(1)
		}
		if c.merge && len(c.pend) > 0 && len(c.pend) < c.target && infl > 0 {
			if infl > c.lastInfl && c.target < mergeMaxTarget {
				c.target++ // the queue still grows: merge more
			}
			c.lastInfl = infl
			c.d.C.MergeDeferred.Add(1)
			return // a TX completion will come back here
		}
		merged = c.merge
	}
	room := c.d.MaxSendWR() - infl
	k := min(len(c.pend), room)
	if k > 0 {
		tx := c.d.TX()
		if cap(c.wrs) < k {
			c.wrs = make([]verbs.WorkRequest, k)
			c.sges = make([]verbs.SGE, k)
		}
		wrs, sges := c.wrs[:k], c.sges[:k]
		bytes, wbytes, writes := 0, 0, 0
		for i := 0; i < k; i++ {
			p := &c.pend[i]
			sges[i] = tx.SGE(p.chunk, p.n)
			wrs[i] = verbs.WorkRequest{ID: dispatcher.TXID(p.chunk), Opcode: verbs.OpSend, Flags: verbs.SendSignaled, SG: sges[i : i+1]}
			if p.kind != pkSend {
				wrs[i].Opcode, wrs[i].RemoteAddr, wrs[i].RKey = verbs.OpRDMAWrite, p.raddr, p.rkey
				if p.kind == pkWriteImm {
					wrs[i].Opcode, wrs[i].Imm = verbs.OpRDMAWriteWithImm, p.imm
				}
				writes++
				wbytes += p.n
			}
			bytes += p.n
		}
		c.h.AddInflight(k)
		posted, err := c.h.QP().PostSend(wrs)
		c.d.C.Posts.Add(1)
		c.d.C.PostedWRs.Add(uint64(posted))
		if merged {
			c.d.C.MergePosts.Add(1)
			c.d.C.MergePostedWRs.Add(uint64(posted))
		}
		c.d.C.TXBytes.Add(uint64(bytes))
		if writes > 0 {
			c.d.C.WriteWRs.Add(uint64(writes))
			c.d.C.WriteBytes.Add(uint64(wbytes))
		}
		if posted < k {
			c.h.AddInflight(posted - k)
		}
		if posted == len(c.pend) {
			c.open = false
		}
		c.pend = append(c.pend[:0], c.pend[posted:]...)
		if err != nil {
			c.faultLocked(c.opErr("write", fmt.Errorf("rdmastack: post send: %w", errors.Join(err, net.ErrClosed))))
			return
		}
	}
	if len(c.pend) == 0 && c.finPending && !c.finSent && c.h.Inflight() < c.d.MaxSendWR() {
		c.postFinLocked()
	}
}

func (c *conn) postFinLocked() {
	c.finPending = false
	c.finSent = true
	c.h.AddInflight(1)
	wr := [1]verbs.WorkRequest{{ID: dispatcher.CtlID(), Opcode: verbs.OpSend, Flags: verbs.SendSignaled}}
	if n, err := c.h.QP().PostSend(wr[:]); err != nil || n != 1 {
		c.h.AddInflight(-1)
	}
	c.d.C.Posts.Add(1)
	c.d.C.PostedWRs.Add(1)
}
