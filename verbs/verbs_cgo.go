//go:build linux && cgo

package verbs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
	"weak"

	"github.com/asyncmsgr/asyncmsgr/verbs/cshim"
	"golang.org/x/sys/unix"
)

// Supported reports whether this build can use RDMA devices (cgo on Linux).
const Supported = true

// pollBatch is the size of each CQ's reused work-completion array.
const pollBatch = 64

type cqExtra struct{ wc *cshim.WCArray }

type qpExtra struct {
	send *cshim.SendBatch
	recv *cshim.RecvBatch
}

type srqExtra struct{ recv *cshim.RecvBatch }

var wcStatusNames, eventNames, cmEventNames [32]string

func init() {
	for i := range wcStatusNames {
		wcStatusNames[i] = cshim.WCStatusStr(i)
		eventNames[i] = cshim.EventTypeStr(i)
		cmEventNames[i] = cshim.CMEventStr(i)
	}
}

// String is ibv_wc_status_str.
func (s WCStatus) String() string {
	if s >= 0 && int(s) < len(wcStatusNames) {
		return wcStatusNames[s]
	}
	return fmt.Sprintf("WCStatus(%d)", int32(s))
}

// String is ibv_event_type_str.
func (t EventType) String() string {
	if t >= 0 && int(t) < len(eventNames) {
		return eventNames[t]
	}
	return fmt.Sprintf("EventType(%d)", int32(t))
}

// String is rdma_event_str.
func (t CMEventType) String() string {
	if t >= 0 && int(t) < len(cmEventNames) {
		return cmEventNames[t]
	}
	return fmt.Sprintf("CMEventType(%d)", int32(t))
}

// ReadCounters returns the shim's crossing counters.
func ReadCounters() Counters {
	c := cshim.ReadCounters()
	return Counters{c.PostSendCalls, c.PostSendWRs, c.PostRecvCalls, c.PostRecvWRs, c.PollCalls, c.PollWCs}
}

// ---------- devices and contexts ----------

// Devices lists the RDMA devices of this machine (empty when there are none).
func Devices() ([]Device, error) {
	l, err := cshim.ListDevices()
	if err != nil {
		if errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.ENODEV) {
			return nil, nil
		}
		return nil, opErr("ibv_get_device_list", err)
	}
	out := make([]Device, len(l))
	for i, d := range l {
		out[i] = Device{Name: d.Name, NodeGUID: d.NodeGUID, NodeType: d.NodeType, Transport: d.TransportType}
	}
	return out, nil
}

// Open opens the named device, or the first device when name is "". It fails
// with ErrNoDevice (ENODEV) when there is no such device. The device's
// async-event fd is made non-blocking.
func Open(name string) (*Context, error) {
	op := "ibv_open_device"
	if name != "" {
		op += " " + name
	}
	h, err := cshim.OpenDevice(name)
	if err != nil {
		if errors.Is(err, syscall.ENOSYS) {
			err = syscall.ENODEV
		}
		return nil, opErr(op, err)
	}
	fd := cshim.AsyncFD(h)
	if err := cshim.SetNonblock(fd); err != nil {
		_ = cshim.CloseDevice(h)
		return nil, opErr("fcntl async fd", err)
	}
	c := newContext(h, true)
	c.n, _ = newNode(op)
	arm(c.n, c, func() error { return cshim.CloseDevice(h) })
	return c, nil
}

func newContext(h uintptr, owned bool) *Context {
	return &Context{
		h: h, owned: owned, name: cshim.DeviceName(h), asyncFD: cshim.AsyncFD(h),
		qps: map[uintptr]weak.Pointer[QP]{}, cqs: map[uintptr]weak.Pointer[CQ]{},
		srqs: map[uintptr]weak.Pointer[SRQ]{},
	}
}

var (
	cmCtxMu sync.Mutex
	cmCtxs  = map[uintptr]*Context{}
)

