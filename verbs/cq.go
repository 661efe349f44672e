package verbs

import (
	"sync/atomic"
	"syscall"

	"github.com/asyncmsgr/asyncmsgr/verbs/cshim"
)

// pollBatch is the size of each CQ's reused work-completion array.
const pollBatch = 64

type cqExtra struct{ wc *cshim.WCArray }

// CreateCompChannel creates a completion channel whose fd is non-blocking.
func (c *Context) CreateCompChannel() (*CompChannel, error) {
	const op = "ibv_create_comp_channel"
	if err := c.usable(op); err != nil {
		return nil, err
	}
	n, err := newNode(op, c.nodeOrNil())
	if err != nil {
		return nil, err
	}
	h, fd, err := cshim.CreateCompChannel(c.h)
	if err != nil {
		n.detach()
		return nil, opErr(op, err)
	}
	ch := &CompChannel{n: n, h: h, fd: fd, ctx: c}
	arm(n, ch, func() error { return cshim.DestroyCompChannel(h) })
	return ch, nil
}

// GetEvent returns the CQ of the next completion event. The event counts
// as unacknowledged on that CQ until CQ.AckEvents (or CQ.Close). When none is
// pending it returns an error with Timeout() true wrapping EAGAIN.
func (ch *CompChannel) GetEvent() (*CQ, error) {
	const op = "ibv_get_cq_event"
	if ch == nil || ch.n.isClosed() {
		return nil, goneErr(op)
	}
	h, err := cshim.GetCQEvent(ch.h)
	if err != nil {
		return nil, opErr(op, err)
	}
	ch.ctx.regMu.Lock()
	cq := ch.ctx.cqs[h].Value()
	ch.ctx.regMu.Unlock()
	if cq == nil {
		// The CQ was leaked and reclaimed; ack so its destruction cannot hang.
		cshim.AckCQEvents(h, 1)
		return nil, kindErr(op, syscall.ENOENT, nil, "event for an unknown CQ")
	}
	cq.unacked.Add(1)
	return cq, nil
}

// CreateCQ creates a CQ of at least cqe entries, optionally attached to a
// completion channel ch (nil for none) on completion vector vector.
func (c *Context) CreateCQ(cqe int, ch *CompChannel, vector int) (*CQ, error) {
	const op = "ibv_create_cq"
	if err := c.usable(op); err != nil {
		return nil, err
	}
	var chn *node
	var chh uintptr
	if ch != nil {
		chn, chh = ch.n, ch.h
	}
	n, err := newNode(op, c.nodeOrNil(), chn)
	if err != nil {
		return nil, err
	}
	wc, err := cshim.NewWCArray(pollBatch)
	if err != nil {
		n.detach()
		return nil, opErr(op, err)
	}
	h, size, err := cshim.CreateCQ(c.h, cqe, chh, vector)
	if err != nil {
		wc.Free()
		n.detach()
		return nil, opErr(op, err)
	}
	unacked := new(atomic.Int64)
	cq := &CQ{n: n, h: h, ctx: c, ch: ch, size: size, unacked: unacked, x: cqExtra{wc: wc}}
	register(c, c.cqs, h, cq)
	arm(n, cq, func() error {
		cshim.AckCQEvents(h, int(unacked.Swap(0)))
		if err := cshim.DestroyCQ(h); err != nil {
			return err
		}
		unregister(c, c.cqs, h)
		wc.Free()
		return nil
	})
	return cq, nil
}

// Poll polls up to len(dst) (at most 64) completions in one shim crossing and
// copies them into dst without allocating. It returns how many it got.
func (cq *CQ) Poll(dst []WorkCompletion) (int, error) {
	const op = "ibv_poll_cq"
	if cq == nil || cq.x.wc == nil || cq.n.closed {
		return 0, goneErr(op)
	}
	n := len(dst)
	if n == 0 {
		return 0, nil
	}
	if n > pollBatch {
		n = pollBatch
	}
	got, err := cq.x.wc.Poll(cq.h, n)
	if err != nil {
		return 0, opErr(op, err)
	}
	copyWCs(dst, cq.x.wc.View()[:got])
	return got, nil
}

// copyWCs copies completions out of a shim array (C memory) into dst.
func copyWCs(dst []WorkCompletion, src []cshim.WC) {
	for i := range src {
		w := &src[i]
		dst[i] = WorkCompletion{
			ID: w.WRID, Status: WCStatus(w.Status), Opcode: WCOpcode(w.Opcode), VendorErr: w.VendorErr,
			ByteLen: w.ByteLen, Imm: w.Imm, HasImm: w.WCFlags&cshim.WCWithImm != 0, QPNum: w.QPNum, SrcQP: w.SrcQP,
		}
	}
}

// Resize grows (or shrinks) the CQ to at least cqe entries, keeping the
// completions it holds (ibv_resize_cq). The provider serialises it with
// polling, so the CQ's poller may keep polling; Size reports the new size
// once it returns. Only one goroutine may resize a CQ at a time.
func (cq *CQ) Resize(cqe int) error {
	const op = "ibv_resize_cq"
	if cq == nil || cq.n.isClosed() {
		return goneErr(op)
	}
	size, err := cshim.ResizeCQ(cq.h, cqe)
	if err != nil {
		return opErr(op, err)
	}
	cq.size = size
	return nil
}

// ReqNotify arms the CQ: the channel becomes readable at the next
// completion (or the next solicited one).
func (cq *CQ) ReqNotify(solicitedOnly bool) error {
	const op = "ibv_req_notify_cq"
	if cq == nil || cq.n.isClosed() {
		return goneErr(op)
	}
	return opErr(op, cshim.ReqNotifyCQ(cq.h, solicitedOnly))
}

// AckEvents acknowledges, in one call, every event GetEvent returned for this CQ.
func (cq *CQ) AckEvents() {
	if cq == nil || cq.n.isClosed() {
		return
	}
	cshim.AckCQEvents(cq.h, int(cq.unacked.Swap(0)))
}
