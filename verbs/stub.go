//go:build !linux || !cgo

package verbs

import (
	"fmt"
	"net/netip"
	"time"
)

// Supported reports whether this build can use RDMA devices (cgo on Linux).
const Supported = false

type cqExtra struct{}
type qpExtra struct{}
type srqExtra struct{}

var wcStatusNames = [...]string{
	"success", "local length error", "local QP operation error", "local EE context operation error",
	"local protection error", "Work Request Flushed Error", "memory management operation error",
	"bad response error", "local access error", "remote invalid request error", "remote access error",
	"remote operation error", "transport retry counter exceeded", "RNR retry counter exceeded",
	"local RDD violation error", "remote invalid RD request", "aborted error", "invalid EE context number",
	"invalid EE context state", "fatal error", "response timeout error", "general error",
	"TM error", "TM software rendezvous",
}

var eventNames = [...]string{
	"CQ error", "local work queue catastrophic error", "invalid request local work queue error",
	"local access violation work queue error", "communication established", "send queue drained",
	"path migrated", "path migration request error", "local catastrophic error", "port active",
	"port error", "LID change", "P_Key change", "SM change", "SRQ catastrophic error",
	"SRQ limit reached", "last WQE reached", "client reregistration", "GID table change", "WQ fatal",
}

var cmEventNames = [...]string{
	"RDMA_CM_EVENT_ADDR_RESOLVED", "RDMA_CM_EVENT_ADDR_ERROR", "RDMA_CM_EVENT_ROUTE_RESOLVED",
	"RDMA_CM_EVENT_ROUTE_ERROR", "RDMA_CM_EVENT_CONNECT_REQUEST", "RDMA_CM_EVENT_CONNECT_RESPONSE",
	"RDMA_CM_EVENT_CONNECT_ERROR", "RDMA_CM_EVENT_UNREACHABLE", "RDMA_CM_EVENT_REJECTED",
	"RDMA_CM_EVENT_ESTABLISHED", "RDMA_CM_EVENT_DISCONNECTED", "RDMA_CM_EVENT_DEVICE_REMOVAL",
	"RDMA_CM_EVENT_MULTICAST_JOIN", "RDMA_CM_EVENT_MULTICAST_ERROR", "RDMA_CM_EVENT_ADDR_CHANGE",
	"RDMA_CM_EVENT_TIMEWAIT_EXIT",
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

// ReadCounters returns the shim's crossing counters (zero without cgo).
func ReadCounters() Counters { return Counters{} }

// Devices lists the RDMA devices of this machine; ErrNotSupported without cgo.
func Devices() ([]Device, error) { return nil, notSupported("ibv_get_device_list") }

// Open opens a device; ErrNotSupported without cgo.
func Open(name string) (*Context, error) { return nil, notSupported("ibv_open_device") }

// QueryDevice returns the device attributes; ErrNotSupported without cgo.
func (c *Context) QueryDevice() (DeviceAttr, error) {
	return DeviceAttr{}, notSupported("ibv_query_device")
}

// QueryPort returns port attributes; ErrNotSupported without cgo.
func (c *Context) QueryPort(port int) (PortAttr, error) {
	return PortAttr{}, notSupported("ibv_query_port")
}

// PortActive checks the port state; ErrNotSupported without cgo.
func (c *Context) PortActive(port int) error { return notSupported("ibv_query_port") }

// GIDs returns the port's GID table; ErrNotSupported without cgo.
func (c *Context) GIDs(port int) ([]GIDEntry, error) { return nil, notSupported("ibv_query_gid_table") }

// PickGID chooses a GID; ErrNotSupported without cgo.
func (c *Context) PickGID(port, index int) (GIDEntry, error) {
	return GIDEntry{}, notSupported("ibv_query_gid_table")
}

// GetAsyncEvent returns the next async event; ErrNotSupported without cgo.
func (c *Context) GetAsyncEvent() (AsyncEvent, error) {
	return AsyncEvent{}, notSupported("ibv_get_async_event")
}

// AllocPD allocates a PD; ErrNotSupported without cgo.
func (c *Context) AllocPD() (*PD, error) { return nil, notSupported("ibv_alloc_pd") }

// CreateCompChannel creates a completion channel; ErrNotSupported without cgo.
func (c *Context) CreateCompChannel() (*CompChannel, error) {
	return nil, notSupported("ibv_create_comp_channel")
}

// CreateCQ creates a CQ; ErrNotSupported without cgo.
func (c *Context) CreateCQ(cqe int, ch *CompChannel, vector int) (*CQ, error) {
	return nil, notSupported("ibv_create_cq")
}

// AllocBuffer allocates registrable memory; ErrNotSupported without cgo.
func AllocBuffer(size int) (*Buffer, error) { return nil, notSupported("posix_memalign") }

// HugePageSize is the huge page size MapBuffer uses (2 MiB).
const HugePageSize = 2 << 20

// MapBuffer allocates mmap'd registrable memory; ErrNotSupported without cgo.
func MapBuffer(size int, huge bool) (*Buffer, error) { return nil, notSupported("mmap") }

// Bytes is the buffer's memory (nil without cgo).
func (b *Buffer) Bytes() []byte { return nil }

// RegMR registers a buffer; ErrNotSupported without cgo.
func (p *PD) RegMR(buf *Buffer, access Access) (*MR, error) { return nil, notSupported("ibv_reg_mr") }

// RegMRRange registers part of a buffer; ErrNotSupported without cgo.
func (p *PD) RegMRRange(buf *Buffer, off, length int, access Access) (*MR, error) {
	return nil, notSupported("ibv_reg_mr")
}

// Bytes is the registered range (nil without cgo).
func (m *MR) Bytes() []byte { return nil }

// GetEvent returns the next CQ event; ErrNotSupported without cgo.
func (ch *CompChannel) GetEvent() (*CQ, error) { return nil, notSupported("ibv_get_cq_event") }

// Poll polls completions; ErrNotSupported without cgo.
func (cq *CQ) Poll(dst []WorkCompletion) (int, error) { return 0, notSupported("ibv_poll_cq") }

// ReqNotify arms the CQ; ErrNotSupported without cgo.
func (cq *CQ) ReqNotify(solicitedOnly bool) error { return notSupported("ibv_req_notify_cq") }

// AckEvents acknowledges CQ events (no-op without cgo).
func (cq *CQ) AckEvents() {}

// CreateQP creates a QP; ErrNotSupported without cgo.
func (p *PD) CreateQP(attr QPInitAttr) (*QP, error) { return nil, notSupported("ibv_create_qp") }

// ToInit moves the QP to INIT; ErrNotSupported without cgo.
func (q *QP) ToInit(p ConnParams) error { return notSupported("ibv_modify_qp INIT") }

// ToRTR moves the QP to RTR; ErrNotSupported without cgo.
func (q *QP) ToRTR(p ConnParams) error { return notSupported("ibv_modify_qp RTR") }

// ToRTS moves the QP to RTS; ErrNotSupported without cgo.
func (q *QP) ToRTS(p ConnParams) error { return notSupported("ibv_modify_qp RTS") }

// Connect moves the QP to RTS; ErrNotSupported without cgo.
func (q *QP) Connect(p ConnParams) error { return notSupported("ibv_modify_qp INIT") }

// ToError moves the QP to ERR; ErrNotSupported without cgo.
func (q *QP) ToError() error { return notSupported("ibv_modify_qp ERR") }

// State queries the QP state; ErrNotSupported without cgo.
func (q *QP) State() (QPState, error) { return 0, notSupported("ibv_query_qp") }

// PostSend posts send WRs; ErrNotSupported without cgo.
func (q *QP) PostSend(wrs []WorkRequest) (int, error) { return 0, notSupported("ibv_post_send") }

// PostRecv posts receive WRs; ErrNotSupported without cgo.
func (q *QP) PostRecv(wrs []RecvRequest) (int, error) { return 0, notSupported("ibv_post_recv") }

// CreateSRQ creates an SRQ; ErrNotSupported without cgo.
func (p *PD) CreateSRQ(attr SRQInitAttr) (*SRQ, error) { return nil, notSupported("ibv_create_srq") }

// PostRecv posts receive WRs; ErrNotSupported without cgo.
func (s *SRQ) PostRecv(wrs []RecvRequest) (int, error) { return 0, notSupported("ibv_post_srq_recv") }

// ArmLimit arms the SRQ limit; ErrNotSupported without cgo.
func (s *SRQ) ArmLimit(limit int) error { return notSupported("ibv_modify_srq LIMIT") }

// NewCMEventChannel creates an rdma_cm event channel; ErrNotSupported without cgo.
func NewCMEventChannel() (*CMEventChannel, error) {
	return nil, notSupported("rdma_create_event_channel")
}

// CreateID creates an rdma_cm id; ErrNotSupported without cgo.
func (ch *CMEventChannel) CreateID(ps PortSpace) (*CMID, error) {
	return nil, notSupported("rdma_create_id")
}

// GetEvent returns the next rdma_cm event; ErrNotSupported without cgo.
func (ch *CMEventChannel) GetEvent() (*CMEvent, error) { return nil, notSupported("rdma_get_cm_event") }

// Ack acknowledges the event (no-op without cgo).
func (e *CMEvent) Ack() error { return nil }

// BindAddr binds the id; ErrNotSupported without cgo.
func (id *CMID) BindAddr(ap netip.AddrPort) error { return notSupported("rdma_bind_addr") }

// LocalAddr is the id's local address; ErrNotSupported without cgo.
func (id *CMID) LocalAddr() (netip.AddrPort, error) {
	return netip.AddrPort{}, notSupported("rdma_get_local_addr")
}

// ResolveAddr resolves an address; ErrNotSupported without cgo.
func (id *CMID) ResolveAddr(src, dst netip.AddrPort, timeout time.Duration) error {
	return notSupported("rdma_resolve_addr")
}

// ResolveRoute resolves the route; ErrNotSupported without cgo.
func (id *CMID) ResolveRoute(timeout time.Duration) error { return notSupported("rdma_resolve_route") }

// Listen listens; ErrNotSupported without cgo.
func (id *CMID) Listen(backlog int) error { return notSupported("rdma_listen") }

// Connect connects; ErrNotSupported without cgo.
func (id *CMID) Connect(p CMConnParam) error { return notSupported("rdma_connect") }

// Accept accepts; ErrNotSupported without cgo.
func (id *CMID) Accept(p CMConnParam) error { return notSupported("rdma_accept") }

// Reject rejects; ErrNotSupported without cgo.
func (id *CMID) Reject(privateData []byte) error { return notSupported("rdma_reject") }

// Disconnect disconnects; ErrNotSupported without cgo.
func (id *CMID) Disconnect() error { return notSupported("rdma_disconnect") }

// Migrate migrates the id; ErrNotSupported without cgo.
func (id *CMID) Migrate(ch *CMEventChannel) error { return notSupported("rdma_migrate_id") }

// Context is the id's device context (nil without cgo).
func (id *CMID) Context() *Context { return nil }

// Port is the id's port (0 without cgo).
func (id *CMID) Port() int { return 0 }

// CreateQP creates the id's QP; ErrNotSupported without cgo.
func (id *CMID) CreateQP(pd *PD, attr QPInitAttr) (*QP, error) {
	return nil, notSupported("rdma_create_qp")
}

// QP is the id's QP (nil without cgo).
func (id *CMID) QP() *QP { return nil }

// Close destroys the id (no-op without cgo).
func (id *CMID) Close() error { return nil }