// cmContext wraps a context owned by librdmacm (one wrapper per device).
func cmContext(h uintptr) *Context {
	cmCtxMu.Lock()
	defer cmCtxMu.Unlock()
	if c := cmCtxs[h]; c != nil {
		return c
	}
	c := newContext(h, false)
	c.n, _ = newNode("rdma_cm context")
	cmCtxs[h] = c
	if err := cshim.SetNonblock(c.asyncFD); err != nil {
		c.asyncFD = -1
	}
	return c
}

// QueryDevice returns the device attributes.
func (c *Context) QueryDevice() (DeviceAttr, error) {
	if err := c.usable("ibv_query_device"); err != nil {
		return DeviceAttr{}, err
	}
	a, err := cshim.QueryDevice(c.h)
	if err != nil {
		return DeviceAttr{}, opErr("ibv_query_device", err)
	}
	return DeviceAttr{
		FWVer: a.FWVer, NodeGUID: a.NodeGUID, SysImageGUID: a.SysImageGUID, MaxMRSize: a.MaxMRSize,
		VendorID: a.VendorID, VendorPartID: a.VendorPartID, HWVer: a.HWVer,
		MaxQP: a.MaxQP, MaxQPWR: a.MaxQPWR, MaxSGE: a.MaxSGE, MaxCQ: a.MaxCQ, MaxCQE: a.MaxCQE,
		MaxMR: a.MaxMR, MaxPD: a.MaxPD, MaxQPRdAtom: a.MaxQPRdAtom,
		MaxSRQ: a.MaxSRQ, MaxSRQWR: a.MaxSRQWR, MaxSRQSGE: a.MaxSRQSGE, PhysPortCnt: a.PhysPortCnt,
	}, nil
}

// QueryPort returns the attributes of port (1-based).
func (c *Context) QueryPort(port int) (PortAttr, error) {
	op := fmt.Sprintf("ibv_query_port %d", port)
	if err := c.usable(op); err != nil {
		return PortAttr{}, err
	}
	a, err := cshim.QueryPort(c.h, port)
	if err != nil {
		return PortAttr{}, opErr(op, err)
	}
	return PortAttr{
		State: PortState(a.State), MaxMTU: MTU(a.MaxMTU), ActiveMTU: MTU(a.ActiveMTU),
		GIDTblLen: a.GIDTblLen, MaxMsgSz: a.MaxMsgSz, LID: a.LID, LinkLayer: LinkLayer(a.LinkLayer),
	}, nil
}

// PortActive returns nil when port is ACTIVE and ErrPortDown (ENETDOWN) otherwise.
func (c *Context) PortActive(port int) error {
	a, err := c.QueryPort(port)
	if err != nil {
		return err
	}
	if a.State != PortActive && a.State != PortActiveDefer {
		return kindErr(fmt.Sprintf("%s port %d", c.name, port), syscall.ENETDOWN, ErrPortDown, "state "+a.State.String())
	}
	return nil
}

