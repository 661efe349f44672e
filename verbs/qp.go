package verbs

import (
	"syscall"

	"github.com/asyncmsgr/asyncmsgr/verbs/cshim"
)

type qpExtra struct {
	send *cshim.SendBatch
	recv *cshim.RecvBatch
}

func (a *QPInitAttr) shim() (cshim.QPInit, []*node, error) {
	def := func(v, d int) uint32 {
		if v <= 0 {
			return uint32(d)
		}
		return uint32(v)
	}
	in := cshim.QPInit{
		MaxSendWR: def(a.MaxSendWR, 16), MaxRecvWR: def(a.MaxRecvWR, 16),
		MaxSendSGE: def(a.MaxSendSGE, 1), MaxRecvSGE: def(a.MaxRecvSGE, 1),
		MaxInline: uint32(max(a.MaxInlineData, 0)), Type: int(a.Type), SigAll: a.SigAll,
	}
	if a.Type == 0 {
		in.Type = int(QPTypeRC)
	}
	if a.SendCQ == nil || a.RecvCQ == nil {
		return in, nil, kindErr("ibv_create_qp", syscall.EINVAL, nil, "SendCQ and RecvCQ are required")
	}
	in.SendCQ, in.RecvCQ = a.SendCQ.h, a.RecvCQ.h
	nodes := []*node{a.SendCQ.n, a.RecvCQ.n}
	if a.SRQ != nil {
		in.SRQ = a.SRQ.h
		nodes = append(nodes, a.SRQ.n)
	}
	return in, nodes, nil
}

func newQP(ctx *Context, n *node, h uintptr, qpn uint32, in *cshim.QPInit, a *QPInitAttr, destroy func() error) (*QP, error) {
	caps := QPCaps{MaxSendWR: int(in.MaxSendWR), MaxRecvWR: int(in.MaxRecvWR), MaxSendSGE: int(in.MaxSendSGE),
		MaxRecvSGE: int(in.MaxRecvSGE), MaxInlineData: int(in.MaxInline)}
	// The arrays hold at least 64 WRs, so that a chain longer than the queue
	// reaches the device, which reports ENOMEM at the first WR that does not fit.
	sendCap := min(max(caps.MaxSendWR, 64), 4096)
	send, err := cshim.NewSendBatch(sendCap, sendCap*max(caps.MaxSendSGE, 1))
	if err != nil {
		return nil, err
	}
	var recv *cshim.RecvBatch
	if a.SRQ == nil {
		recvCap := min(max(caps.MaxRecvWR, 64), 4096)
		if recv, err = cshim.NewRecvBatch(recvCap, recvCap*max(caps.MaxRecvSGE, 1)); err != nil {
			send.Free()
			return nil, err
		}
	}
	q := &QP{n: n, h: h, qpn: qpn, ctx: ctx, caps: caps, qpType: QPType(in.Type), srq: a.SRQ, x: qpExtra{send: send, recv: recv}}
	register(ctx, ctx.qps, h, q)
	arm(n, q, func() error {
		if err := destroy(); err != nil {
			return err
		}
		unregister(ctx, ctx.qps, h)
		send.Free()
		recv.Free()
		return nil
	})
	return q, nil
}

// CreateQP creates a QP (RC unless attr.Type says otherwise) in RESET state.
func (p *PD) CreateQP(attr QPInitAttr) (*QP, error) {
	const op = "ibv_create_qp"
	if err := p.usable(op); err != nil {
		return nil, err
	}
	return createQP(op, p, []*node{p.nodeOrNil()}, &attr, func(in *cshim.QPInit) (uintptr, uint32, error) {
		return cshim.CreateQP(p.h, in)
	}, cshim.DestroyQP)
}

