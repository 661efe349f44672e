package verbs

import (
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/asyncmsgr/asyncmsgr/verbs/cshim"
)

// NewCMEventChannel creates an rdma_cm event channel with a non-blocking fd.
func NewCMEventChannel() (*CMEventChannel, error) {
	const op = "rdma_create_event_channel"
	h, fd, err := cshim.CreateEventChannel()
	if err != nil {
		return nil, opErr(op, err)
	}
	n, _ := newNode(op)
	ch := &CMEventChannel{n: n, h: h, fd: fd, ids: map[uintptr]*CMID{}}
	arm(n, ch, func() error { cshim.DestroyEventChannel(h); return nil })
	return ch, nil
}

func (ch *CMEventChannel) adopt(h uintptr, op string) (*CMID, error) {
	n, err := newNode(op, ch.nodeOrNil())
	if err != nil {
		return nil, err
	}
	id := &CMID{n: n, h: h, ch: ch}
	ch.mu.Lock()
	ch.ids[h] = id
	ch.mu.Unlock()
	arm(n, id, func() error { return cshim.DestroyID(h) })
	return id, nil
}

// CreateID creates an rdma_cm id in port space ps on this channel.
func (ch *CMEventChannel) CreateID(ps PortSpace) (*CMID, error) {
	const op = "rdma_create_id"
	if ch == nil || ch.n.isClosed() {
		return nil, goneErr(op)
	}
	h, err := cshim.CreateID(ch.h, int(ps))
	if err != nil {
		return nil, opErr(op, err)
	}
	id, err := ch.adopt(h, op)
	if err != nil {
		_ = cshim.DestroyID(h)
		return nil, err
	}
	return id, nil
}

// GetEvent returns the next rdma_cm event; when none is pending it returns an
// error with Timeout() true wrapping EAGAIN. The event must be acknowledged.
func (ch *CMEventChannel) GetEvent() (*CMEvent, error) {
	const op = "rdma_get_cm_event"
	if ch == nil || ch.n.isClosed() {
		return nil, goneErr(op)
	}
	e, err := cshim.GetCMEvent(ch.h)
	if err != nil {
		return nil, opErr(op, err)
	}
	ev := &CMEvent{Type: CMEventType(e.Type), Status: e.Status, ev: e.Event}
	if e.PrivateDataLen > 0 {
		ev.PrivateData = append([]byte(nil), e.PrivateData[:e.PrivateDataLen]...)
	}
	ch.mu.Lock()
	ev.ID = ch.ids[e.ID]
	if e.ListenID != 0 {
		ev.ListenID = ch.ids[e.ListenID]
	}
	ch.mu.Unlock()
	if ev.ID == nil && ev.Type == CMConnectRequest {
		if ev.ID, err = ch.adopt(e.ID, "rdma_cm connect request"); err != nil {
			_ = cshim.AckCMEvent(e.Event)
			return nil, err
		}
	}
	if ev.ID != nil {
		ev.ID.unacked.Add(1)
	}
	return ev, nil
}

// Ack acknowledges the event (rdma_ack_cm_event); idempotent.
func (e *CMEvent) Ack() error {
	if e == nil || !e.acked.CompareAndSwap(false, true) {
		return nil
	}
	if e.ID != nil {
		e.ID.unacked.Add(-1)
	}
	return opErr("rdma_ack_cm_event", cshim.AckCMEvent(e.ev))
}

func addrBytes(ap netip.AddrPort) (int, [16]byte, int, error) {
	a := ap.Addr().Unmap()
	var b [16]byte
	switch {
	case a.Is4():
		v := a.As4()
		copy(b[:], v[:])
		return cshim.AFInet, b, int(ap.Port()), nil
	case a.Is6():
		return cshim.AFInet6, a.As16(), int(ap.Port()), nil
	}
	return 0, b, 0, syscall.EAFNOSUPPORT
}

// BindAddr binds the id to a local address (port 0 picks one).
func (id *CMID) BindAddr(ap netip.AddrPort) error {
	const op = "rdma_bind_addr"
	if err := id.usable(op); err != nil {
		return err
	}
	f, ip, port, err := addrBytes(ap)
	if err != nil {
		return opErr(op, err)
	}
	return opErr(op, cshim.BindAddr(id.h, f, ip, port))
}

// LocalAddr is the id's bound local address.
func (id *CMID) LocalAddr() (netip.AddrPort, error) {
	const op = "rdma_get_local_addr"
	if err := id.usable(op); err != nil {
		return netip.AddrPort{}, err
	}
	f, ip, port, err := cshim.LocalAddr(id.h)
	if err != nil {
		return netip.AddrPort{}, opErr(op, err)
	}
	if f == cshim.AFInet {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[:4])), uint16(port)), nil
	}
	return netip.AddrPortFrom(netip.AddrFrom16(ip), uint16(port)), nil
}

// ResolveAddr starts resolving dst (and binds to src when valid); the result
// arrives as CMAddrResolved or CMAddrError.
func (id *CMID) ResolveAddr(src, dst netip.AddrPort, timeout time.Duration) error {
	const op = "rdma_resolve_addr"
	if err := id.usable(op); err != nil {
		return err
	}
	df, dip, dport, err := addrBytes(dst)
	if err != nil {
		return opErr(op, err)
	}
	var sf, sport int
	var sip [16]byte
	if src.Addr().IsValid() {
		if sf, sip, sport, err = addrBytes(src); err != nil {
			return opErr(op, err)
		}
	}
	return opErr(op, cshim.ResolveAddr(id.h, sf, sip, sport, df, dip, dport, int(timeout/time.Millisecond)))
}

