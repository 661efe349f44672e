package verbs

import "github.com/asyncmsgr/asyncmsgr/verbs/cshim"

type srqExtra struct{ recv *cshim.RecvBatch }

// CreateSRQ creates a shared receive queue.
func (p *PD) CreateSRQ(attr SRQInitAttr) (*SRQ, error) {
	const op = "ibv_create_srq"
	if err := p.usable(op); err != nil {
		return nil, err
	}
	maxWR, maxSGE := max(attr.MaxWR, 1), max(attr.MaxSGE, 1)
	var h uintptr
	var got int
	n, err := newNodeFor(op, func() (err error) {
		h, got, err = cshim.CreateSRQ(p.h, maxWR, maxSGE, attr.Limit)
		return err
	}, p.nodeOrNil())
	if err != nil {
		return nil, err
	}
	bcap := min(max(got, 64), 4096)
	b, err := cshim.NewRecvBatch(bcap, bcap*maxSGE)
	if err != nil {
		_ = cshim.DestroySRQ(h)
		n.detach()
		return nil, opErr(op, err)
	}
	s := &SRQ{n: n, h: h, ctx: p.ctx, maxWR: got, x: srqExtra{recv: b}}
	ctx := p.ctx
	register(ctx, ctx.srqs, h, s)
	arm(n, s, func() error {
		if err := cshim.DestroySRQ(h); err != nil {
			return err
		}
		unregister(ctx, ctx.srqs, h)
		b.Free()
		return nil
	})
	return s, nil
}

// PostRecv posts receive WRs to the SRQ, one ibv_post_srq_recv per chain.
func (s *SRQ) PostRecv(wrs []RecvRequest) (int, error) {
	const op = "ibv_post_srq_recv"
	if s == nil {
		return 0, goneErr(op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.x.recv == nil || s.n.closed {
		return 0, goneErr(op)
	}
	return postRecv(op, s.x.recv, wrs, func(n int) (int, error) { return s.x.recv.PostSRQ(s.h, n) })
}

// ArmLimit arms the SRQ limit: when fewer than limit receive WRs remain, the
// device raises one EventSRQLimit async event (then the limit is disarmed).
func (s *SRQ) ArmLimit(limit int) error {
	const op = "ibv_modify_srq LIMIT"
	if s == nil || s.n.isClosed() {
		return goneErr(op)
	}
	return opErr(op, cshim.ArmSRQ(s.h, limit))
}