// createQP is the part PD.CreateQP and CMID.CreateQP share: attr's shim
// form, a node under parents and the objects attr names (a nil or closed pd
// among them fails here), create (the C call) and the QP of pd's context
// over what it made, destroyed with destroy; what fails undoes what came
// before it.
func createQP(op string, pd *PD, parents []*node, attr *QPInitAttr, create func(in *cshim.QPInit) (uintptr, uint32, error), destroy func(h uintptr) error) (*QP, error) {
	in, deps, err := attr.shim()
	if err != nil {
		return nil, err
	}
	n, err := newNode(op, append(parents, deps...)...)
	if err != nil {
		return nil, err
	}
	h, qpn, err := create(&in)
	if err != nil {
		n.detach()
		return nil, opErr(op, err)
	}
	q, err := newQP(pd.ctx, n, h, qpn, &in, attr, func() error { return destroy(h) })
	if err != nil {
		_ = destroy(h)
		n.detach()
		return nil, opErr(op, err)
	}
	return q, nil
}

func (q *QP) params(p *ConnParams) cshim.QPParams {
	c := cshim.QPParams{
		DGID: p.RemoteGID, DestQPNum: p.RemoteQPN, RQPSN: p.RemotePSN, SQPSN: p.LocalPSN,
		Port: p.Port, PathMTU: int(p.PathMTU), HopLimit: p.HopLimit, SGIDIndex: p.SGIDIndex,
		TrafficClass: p.TrafficClass, FlowLabel: p.FlowLabel, SL: p.SL, DLID: int(p.DLID),
		MinRNRTimer: p.MinRNRTimer, Timeout: p.Timeout, RetryCnt: p.RetryCnt, RNRRetry: p.RNRRetry,
		MaxRdAtomic: p.MaxRdAtomic, MaxDestRdAtomic: p.MaxDestRdAtomic, Access: int(p.Access), PKeyIdx: p.PKeyIndex,
	}
	if p.IsGlobal {
		c.IsGlobal = 1
	}
	return c
}

func (q *QP) modify(stage string, f func(uintptr, *cshim.QPParams) error, p *ConnParams) error {
	op := "ibv_modify_qp " + stage
	if q == nil || q.n.isClosed() {
		return goneErr(op)
	}
	if err := p.check(); err != nil {
		return opErr(op, err)
	}
	c := q.params(p)
	return opErr(op, f(q.h, &c))
}

// ToInit moves the QP RESET→INIT (Port, PKeyIndex, Access).
func (q *QP) ToInit(p ConnParams) error { return q.modify("INIT", cshim.QPToInit, &p) }

// ToRTR moves the QP INIT→RTR (path, remote QPN/PSN/GID, MinRNRTimer, MaxDestRdAtomic).
func (q *QP) ToRTR(p ConnParams) error { return q.modify("RTR", cshim.QPToRTR, &p) }

// ToRTS moves the QP RTR→RTS (Timeout, RetryCnt, RNRRetry, LocalPSN, MaxRdAtomic).
func (q *QP) ToRTS(p ConnParams) error { return q.modify("RTS", cshim.QPToRTS, &p) }

// Connect runs ToInit, ToRTR and ToRTS; the error names the failing stage.
func (q *QP) Connect(p ConnParams) error {
	if err := q.ToInit(p); err != nil {
		return err
	}
	if err := q.ToRTR(p); err != nil {
		return err
	}
	return q.ToRTS(p)
}

// ToError moves the QP to ERR: outstanding WRs complete with WCWRFlushErr.
func (q *QP) ToError() error {
	const op = "ibv_modify_qp ERR"
	if q == nil || q.n.isClosed() {
		return goneErr(op)
	}
	return opErr(op, cshim.QPToErr(q.h))
}

// State queries the QP's current state.
func (q *QP) State() (QPState, error) {
	const op = "ibv_query_qp"
	if q == nil || q.n.isClosed() {
		return 0, goneErr(op)
	}
	s, err := cshim.QPState(q.h)
	if err != nil {
		return 0, opErr(op, err)
	}
	return QPState(s), nil
}

