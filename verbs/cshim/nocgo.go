//go:build !linux || !cgo

package cshim

import "syscall"

// Supported: without cgo (or off Linux) every function of this variant fails
// with errNoCgo and touches nothing; package verbs reports it as
// ErrNotSupported. The signatures are those of the cgo variant.
const Supported = false

const errNoCgo = syscall.EOPNOTSUPP

// The ABI constants package verbs uses in non-test code (Linux values).
const (
	WCWithImm = 1 << 1
	AFInet    = 2
	AFInet6   = 10
)

func ReadCounters() Counters                                  { return Counters{} }
func ListDevices() ([]DeviceInfo, error)                      { return nil, errNoCgo }
func OpenDevice(name string) (uintptr, error)                 { return 0, errNoCgo }
func CloseDevice(ctx uintptr) error                           { return errNoCgo }
func DeviceName(ctx uintptr) string                           { return "" }
func AsyncFD(ctx uintptr) int                                 { return -1 }
func SetNonblock(fd int) error                                { return errNoCgo }
func QueryDevice(ctx uintptr) (DeviceAttr, error)             { return DeviceAttr{}, errNoCgo }
func QueryPort(ctx uintptr, port int) (PortAttr, error)       { return PortAttr{}, errNoCgo }
func QueryGIDTable(ctx uintptr, max int) ([]GIDEntry, error)  { return nil, errNoCgo }
func QueryGID(ctx uintptr, port, index int) ([16]byte, error) { return [16]byte{}, errNoCgo }
func GetAsyncEvent(ctx uintptr) (AsyncEvent, error)           { return AsyncEvent{}, errNoCgo }

func AllocPD(ctx uintptr) (uintptr, error)      { return 0, errNoCgo }
func DeallocPD(pd uintptr) error                { return errNoCgo }
func Malloc(size, align int) (uintptr, error)   { return 0, errNoCgo }
func Free(p uintptr)                            {}
func Bytes(p uintptr, n int) []byte             { return nil }
func Mmap(size int, huge bool) (uintptr, error) { return 0, errNoCgo }
func Munmap(p uintptr, size int) error          { return errNoCgo }
func RegMR(pd, addr uintptr, length int, access int) (mr uintptr, lkey, rkey uint32, err error) {
	return 0, 0, 0, errNoCgo
}
func DeregMR(mr uintptr) error { return errNoCgo }

func CreateCompChannel(ctx uintptr) (ch uintptr, fd int, err error) { return 0, -1, errNoCgo }
func DestroyCompChannel(ch uintptr) error                           { return errNoCgo }
func CreateCQ(ctx uintptr, cqe int, ch uintptr, vector int) (cq uintptr, size int, err error) {
	return 0, 0, errNoCgo
}
func ResizeCQ(cq uintptr, cqe int) (int, error)        { return 0, errNoCgo }
func DestroyCQ(cq uintptr) error                       { return errNoCgo }
func ReqNotifyCQ(cq uintptr, solicitedOnly bool) error { return errNoCgo }
func GetCQEvent(ch uintptr) (uintptr, error)           { return 0, errNoCgo }
func AckCQEvents(cq uintptr, n int)                    {}
func NewWCArray(n int) (*WCArray, error)               { return nil, errNoCgo }
func (a *WCArray) Free()                               {}
func (a *WCArray) Poll(cq uintptr, n int) (int, error) { return 0, errNoCgo }
func (a *WCArray) Spin(qp uintptr, sb *SendBatch, rb *RecvBatch, cq, cq2 uintptr) (int, error) {
	return 0, errNoCgo
}

func NewSendBatch(n, sges int) (*SendBatch, error)                         { return nil, errNoCgo }
func (b *SendBatch) Free()                                                 {}
func (b *SendBatch) Post(qp uintptr, n int) (int, error)                   { return 0, errNoCgo }
func NewRecvBatch(n, sges int) (*RecvBatch, error)                         { return nil, errNoCgo }
func (b *RecvBatch) Free()                                                 {}
func (b *RecvBatch) Post(qp uintptr, n int) (int, error)                   { return 0, errNoCgo }
func (b *RecvBatch) PostSRQ(srq uintptr, n int) (int, error)               { return 0, errNoCgo }
func CreateQP(pd uintptr, in *QPInit) (qp uintptr, qpn uint32, err error)  { return 0, 0, errNoCgo }
func DestroyQP(qp uintptr) error                                           { return errNoCgo }
func QPToInit(qp uintptr, p *QPParams) error                               { return errNoCgo }
func QPToRTR(qp uintptr, p *QPParams) error                                { return errNoCgo }
func QPToRTS(qp uintptr, p *QPParams) error                                { return errNoCgo }
func QPToErr(qp uintptr) error                                             { return errNoCgo }
func QPState(qp uintptr) (int, error)                                      { return 0, errNoCgo }
func CreateSRQ(pd uintptr, maxWR, maxSGE, limit int) (uintptr, int, error) { return 0, 0, errNoCgo }
func ArmSRQ(srq uintptr, limit int) error                                  { return errNoCgo }
func DestroySRQ(srq uintptr) error                                         { return errNoCgo }