// ResolveRoute starts resolving the route; the result arrives as
// CMRouteResolved or CMRouteError.
func (id *CMID) ResolveRoute(timeout time.Duration) error {
	const op = "rdma_resolve_route"
	if err := id.usable(op); err != nil {
		return err
	}
	return opErr(op, cshim.ResolveRoute(id.h, int(timeout/time.Millisecond)))
}

// Listen starts listening; connection requests arrive as CMConnectRequest.
func (id *CMID) Listen(backlog int) error {
	const op = "rdma_listen"
	if err := id.usable(op); err != nil {
		return err
	}
	return opErr(op, cshim.Listen(id.h, backlog))
}

func connParam(p CMConnParam) *cshim.ConnParam {
	return &cshim.ConnParam{ResponderResources: p.ResponderResources, InitiatorDepth: p.InitiatorDepth,
		FlowControl: p.FlowControl, RetryCount: p.RetryCount, RNRRetry: p.RNRRetryCount, PrivateData: p.PrivateData}
}

// Connect starts connecting (after CMRouteResolved and CreateQP).
func (id *CMID) Connect(p CMConnParam) error {
	const op = "rdma_connect"
	if err := id.usable(op); err != nil {
		return err
	}
	return opErr(op, cshim.Connect(id.h, connParam(p)))
}

// Accept accepts a connection request (after CreateQP on the request's id).
func (id *CMID) Accept(p CMConnParam) error {
	const op = "rdma_accept"
	if err := id.usable(op); err != nil {
		return err
	}
	return opErr(op, cshim.Accept(id.h, connParam(p)))
}

// Reject rejects a connection request.
func (id *CMID) Reject(privateData []byte) error {
	const op = "rdma_reject"
	if err := id.usable(op); err != nil {
		return err
	}
	return opErr(op, cshim.Reject(id.h, privateData))
}

// Disconnect disconnects; both sides then get CMDisconnected.
func (id *CMID) Disconnect() error {
	const op = "rdma_disconnect"
	if err := id.usable(op); err != nil {
		return err
	}
	return opErr(op, cshim.Disconnect(id.h))
}

// Migrate moves the id (and its future events) to channel ch.
func (id *CMID) Migrate(ch *CMEventChannel) error {
	const op = "rdma_migrate_id"
	if err := id.usable(op); err != nil {
		return err
	}
	if ch == nil || ch.n.isClosed() {
		return goneErr(op)
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	if err := cshim.MigrateID(id.h, ch.h); err != nil {
		return opErr(op, err)
	}
	old := id.ch
	old.mu.Lock()
	delete(old.ids, id.h)
	old.mu.Unlock()
	ch.mu.Lock()
	ch.ids[id.h] = id
	ch.mu.Unlock()
	id.n.reparent(old.n, ch.n)
	id.ch = ch
	return nil
}

// Context is the device context librdmacm bound the id to (after address
// resolution, or on a connection request's id); nil before. Its PDs and CQs
// are the ones to use for this id's QP. Closing it does nothing.
func (id *CMID) Context() *Context {
	if id == nil || id.n.isClosed() {
		return nil
	}
	h := cshim.IDVerbs(id.h)
	if h == 0 {
		return nil
	}
	return cmContext(h)
}

// Port is the device port the id is bound to.
func (id *CMID) Port() int {
	if id == nil || id.n.isClosed() {
		return 0
	}
	return cshim.IDPort(id.h)
}

// CreateQP creates the id's QP with rdma_create_qp on pd (which must belong to
// id.Context()). librdmacm then moves it through INIT/RTR/RTS during
// Connect/Accept, and to ERR on Disconnect. Close the QP before the id.
func (id *CMID) CreateQP(pd *PD, attr QPInitAttr) (*QP, error) {
	const op = "rdma_create_qp"
	if err := id.usable(op); err != nil {
		return nil, err
	}
	idh := id.h
	q, err := createQP(op, pd, []*node{pd.nodeOrNil(), id.n}, &attr, func(in *cshim.QPInit) (uintptr, uint32, error) {
		return cshim.RDMACreateQP(idh, pd.h, in)
	}, func(uintptr) error { cshim.RDMADestroyQP(idh); return nil })
	if err != nil {
		return nil, err
	}
	q.cmid = id
	id.mu.Lock()
	id.qp = q
	id.mu.Unlock()
	return q, nil
}

// QP is the QP created by CreateQP (nil if none or closed).
func (id *CMID) QP() *QP {
	if id == nil {
		return nil
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.qp != nil && id.qp.n.isClosed() {
		id.qp = nil
	}
	return id.qp
}

// Close destroys the id; idempotent and nil-safe. It fails with ErrBusy while
// its QP is open or events for it are unacknowledged (rdma_destroy_id would
// block until they are).
func (id *CMID) Close() error {
	const op = "rdma_destroy_id"
	if id == nil {
		return nil
	}
	if id.n.isClosed() {
		return nil
	}
	if n := id.unacked.Load(); n > 0 {
		return kindErr(op, syscall.EBUSY, ErrBusy, fmt.Sprintf("%d unacknowledged events", n))
	}
	if err := id.n.close(op); err != nil {
		return err
	}
	id.mu.Lock()
	ch := id.ch
	id.mu.Unlock()
	ch.mu.Lock()
	delete(ch.ids, id.h)
	ch.mu.Unlock()
	return nil
}
