package verbs

import (
	"fmt"
	"net"
	"syscall"
)

// Name is the device name.
func (c *Context) Name() string {
	if c == nil {
		return ""
	}
	return c.name
}

// Close closes the device. It is idempotent and nil-safe, and fails with
// ErrBusy while objects made from the context are open.
func (c *Context) Close() error {
	if c == nil || !c.owned {
		return nil
	}
	return c.n.close("ibv_close_device")
}

// AsyncFD is the device's non-blocking async-event fd; wait on it (e.g. with
// WaitReadable or epoll), then call GetAsyncEvent.
func (c *Context) AsyncFD() int {
	if c == nil {
		return -1
	}
	return c.asyncFD
}

// Context is the PD's device context.
func (p *PD) Context() *Context {
	if p == nil {
		return nil
	}
	return p.ctx
}

// Close deallocates the PD; idempotent, nil-safe, ErrBusy while MRs/QPs/SRQs are open.
func (p *PD) Close() error {
	if p == nil {
		return nil
	}
	return p.n.close("ibv_dealloc_pd")
}

// Addr is the buffer's address.
func (b *Buffer) Addr() uint64 {
	if b == nil {
		return 0
	}
	return uint64(b.p)
}

// Len is the buffer's size in bytes.
func (b *Buffer) Len() int {
	if b == nil {
		return 0
	}
	return b.size
}

// Free releases the memory; idempotent, nil-safe, ErrBusy while an MR covers it.
func (b *Buffer) Free() error {
	if b == nil {
		return nil
	}
	return b.n.close("free buffer")
}

// LKey is the local key.
func (m *MR) LKey() uint32 { return m.lkey }

// RKey is the remote key.
func (m *MR) RKey() uint32 { return m.rkey }

// Addr is the registered range's start address.
func (m *MR) Addr() uint64 { return uint64(m.addr) }

// Len is the registered range's length.
func (m *MR) Len() int { return m.length }

// SGE describes m[off:off+length] for a work request.
func (m *MR) SGE(off, length int) SGE {
	return SGE{Addr: uint64(m.addr) + uint64(off), Length: uint32(length), LKey: m.lkey}
}

// Close deregisters the MR; idempotent and nil-safe.
func (m *MR) Close() error {
	if m == nil {
		return nil
	}
	return m.n.close("ibv_dereg_mr")
}

// FD is the channel's non-blocking fd.
func (ch *CompChannel) FD() int {
	if ch == nil {
		return -1
	}
	return ch.fd
}

// Close destroys the channel; idempotent, nil-safe, ErrBusy while CQs use it.
func (ch *CompChannel) Close() error {
	if ch == nil {
		return nil
	}
	return ch.n.close("ibv_destroy_comp_channel")
}

// Size is the CQ's actual number of entries.
func (cq *CQ) Size() int { return cq.size }

// Close acknowledges pending events and destroys the CQ; idempotent,
// nil-safe, ErrBusy while QPs use it.
func (cq *CQ) Close() error {
	if cq == nil {
		return nil
	}
	return cq.n.close("ibv_destroy_cq")
}

// Num is the QP number.
func (q *QP) Num() uint32 { return q.qpn }

// Caps are the capacities granted at creation.
func (q *QP) Caps() QPCaps { return q.caps }

// Close destroys the QP; idempotent and nil-safe. It waits for a post in
// flight on another goroutine: destroying the QP under it would have the
// kernel refuse (EBUSY: rxe's doorbell is a uverbs command on the QP) or,
// a moment later, the post use a freed QP.
func (q *QP) Close() error {
	if q == nil {
		return nil
	}
	q.sendMu.Lock()
	defer q.sendMu.Unlock()
	q.recvMu.Lock()
	defer q.recvMu.Unlock()
	if q.cmid != nil {
		return q.n.close("rdma_destroy_qp")
	}
	return q.n.close("ibv_destroy_qp")
}

// MaxWR is the SRQ's actual size.
func (s *SRQ) MaxWR() int { return s.maxWR }

// Close destroys the SRQ; idempotent, nil-safe, ErrBusy while QPs use it.
func (s *SRQ) Close() error {
	if s == nil {
		return nil
	}
	return s.n.close("ibv_destroy_srq")
}

// FD is the channel's non-blocking fd.
func (ch *CMEventChannel) FD() int {
	if ch == nil {
		return -1
	}
	return ch.fd
}

// Close destroys the channel; idempotent, nil-safe, ErrBusy while ids use it.
func (ch *CMEventChannel) Close() error {
	if ch == nil {
		return nil
	}
	return ch.n.close("rdma_destroy_event_channel")
}

// Err maps a failure event to an error (nil for the others):
// ADDR_ERROR/ROUTE_ERROR/CONNECT_ERROR/UNREACHABLE carry the status errno
// (EHOSTUNREACH if none), REJECTED is ECONNREFUSED, DISCONNECTED ECONNRESET.
func (e *CMEvent) Err() error {
	op := "rdma_cm " + e.Type.String()
	switch e.Type {
	case CMAddrError, CMRouteError, CMConnectError, CMUnreachable:
		if e.Status < 0 {
			return opErr(op, syscall.Errno(-e.Status))
		}
		return opErr(op, syscall.EHOSTUNREACH)
	case CMRejected:
		return kindErr(op, syscall.ECONNREFUSED, nil, fmt.Sprintf("reject reason %d", e.Status))
	case CMDisconnected:
		return kindErr(op, syscall.ECONNRESET, net.ErrClosed, "")
	case CMDeviceRemoval:
		return kindErr(op, syscall.ENODEV, ErrNoDevice, "")
	}
	return nil
}

func (c *Context) nodeOrNil() *node {
	if c == nil {
		return closedNode
	}
	return c.n
}

func (p *PD) nodeOrNil() *node {
	if p == nil {
		return closedNode
	}
	return p.n
}

func (ch *CMEventChannel) nodeOrNil() *node {
	if ch == nil {
		return closedNode
	}
	return ch.n
}

// closedNode stands in for a nil parent so that creation fails with net.ErrClosed.
var closedNode = &node{closed: true}

func (c *Context) usable(op string) error {
	if c == nil || c.n.isClosed() {
		return goneErr(op)
	}
	return nil
}

func (p *PD) usable(op string) error {
	if p == nil || p.n.isClosed() {
		return goneErr(op)
	}
	return nil
}

func (id *CMID) usable(op string) error {
	if id == nil || id.n.isClosed() {
		return goneErr(op)
	}
	return nil
}