func CreateEventChannel() (uintptr, int, error)                    { return 0, -1, errNoCgo }
func DestroyEventChannel(ch uintptr)                               {}
func CreateID(ch uintptr, ps int) (uintptr, error)                 { return 0, errNoCgo }
func DestroyID(id uintptr) error                                   { return errNoCgo }
func IDVerbs(id uintptr) uintptr                                   { return 0 }
func IDPort(id uintptr) int                                        { return 0 }
func BindAddr(id uintptr, family int, ip [16]byte, port int) error { return errNoCgo }
func ResolveAddr(id uintptr, sfamily int, sip [16]byte, sport int, dfamily int, dip [16]byte, dport int, timeoutMS int) error {
	return errNoCgo
}
func LocalAddr(id uintptr) (family int, ip [16]byte, port int, err error) { return 0, ip, 0, errNoCgo }
func ResolveRoute(id uintptr, timeoutMS int) error                        { return errNoCgo }
func Listen(id uintptr, backlog int) error                                { return errNoCgo }
func Connect(id uintptr, p *ConnParam) error                              { return errNoCgo }
func Accept(id uintptr, p *ConnParam) error                               { return errNoCgo }
func Reject(id uintptr, data []byte) error                                { return errNoCgo }
func Disconnect(id uintptr) error                                         { return errNoCgo }
func MigrateID(id, ch uintptr) error                                      { return errNoCgo }
func RDMACreateQP(id, pd uintptr, in *QPInit) (qp uintptr, qpn uint32, err error) {
	return 0, 0, errNoCgo
}
func RDMADestroyQP(id uintptr)               {}
func GetCMEvent(ch uintptr) (CMEvent, error) { return CMEvent{}, errNoCgo }
func AckCMEvent(ev uintptr) error            { return errNoCgo }

// The names rdma-core's *_str functions return, for String methods that
// work without cgo too.
var (
	wcStatusNames = [...]string{
		"success", "local length error", "local QP operation error", "local EE context operation error",
		"local protection error", "Work Request Flushed Error", "memory management operation error",
		"bad response error", "local access error", "remote invalid request error", "remote access error",
		"remote operation error", "transport retry counter exceeded", "RNR retry counter exceeded",
		"local RDD violation error", "remote invalid RD request", "aborted error", "invalid EE context number",
		"invalid EE context state", "fatal error", "response timeout error", "general error",
		"TM error", "TM software rendezvous",
	}
	eventNames = [...]string{
		"CQ error", "local work queue catastrophic error", "invalid request local work queue error",
		"local access violation work queue error", "communication established", "send queue drained",
		"path migrated", "path migration request error", "local catastrophic error", "port active",
		"port error", "LID change", "P_Key change", "SM change", "SRQ catastrophic error",
		"SRQ limit reached", "last WQE reached", "client reregistration", "GID table change", "WQ fatal",
	}
	cmEventNames = [...]string{
		"RDMA_CM_EVENT_ADDR_RESOLVED", "RDMA_CM_EVENT_ADDR_ERROR", "RDMA_CM_EVENT_ROUTE_RESOLVED",
		"RDMA_CM_EVENT_ROUTE_ERROR", "RDMA_CM_EVENT_CONNECT_REQUEST", "RDMA_CM_EVENT_CONNECT_RESPONSE",
		"RDMA_CM_EVENT_CONNECT_ERROR", "RDMA_CM_EVENT_UNREACHABLE", "RDMA_CM_EVENT_REJECTED",
		"RDMA_CM_EVENT_ESTABLISHED", "RDMA_CM_EVENT_DISCONNECTED", "RDMA_CM_EVENT_DEVICE_REMOVAL",
		"RDMA_CM_EVENT_MULTICAST_JOIN", "RDMA_CM_EVENT_MULTICAST_ERROR", "RDMA_CM_EVENT_ADDR_CHANGE",
		"RDMA_CM_EVENT_TIMEWAIT_EXIT",
	}
)

func strOf(names []string, i int, unknown string) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return unknown
}

func WCStatusStr(s int) string  { return strOf(wcStatusNames[:], s, "unknown") }
func EventTypeStr(t int) string { return strOf(eventNames[:], t, "unknown") }
func CMEventStr(t int) string   { return strOf(cmEventNames[:], t, "UNKNOWN EVENT") }

// Lat is the latency run of the cgo variant; without cgo it cannot be made.
type Lat struct{}

func NewLat(n int) (*Lat, error) { return nil, errNoCgo }
func (l *Lat) Free()             {}
func (l *Lat) Cap() int          { return 0 }
func (l *Lat) Set(c *LatConfig)  {}
func (l *Lat) Run(qp uintptr, sb *SendBatch, rb *RecvBatch, cq uintptr, maxTicks uint64) (LatState, error) {
	return LatState{}, errNoCgo
}
func (l *Lat) Stamps() []uint64 { return nil }