// GIDs returns the valid GID table entries of port, sorted by index, with
// their type (IB, RoCE v1/v2) and network device. It uses
// ibv_query_gid_table and falls back to sysfs
// (/sys/class/infiniband/DEV/ports/N/gid_attrs) when the library or kernel
// lacks it.
func (c *Context) GIDs(port int) ([]GIDEntry, error) {
	pa, err := c.QueryPort(port)
	if err != nil {
		return nil, err
	}
	da, err := c.QueryDevice()
	if err != nil {
		return nil, err
	}
	max := pa.GIDTblLen * da.PhysPortCnt
	if max <= 0 {
		max = pa.GIDTblLen
	}
	tbl, err := cshim.QueryGIDTable(c.h, max)
	if err != nil {
		if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
			return gidsFromSysfs(sysfsRoot, c.name, port, pa.GIDTblLen)
		}
		return nil, opErr("ibv_query_gid_table", err)
	}
	var out []GIDEntry
	for _, e := range tbl {
		if int(e.Port) != port {
			continue
		}
		g := GIDEntry{Index: int(e.Index), Port: port, GID: GID(e.GID), Type: GIDType(e.Type), NetdevIndex: int(e.NdevIfindex)}
		if g.NetdevIndex > 0 {
			if ifc, err := net.InterfaceByIndex(g.NetdevIndex); err == nil {
				g.Netdev = ifc.Name
			}
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// PickGID returns the GID entry to use on port: the entry at index when
// index >= 0, otherwise (index -1) the first RoCE v2 IPv4-mapped GID, else the
// first RoCE v2 GID, else index 0.
func (c *Context) PickGID(port, index int) (GIDEntry, error) {
	gids, err := c.GIDs(port)
	if err != nil {
		return GIDEntry{}, err
	}
	g, ok := pickGID(gids, index)
	if !ok {
		return GIDEntry{}, kindErr(fmt.Sprintf("pick GID %s port %d index %d", c.name, port, index), syscall.ENOENT, nil, "no such valid GID")
	}
	return g, nil
}

// GetAsyncEvent returns the next async event (already acknowledged). When
// none is pending it returns an error with Timeout() true wrapping EAGAIN.
func (c *Context) GetAsyncEvent() (AsyncEvent, error) {
	if err := c.usable("ibv_get_async_event"); err != nil {
		return AsyncEvent{}, err
	}
	e, err := cshim.GetAsyncEvent(c.h)
	if err != nil {
		return AsyncEvent{}, opErr("ibv_get_async_event", err)
	}
	ev := AsyncEvent{Type: EventType(e.Type), Port: e.Port, QPNum: e.QPNum}
	c.regMu.Lock()
	if e.QP != 0 {
		ev.QP = c.qps[e.QP].Value()
	}
	if e.CQ != 0 {
		ev.CQ = c.cqs[e.CQ].Value()
	}
	if e.SRQ != 0 {
		ev.SRQ = c.srqs[e.SRQ].Value()
	}
	c.regMu.Unlock()
	return ev, nil
}

func register[T any](c *Context, m map[uintptr]weak.Pointer[T], h uintptr, v *T) {
	c.regMu.Lock()
	m[h] = weak.Make(v)
	c.regMu.Unlock()
}

func unregister[T any](c *Context, m map[uintptr]weak.Pointer[T], h uintptr) {
	c.regMu.Lock()
	delete(m, h)
	c.regMu.Unlock()
}

// ---------- PD, buffers, MRs ----------

// AllocPD allocates a protection domain.
func (c *Context) AllocPD() (*PD, error) {
	const op = "ibv_alloc_pd"
	n, err := newNode(op, c.nodeOrNil())
	if err != nil {
		return nil, err
	}
	h, err := cshim.AllocPD(c.h)
	if err != nil {
		n.detach()
		return nil, opErr(op, err)
	}
	p := &PD{n: n, h: h, ctx: c}
	arm(n, p, func() error { return cshim.DeallocPD(h) })
	return p, nil
}

// AllocBuffer allocates size zeroed bytes of page-aligned C memory (never
// moved or freed by the Go GC) for registration.
func AllocBuffer(size int) (*Buffer, error) {
	const op = "posix_memalign"
	if size <= 0 {
		return nil, kindErr(op, syscall.EINVAL, nil, "size must be positive")
	}
	p, err := cshim.Malloc(size, os.Getpagesize())
	if err != nil {
		return nil, opErr(op, err)
	}
	n, _ := newNode(op)
	b := &Buffer{n: n, p: p, size: size}
	arm(n, b, func() error { cshim.Free(p); return nil })
	return b, nil
}

// HugePageSize is the huge page size MapBuffer uses (2 MiB).
const HugePageSize = 2 << 20

// MapBuffer allocates size zeroed bytes with an anonymous private mmap, which
// the Go GC never moves or frees. With huge it uses MAP_HUGETLB pages of
// HugePageSize (size is rounded up) and MAP_POPULATE; when the system has no
// free huge pages that fails with ENOMEM and the caller may fall back to
// huge=false. Free unmaps it.
func MapBuffer(size int, huge bool) (*Buffer, error) {
	op := "mmap"
	if size <= 0 {
		return nil, kindErr(op, syscall.EINVAL, nil, "size must be positive")
	}
	flags := unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_POPULATE
	if huge {
		op = "mmap MAP_HUGETLB"
		flags |= unix.MAP_HUGETLB
		size = (size + HugePageSize - 1) &^ (HugePageSize - 1)
	}
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, flags)
	if err != nil {
		return nil, opErr(op, err)
	}
	n, _ := newNode(op)
	b := &Buffer{n: n, p: uintptr(unsafe.Pointer(unsafe.SliceData(mem))), size: size}
	arm(n, b, func() error { return unix.Munmap(mem) })
	return b, nil
}

// Bytes is the buffer's memory as a slice (nil after Free).
func (b *Buffer) Bytes() []byte {
	if b == nil || b.n.isClosed() {
		return nil
	}
	return cshim.Bytes(b.p, b.size)
}

// RegMR registers the whole buffer.
func (p *PD) RegMR(buf *Buffer, access Access) (*MR, error) {
	return p.RegMRRange(buf, 0, buf.Len(), access)
}

// RegMRRange registers buf[off:off+length]. A zero length or a range outside
// the buffer fails with EINVAL before reaching the device; an ENOMEM from the
// kernel with a finite RLIMIT_MEMLOCK is reported as ErrMemlockTooLow.
func (p *PD) RegMRRange(buf *Buffer, off, length int, access Access) (*MR, error) {
	const op = "ibv_reg_mr"
	if buf == nil || buf.n.isClosed() {
		return nil, closedErr(op)
	}
	if length <= 0 || off < 0 || off+length > buf.size {
		return nil, kindErr(op, syscall.EINVAL, nil, fmt.Sprintf("range [%d,+%d) of a %d-byte buffer", off, length, buf.size))
	}
	n, err := newNode(op, p.nodeOrNil(), buf.n)
	if err != nil {
		return nil, err
	}
	addr := buf.p + uintptr(off)
	h, lkey, rkey, err := cshim.RegMR(p.h, addr, length, int(access))
	if err != nil {
		n.detach()
		if errors.Is(err, syscall.ENOMEM) {
			return nil, memlockErr(op, syscall.ENOMEM)
		}
		return nil, opErr(op, err)
	}
	m := &MR{n: n, h: h, buf: buf, addr: addr, length: length, lkey: lkey, rkey: rkey}
	arm(n, m, func() error { return cshim.DeregMR(h) })
	return m, nil
}

// Bytes is the registered range as a slice.
func (m *MR) Bytes() []byte {
	if m == nil || m.buf.n.isClosed() {
		return nil
	}
	return cshim.Bytes(m.addr, m.length)
}

// ---------- completion channels and CQs ----------

// CreateCompChannel creates a completion channel whose fd is non-blocking.
func (c *Context) CreateCompChannel() (*CompChannel, error) {
	const op = "ibv_create_comp_channel"
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
		return nil, closedErr(op)
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
		return 0, closedErr(op)
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
	v := cq.x.wc.View()
	for i := 0; i < got; i++ {
		w := &v[i]
		dst[i] = WorkCompletion{
			ID: w.WRID, Status: WCStatus(w.Status), Opcode: WCOpcode(w.Opcode), VendorErr: w.VendorErr,
			ByteLen: w.ByteLen, Imm: w.Imm, HasImm: w.WCFlags&cshim.WCWithImm != 0, QPNum: w.QPNum, SrcQP: w.SrcQP,
		}
	}
	return got, nil
}

// ReqNotify arms the CQ: the channel becomes readable at the next
// completion (or the next solicited one).
func (cq *CQ) ReqNotify(solicitedOnly bool) error {
	const op = "ibv_req_notify_cq"
	if cq == nil || cq.n.isClosed() {
		return closedErr(op)
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

// ---------- QPs ----------

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
	in, deps, err := attr.shim()
	if err != nil {
		return nil, err
	}
	n, err := newNode(op, append([]*node{p.nodeOrNil()}, deps...)...)
	if err != nil {
		return nil, err
	}
	h, qpn, err := cshim.CreateQP(p.h, &in)
	if err != nil {
		n.detach()
		return nil, opErr(op, err)
	}
	q, err := newQP(p.ctx, n, h, qpn, &in, &attr, func() error { return cshim.DestroyQP(h) })
	if err != nil {
		_ = cshim.DestroyQP(h)
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
		return closedErr(op)
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
		return closedErr(op)
	}
	return opErr(op, cshim.QPToErr(q.h))
}

// State queries the QP's current state.
func (q *QP) State() (QPState, error) {
	const op = "ibv_query_qp"
	if q == nil || q.n.isClosed() {
		return 0, closedErr(op)
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
	q.sendMu.Lock()
	defer q.sendMu.Unlock()
	if q.x.send == nil || q.n.closed {
		return 0, closedErr(op)
	}
	done := 0
	for done < len(wrs) {
		chunk := wrs[done:min(len(wrs), done+len(q.x.send.WR))]
		if err := encodeSend(q.x.send, chunk, q.caps.MaxInlineData); err != nil {
			return done, kindErr(op, syscall.EINVAL, nil, "too many SGEs in one chain")
		}
		n, err := q.x.send.Post(q.h, len(chunk))
		done += n
		if err != nil {
			return done, opErr(op, err)
		}
	}
	return done, nil
}

// PostRecv posts receive WRs as linked chains, one ibv_post_recv per chain.
func (q *QP) PostRecv(wrs []RecvRequest) (int, error) {
	const op = "ibv_post_recv"
	q.recvMu.Lock()
	defer q.recvMu.Unlock()
	if q.n.closed {
		return 0, closedErr(op)
	}
	if q.x.recv == nil {
		return 0, kindErr(op, syscall.EINVAL, nil, "the QP uses an SRQ")
	}
	return postRecv(op, q.x.recv, wrs, func(n int) (int, error) { return q.x.recv.Post(q.h, n) })
}

func postRecv(op string, b *cshim.RecvBatch, wrs []RecvRequest, post func(int) (int, error)) (int, error) {
	done := 0
	for done < len(wrs) {
		chunk := wrs[done:min(len(wrs), done+len(b.WR))]
		if err := encodeRecv(b, chunk); err != nil {
			return done, kindErr(op, syscall.EINVAL, nil, "too many SGEs in one chain")
		}
		n, err := post(len(chunk))
		done += n
		if err != nil {
			return done, opErr(op, err)
		}
	}
	return done, nil
}

// ---------- SRQ ----------

// CreateSRQ creates a shared receive queue.
func (p *PD) CreateSRQ(attr SRQInitAttr) (*SRQ, error) {
	const op = "ibv_create_srq"
	n, err := newNode(op, p.nodeOrNil())
	if err != nil {
		return nil, err
	}
	maxWR, maxSGE := max(attr.MaxWR, 1), max(attr.MaxSGE, 1)
	h, got, err := cshim.CreateSRQ(p.h, maxWR, maxSGE, attr.Limit)
	if err != nil {
		n.detach()
		return nil, opErr(op, err)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.x.recv == nil || s.n.closed {
		return 0, closedErr(op)
	}
	return postRecv(op, s.x.recv, wrs, func(n int) (int, error) { return s.x.recv.PostSRQ(s.h, n) })
}

// ArmLimit arms the SRQ limit: when fewer than limit receive WRs remain, the
// device raises one EventSRQLimit async event (then the limit is disarmed).
func (s *SRQ) ArmLimit(limit int) error {
	const op = "ibv_modify_srq LIMIT"
	if s == nil || s.n.isClosed() {
		return closedErr(op)
	}
	return opErr(op, cshim.ArmSRQ(s.h, limit))
}

// ---------- rdma_cm ----------

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
		return nil, closedErr(op)
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
		return nil, closedErr(op)
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
		return closedErr(op)
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
	in, deps, err := attr.shim()
	if err != nil {
		return nil, err
	}
	n, err := newNode(op, append([]*node{pd.nodeOrNil(), id.n}, deps...)...)
	if err != nil {
		return nil, err
	}
	h, qpn, err := cshim.RDMACreateQP(id.h, pd.h, &in)
	if err != nil {
		n.detach()
		return nil, opErr(op, err)
	}
	idh := id.h
	q, err := newQP(pd.ctx, n, h, qpn, &in, &attr, func() error { cshim.RDMADestroyQP(idh); return nil })
	if err != nil {
		cshim.RDMADestroyQP(idh)
		n.detach()
		return nil, opErr(op, err)
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