// encodeSend writes wrs into the batch's C arrays. Inline is added when the
// payload fits maxInline (and the opcode sends data).
func encodeSend(b *cshim.SendBatch, wrs []WorkRequest, maxInline int) error {
	sge := 0
	for i := range wrs {
		w := &wrs[i]
		if sge+len(w.SG) > len(b.SGE) {
			return syscall.EINVAL
		}
		total := 0
		for j, s := range w.SG {
			b.SGE[sge+j] = cshim.SGE{Addr: s.Addr, Length: s.Length, LKey: s.LKey}
			total += int(s.Length)
		}
		flags := w.Flags
		if maxInline > 0 && total > 0 && total <= maxInline && w.Opcode != OpRDMARead {
			flags |= SendInline
		}
		b.WR[i] = cshim.SendWR{
			WRID: w.ID, RemoteAddr: w.RemoteAddr, RKey: w.RKey, Imm: w.Imm,
			Opcode: int32(w.Opcode), Flags: int32(flags), NumSGE: int32(len(w.SG)), SGEOff: int32(sge),
		}
		sge += len(w.SG)
	}
	return nil
}

func encodeRecv(b *cshim.RecvBatch, wrs []RecvRequest) error {
	sge := 0
	for i := range wrs {
		w := &wrs[i]
		if sge+len(w.SG) > len(b.SGE) {
			return syscall.EINVAL
		}
		for j, s := range w.SG {
			b.SGE[sge+j] = cshim.SGE{Addr: s.Addr, Length: s.Length, LKey: s.LKey}
		}
		b.WR[i] = cshim.RecvWR{WRID: w.ID, NumSGE: int32(len(w.SG)), SGEOff: int32(sge)}
		sge += len(w.SG)
	}
	return nil
}

// PostSend posts wrs as linked chains: one ibv_post_send (one cgo crossing)
// per chain of up to the QP's send-queue size. It returns how many WRs were
// accepted; on error the first one not accepted is wrs[n].
func (q *QP) PostSend(wrs []WorkRequest) (int, error) {
	const op = "ibv_post_send"
	if q == nil {
		return 0, goneErr(op)
	}
	q.sendMu.Lock()
	defer q.sendMu.Unlock()
	if q.x.send == nil || q.n.closed {
		return 0, goneErr(op)
	}
	b := q.x.send
	return postChains(op, wrs, len(b.WR),
		func(chain []WorkRequest) error { return encodeSend(b, chain, q.caps.MaxInlineData) },
		func(n int) (int, error) { return b.Post(q.h, n) })
}

// PostRecv posts receive WRs as linked chains, one ibv_post_recv per chain.
func (q *QP) PostRecv(wrs []RecvRequest) (int, error) {
	const op = "ibv_post_recv"
	if q == nil {
		return 0, goneErr(op)
	}
	q.recvMu.Lock()
	defer q.recvMu.Unlock()
	if q.n.closed {
		return 0, goneErr(op)
	}
	if q.x.recv == nil {
		return 0, kindErr(op, syscall.EINVAL, nil, "the QP uses an SRQ")
	}
	return postRecv(op, q.x.recv, wrs, func(n int) (int, error) { return q.x.recv.Post(q.h, n) })
}

func postRecv(op string, b *cshim.RecvBatch, wrs []RecvRequest, post func(int) (int, error)) (int, error) {
	return postChains(op, wrs, len(b.WR), func(chain []RecvRequest) error { return encodeRecv(b, chain) }, post)
}

// postChains posts wrs as chains of at most size WRs, one crossing each:
// encode writes a chain into the batch, post posts its first n WRs and
// says how many were accepted. It returns how many of wrs were; on error
// the first one not accepted is wrs[n].
func postChains[W any](op string, wrs []W, size int, encode func([]W) error, post func(n int) (int, error)) (int, error) {
	done := 0
	for done < len(wrs) {
		chain := wrs[done:min(len(wrs), done+size)]
		if err := encode(chain); err != nil {
			return done, kindErr(op, syscall.EINVAL, nil, "too many SGEs in one chain")
		}
		n, err := post(len(chain))
		done += n
		if err != nil {
			return done, opErr(op, err)
		}
	}
	return done, nil
}
