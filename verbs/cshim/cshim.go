//go:build linux && cgo

package cshim

/*
#cgo LDFLAGS: -libverbs -lrdmacm
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include "shim.h"

*/
import "C"

import (
	"sync/atomic"
	"syscall"
	"unsafe"
)

// ptr turns a handle back into the C pointer it came from. Handles always point
// into C memory, which the Go GC neither scans nor moves.
func ptr(h uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&h)) }

func handle(p unsafe.Pointer) uintptr { return uintptr(p) }

// rcErr turns a shim return code (negative errno) into an error.
func rcErr(rc C.int) error {
	if rc < 0 {
		return syscall.Errno(-rc)
	}
	return nil
}

// ibvErr turns a verbs int return (0, positive errno, or -1 with errno) into an error.
func ibvErr(rc C.int, err error) error {
	if rc == 0 {
		return nil
	}
	if rc > 0 {
		return syscall.Errno(rc)
	}
	if e, ok := err.(syscall.Errno); ok && e != 0 {
		return e
	}
	return syscall.Errno(-rc)
}

// nilErr is the errno to report when a C call returned NULL without setting errno.
func nilErr(err error, def syscall.Errno) error {
	if e, ok := err.(syscall.Errno); ok && e != 0 {
		return e
	}
	return def
}

// ---------- counters ----------

// Counters counts crossings into the batched entry points since process start.
type Counters struct {
	PostSendCalls, PostSendWRs uint64
	PostRecvCalls, PostRecvWRs uint64
	PollCalls, PollWCs         uint64
}

// ReadCounters reads the shim's crossing counters (no cgo call).
func ReadCounters() Counters {
	c := &C.shim_ctr
	ld := func(p *C.uint64_t) uint64 { return atomic.LoadUint64((*uint64)(unsafe.Pointer(p))) }
	return Counters{
		PostSendCalls: ld(&c.post_send_calls), PostSendWRs: ld(&c.post_send_wrs),
		PostRecvCalls: ld(&c.post_recv_calls), PostRecvWRs: ld(&c.post_recv_wrs),
		PollCalls: ld(&c.poll_calls), PollWCs: ld(&c.poll_wcs),
	}
}

// ---------- devices ----------

// DeviceInfo names a device found by ibv_get_device_list.
type DeviceInfo struct {
	Name          string
	NodeGUID      uint64 // network byte order, as libibverbs returns it
	NodeType      int
	TransportType int
}

// ListDevices returns the RDMA devices of this machine.
func ListDevices() ([]DeviceInfo, error) {
	var n C.int
	list, err := C.ibv_get_device_list(&n)
	if list == nil {
		return nil, nilErr(err, syscall.ENODEV)
	}
	defer C.ibv_free_device_list(list)
	devs := unsafe.Slice(list, int(n))
	out := make([]DeviceInfo, 0, len(devs))
	for _, d := range devs {
		out = append(out, DeviceInfo{
			Name:          C.GoString(C.ibv_get_device_name(d)),
			NodeGUID:      uint64(C.ibv_get_device_guid(d)),
			NodeType:      int(d.node_type),
			TransportType: int(d.transport_type),
		})
	}
	return out, nil
}

// OpenDevice opens the named device, or the first one when name is empty.
func OpenDevice(name string) (uintptr, error) {
	var cname *C.char
	if name != "" {
		cname = C.CString(name)
		defer C.free(unsafe.Pointer(cname))
	}
	ctx, err := C.shim_open_device(cname)
	if ctx == nil {
		return 0, nilErr(err, syscall.ENODEV)
	}
	return handle(unsafe.Pointer(ctx)), nil
}

func ctxp(h uintptr) *C.struct_ibv_context { return (*C.struct_ibv_context)(ptr(h)) }

// CloseDevice closes a context opened by OpenDevice.
func CloseDevice(ctx uintptr) error {
	rc, err := C.ibv_close_device(ctxp(ctx))
	return ibvErr(rc, err)
}

// DeviceName is the name of the device behind ctx.
func DeviceName(ctx uintptr) string {
	return C.GoString(C.ibv_get_device_name(ctxp(ctx).device))
}

// AsyncFD is the device's async-event file descriptor.
func AsyncFD(ctx uintptr) int { return int(ctxp(ctx).async_fd) }

// SetNonblock sets O_NONBLOCK on fd.
func SetNonblock(fd int) error { return rcErr(C.shim_set_nonblock(C.int(fd))) }

// DeviceAttr mirrors the useful part of struct ibv_device_attr.
type DeviceAttr struct {
	FWVer                                    string
	NodeGUID, SysImageGUID                   uint64
	MaxMRSize                                uint64
	VendorID, VendorPartID, HWVer            uint32
	MaxQP, MaxQPWR, MaxSGE, MaxCQ, MaxCQE    int
	MaxMR, MaxPD, MaxQPRdAtom                int
	MaxSRQ, MaxSRQWR, MaxSRQSGE, PhysPortCnt int
}

// QueryDevice calls ibv_query_device.
func QueryDevice(ctx uintptr) (DeviceAttr, error) {
	var a C.struct_shim_device_attr
	if err := rcErr(C.shim_query_device(ctxp(ctx), &a)); err != nil {
		return DeviceAttr{}, err
	}
	return DeviceAttr{
		FWVer:    C.GoString(&a.fw_ver[0]),
		NodeGUID: uint64(a.node_guid), SysImageGUID: uint64(a.sys_image_guid),
		MaxMRSize: uint64(a.max_mr_size),
		VendorID:  uint32(a.vendor_id), VendorPartID: uint32(a.vendor_part_id), HWVer: uint32(a.hw_ver),
		MaxQP: int(a.max_qp), MaxQPWR: int(a.max_qp_wr), MaxSGE: int(a.max_sge),
		MaxCQ: int(a.max_cq), MaxCQE: int(a.max_cqe), MaxMR: int(a.max_mr), MaxPD: int(a.max_pd),
		MaxQPRdAtom: int(a.max_qp_rd_atom), MaxSRQ: int(a.max_srq), MaxSRQWR: int(a.max_srq_wr),
		MaxSRQSGE: int(a.max_srq_sge), PhysPortCnt: int(a.phys_port_cnt),
	}, nil
}

// PortAttr mirrors the useful part of struct ibv_port_attr.
type PortAttr struct {
	State, MaxMTU, ActiveMTU, GIDTblLen int
	MaxMsgSz                            uint32
	LID                                 uint16
	LinkLayer, ActiveSpeed, ActiveWidth uint8
	PhysState                           uint8
}

// QueryPort calls ibv_query_port.
func QueryPort(ctx uintptr, port int) (PortAttr, error) {
	var a C.struct_shim_port_attr
	if err := rcErr(C.shim_query_port(ctxp(ctx), C.int(port), &a)); err != nil {
		return PortAttr{}, err
	}
	return PortAttr{
		State: int(a.state), MaxMTU: int(a.max_mtu), ActiveMTU: int(a.active_mtu),
		GIDTblLen: int(a.gid_tbl_len), MaxMsgSz: uint32(a.max_msg_sz), LID: uint16(a.lid),
		LinkLayer: uint8(a.link_layer), ActiveSpeed: uint8(a.active_speed),
		ActiveWidth: uint8(a.active_width), PhysState: uint8(a.phys_state),
	}, nil
}

// GIDEntry mirrors struct ibv_gid_entry.
type GIDEntry struct {
	GID         [16]byte
	Index       uint32
	Port        uint32
	Type        uint32 // enum ibv_gid_type
	NdevIfindex uint32
}

// QueryGIDTable calls ibv_query_gid_table for up to max valid entries of all ports.
func QueryGIDTable(ctx uintptr, max int) ([]GIDEntry, error) {
	if max <= 0 {
		return nil, syscall.EINVAL
	}
	arr := (*C.struct_ibv_gid_entry)(C.calloc(C.size_t(max), C.sizeof_struct_ibv_gid_entry))
	if arr == nil {
		return nil, syscall.ENOMEM
	}
	defer C.free(unsafe.Pointer(arr))
	n := C.shim_query_gid_table(ctxp(ctx), arr, C.int(max))
	if n < 0 {
		return nil, syscall.Errno(-n)
	}
	src := unsafe.Slice(arr, int(n))
	out := make([]GIDEntry, len(src))
	for i, e := range src {
		copy(out[i].GID[:], C.GoBytes(unsafe.Pointer(&e.gid), 16))
		out[i].Index = uint32(e.gid_index)
		out[i].Port = uint32(e.port_num)
		out[i].Type = uint32(e.gid_type)
		out[i].NdevIfindex = uint32(e.ndev_ifindex)
	}
	return out, nil
}

// QueryGID calls ibv_query_gid.
func QueryGID(ctx uintptr, port, index int) ([16]byte, error) {
	var g [16]byte
	err := rcErr(C.shim_query_gid(ctxp(ctx), C.int(port), C.int(index), (*C.uint8_t)(unsafe.Pointer(&g[0]))))
	return g, err
}

// ---------- PD, memory, MR ----------

// AllocPD calls ibv_alloc_pd.
func AllocPD(ctx uintptr) (uintptr, error) {
	pd, err := C.ibv_alloc_pd(ctxp(ctx))
	if pd == nil {
		return 0, nilErr(err, syscall.ENOMEM)
	}
	return handle(unsafe.Pointer(pd)), nil
}

// DeallocPD calls ibv_dealloc_pd.
func DeallocPD(pd uintptr) error {
	rc, err := C.ibv_dealloc_pd((*C.struct_ibv_pd)(ptr(pd)))
	return ibvErr(rc, err)
}

// Malloc returns size zeroed bytes of C memory aligned to align (a power of two).
func Malloc(size, align int) (uintptr, error) {
	if size <= 0 || align <= 0 || align&(align-1) != 0 {
		return 0, syscall.EINVAL
	}
	var p unsafe.Pointer
	if rc := C.posix_memalign(&p, C.size_t(align), C.size_t(size)); rc != 0 {
		return 0, syscall.Errno(rc)
	}
	C.memset(p, 0, C.size_t(size))
	return handle(p), nil
}

// Free releases memory from Malloc.
func Free(p uintptr) { C.free(ptr(p)) }

// Bytes is a Go view of C memory; valid until Free.
func Bytes(p uintptr, n int) []byte { return unsafe.Slice((*byte)(ptr(p)), n) }

// RegMR calls ibv_reg_mr.
func RegMR(pd, addr uintptr, length int, access int) (mr uintptr, lkey, rkey uint32, err error) {
	m, e := C.ibv_reg_mr((*C.struct_ibv_pd)(ptr(pd)), ptr(addr), C.size_t(length), C.int(access))
	if m == nil {
		return 0, 0, 0, nilErr(e, syscall.EINVAL)
	}
	return handle(unsafe.Pointer(m)), uint32(m.lkey), uint32(m.rkey), nil
}

// DeregMR calls ibv_dereg_mr.
func DeregMR(mr uintptr) error {
	rc, err := C.ibv_dereg_mr((*C.struct_ibv_mr)(ptr(mr)))
	return ibvErr(rc, err)
}

// ---------- completion channels and CQs ----------

// CreateCompChannel calls ibv_create_comp_channel and sets its fd non-blocking.
func CreateCompChannel(ctx uintptr) (ch uintptr, fd int, err error) {
	c, e := C.ibv_create_comp_channel(ctxp(ctx))
	if c == nil {
		return 0, -1, nilErr(e, syscall.ENOMEM)
	}
	if err := SetNonblock(int(c.fd)); err != nil {
		C.ibv_destroy_comp_channel(c)
		return 0, -1, err
	}
	return handle(unsafe.Pointer(c)), int(c.fd), nil
}

// DestroyCompChannel calls ibv_destroy_comp_channel.
func DestroyCompChannel(ch uintptr) error {
	rc, err := C.ibv_destroy_comp_channel((*C.struct_ibv_comp_channel)(ptr(ch)))
	return ibvErr(rc, err)
}

// CreateCQ calls ibv_create_cq; ch may be 0. It returns the actual size.
func CreateCQ(ctx uintptr, cqe int, ch uintptr, vector int) (cq uintptr, size int, err error) {
	c, e := C.ibv_create_cq(ctxp(ctx), C.int(cqe), nil, (*C.struct_ibv_comp_channel)(ptr(ch)), C.int(vector))
	if c == nil {
		return 0, 0, nilErr(e, syscall.EINVAL)
	}
	return handle(unsafe.Pointer(c)), int(c.cqe), nil
}

// DestroyCQ calls ibv_destroy_cq.
func DestroyCQ(cq uintptr) error {
	rc, err := C.ibv_destroy_cq((*C.struct_ibv_cq)(ptr(cq)))
	return ibvErr(rc, err)
}

// ReqNotifyCQ calls ibv_req_notify_cq.
func ReqNotifyCQ(cq uintptr, solicitedOnly bool) error {
	s := C.int(0)
	if solicitedOnly {
		s = 1
	}
	rc, err := C.ibv_req_notify_cq((*C.struct_ibv_cq)(ptr(cq)), s)
	return ibvErr(rc, err)
}

// GetCQEvent calls ibv_get_cq_event; with a non-blocking fd it returns EAGAIN when none is ready.
func GetCQEvent(ch uintptr) (uintptr, error) {
	var cq C.uintptr_t
	if err := rcErr(C.shim_get_cq_event((*C.struct_ibv_comp_channel)(ptr(ch)), &cq)); err != nil {
		return 0, err
	}
	return uintptr(cq), nil
}

// AckCQEvents calls ibv_ack_cq_events.
func AckCQEvents(cq uintptr, n int) {
	if n > 0 {
		C.ibv_ack_cq_events((*C.struct_ibv_cq)(ptr(cq)), C.uint(n))
	}
}

// WC mirrors struct shim_wc byte for byte; WCArray.View returns slices of it over C memory.
type WC struct {
	WRID         uint64
	Status       int32
	Opcode       int32
	VendorErr    uint32
	ByteLen      uint32
	Imm          uint32
	QPNum        uint32
	SrcQP        uint32
	WCFlags      uint32
	PkeyIndex    uint16
	SLID         uint16
	SL           uint8
	DLIDPathBits uint8
	_            [6]uint8
}

// WCArray is a reused C array of work completions.
type WCArray struct {
	p    *C.struct_shim_wc_array
	view []WC
}

// NewWCArray allocates room for n completions.
func NewWCArray(n int) (*WCArray, error) {
	p, err := C.shim_wc_array_new(C.int(n))
	if p == nil {
		return nil, nilErr(err, syscall.ENOMEM)
	}
	return &WCArray{p: p, view: unsafe.Slice((*WC)(unsafe.Pointer(p.wc)), n)}, nil
}

// Cap is the array's capacity.
func (a *WCArray) Cap() int { return len(a.view) }

// Free releases the array.
func (a *WCArray) Free() {
	if a != nil && a.p != nil {
		C.shim_wc_array_free(a.p)
		a.p, a.view = nil, nil
	}
}

// Poll polls up to n completions from cq in one crossing; View()[:got] holds them.
func (a *WCArray) Poll(cq uintptr, n int) (int, error) {
	got := C.shim_poll_cq((*C.struct_ibv_cq)(ptr(cq)), a.p, C.int(n))
	if got < 0 {
		return 0, syscall.Errno(-got)
	}
	return int(got), nil
}

// View is the array's contents as Go values living in C memory.
func (a *WCArray) View() []WC { return a.view }

// Spin mirrors struct shim_spin: the inputs and outputs of WCArray.Spin, in
// C memory next to the array (one block per array).
type Spin struct {
	WatchAddr uint64 // 0, or the address of a byte the wait also needs
	SendN     int32  // send WRs of the batch to post (0: none)
	RecvN     int32  // receive WRs of the batch to post first (0: none)
	WantSend  int32  // send-queue completions to wait for
	WantRecv  int32  // receive completions to wait for
	Spins     int32  // empty polling rounds before returning
	WatchWant uint8  // the value the watched byte must show
	_         [3]uint8
	NWC       int32  // completions in View()[:NWC]
	GotSend   int32  // of which send-queue completions
	GotRecv   int32  // and receive completions
	Watched   int32  // 1: the watched byte showed WatchWant
	Done      int32  // 1: the wait was satisfied
	Stage     int32  // on a post failure: 1 receive post, 2 send post
	Bad       int32  // and the index of the first WR not posted
	Rounds    int32  // polling rounds made
	Limit     int32  // input: at most this many completions (0: the array's cap)
	WantAny   int32  // input: and at least this many completions of any kind
	MarkAddr  uint64 // input, post-after mode: 0, or a byte to set just before the post
	Stamp     uint64 // output, post-after mode: the clock just before the post
	SendAfter int32  // input: 1 posts the send WRs once the wait is met (not before it)
	StampTSC  int32  // input: 1 stamps with the TSC (x86), else CLOCK_MONOTONIC ns
	Sent      int32  // output: 1 when the send WRs were posted
	MarkVal   uint8  // input: the value stored at MarkAddr
	_         [3]uint8
}

// SpinBlock is the array's shim_spin block (C memory): fill the inputs,
// call Spin, read the outputs.
func (a *WCArray) SpinBlock() *Spin { return (*Spin)(unsafe.Pointer(a.p.spin)) }

// Spin calls shim_spin once (one crossing): post SpinBlock().RecvN receive
// WRs of rb and SendN send WRs of sb on qp, then poll cq (and cq2 when
// non-zero) into this array until the wait SpinBlock describes is satisfied,
// a completion fails, the array is full or the spin budget is spent. sb and
// rb may be nil when nothing of theirs is posted. All arguments cross as
// integers (no cgo pointer check). It returns SpinBlock().NWC or the errno of
// a failed post or poll.
func (a *WCArray) Spin(qp uintptr, sb *SendBatch, rb *RecvBatch, cq, cq2 uintptr) (int, error) {
	var sbp, rbp uintptr
	if sb != nil {
		sbp = uintptr(unsafe.Pointer(sb.p))
	}
	if rb != nil {
		rbp = uintptr(unsafe.Pointer(rb.p))
	}
	rc := C.shim_spin(C.uintptr_t(qp), C.uintptr_t(sbp), C.uintptr_t(rbp), C.uintptr_t(cq), C.uintptr_t(cq2),
		C.uintptr_t(uintptr(unsafe.Pointer(a.p))))
	if rc < 0 {
		return 0, syscall.Errno(-rc)
	}
	return int(rc), nil
}

// ---------- WR batches ----------

// SGE mirrors struct shim_sge.
type SGE struct {
	Addr   uint64
	Length uint32
	LKey   uint32
}

// SendWR mirrors struct shim_send_wr.
type SendWR struct {
	WRID       uint64
	RemoteAddr uint64
	RKey       uint32
	Imm        uint32
	Opcode     int32
	Flags      int32
	NumSGE     int32
	SGEOff     int32
}

// RecvWR mirrors struct shim_recv_wr.
type RecvWR struct {
	WRID   uint64
	NumSGE int32
	SGEOff int32
}

// SendBatch is a reused C array of send WRs and their SGEs; fill WR and SGE, then Post.
type SendBatch struct {
	p   *C.struct_shim_send_batch
	WR  []SendWR
	SGE []SGE
}

// NewSendBatch allocates a batch of up to n WRs sharing sges SGEs.
func NewSendBatch(n, sges int) (*SendBatch, error) {
	p, err := C.shim_send_batch_new(C.int(n), C.int(sges))
	if p == nil {
		return nil, nilErr(err, syscall.ENOMEM)
	}
	return &SendBatch{
		p:   p,
		WR:  unsafe.Slice((*SendWR)(unsafe.Pointer(p.wr)), n),
		SGE: unsafe.Slice((*SGE)(unsafe.Pointer(p.sge)), sges),
	}, nil
}

// Free releases the batch.
func (b *SendBatch) Free() {
	if b != nil && b.p != nil {
		C.shim_send_batch_free(b.p)
		b.p, b.WR, b.SGE = nil, nil, nil
	}
}

// Post links WR[:n] into one chain and calls ibv_post_send once. It returns how
// many WRs were accepted (n on success, the bad WR's index on failure).
func (b *SendBatch) Post(qp uintptr, n int) (int, error) {
	rc := C.shim_post_send((*C.struct_ibv_qp)(ptr(qp)), b.p, C.int(n))
	return int(b.p.bad), rcErr(rc)
}

// RecvBatch is a reused C array of receive WRs and their SGEs.
type RecvBatch struct {
	p   *C.struct_shim_recv_batch
	WR  []RecvWR
	SGE []SGE
}

// NewRecvBatch allocates a batch of up to n receive WRs sharing sges SGEs.
func NewRecvBatch(n, sges int) (*RecvBatch, error) {
	p, err := C.shim_recv_batch_new(C.int(n), C.int(sges))
	if p == nil {
		return nil, nilErr(err, syscall.ENOMEM)
	}
	return &RecvBatch{
		p:   p,
		WR:  unsafe.Slice((*RecvWR)(unsafe.Pointer(p.wr)), n),
		SGE: unsafe.Slice((*SGE)(unsafe.Pointer(p.sge)), sges),
	}, nil
}

// Free releases the batch.
func (b *RecvBatch) Free() {
	if b != nil && b.p != nil {
		C.shim_recv_batch_free(b.p)
		b.p, b.WR, b.SGE = nil, nil, nil
	}
}

// Post calls ibv_post_recv once for WR[:n].
func (b *RecvBatch) Post(qp uintptr, n int) (int, error) {
	rc := C.shim_post_recv((*C.struct_ibv_qp)(ptr(qp)), b.p, C.int(n))
	return int(b.p.bad), rcErr(rc)
}

// PostSRQ calls ibv_post_srq_recv once for WR[:n].
func (b *RecvBatch) PostSRQ(srq uintptr, n int) (int, error) {
	rc := C.shim_post_srq_recv((*C.struct_ibv_srq)(ptr(srq)), b.p, C.int(n))
	return int(b.p.bad), rcErr(rc)
}

// ---------- QPs ----------

// QPInit describes a QP to create; Create* write the actual caps back.
type QPInit struct {
	SendCQ, RecvCQ, SRQ               uintptr
	MaxSendWR, MaxRecvWR              uint32
	MaxSendSGE, MaxRecvSGE, MaxInline uint32
	Type                              int
	SigAll                            bool
}

func (in *QPInit) c() C.struct_shim_qp_init {
	var c C.struct_shim_qp_init
	c.send_cq = (*C.struct_ibv_cq)(ptr(in.SendCQ))
	c.recv_cq = (*C.struct_ibv_cq)(ptr(in.RecvCQ))
	c.srq = (*C.struct_ibv_srq)(ptr(in.SRQ))
	c.max_send_wr = C.uint32_t(in.MaxSendWR)
	c.max_recv_wr = C.uint32_t(in.MaxRecvWR)
	c.max_send_sge = C.uint32_t(in.MaxSendSGE)
	c.max_recv_sge = C.uint32_t(in.MaxRecvSGE)
	c.max_inline_data = C.uint32_t(in.MaxInline)
	c.qp_type = C.int32_t(in.Type)
	if in.SigAll {
		c.sq_sig_all = 1
	}
	return c
}

func (in *QPInit) readCaps(c *C.struct_shim_qp_init) {
	in.MaxSendWR = uint32(c.max_send_wr)
	in.MaxRecvWR = uint32(c.max_recv_wr)
	in.MaxSendSGE = uint32(c.max_send_sge)
	in.MaxRecvSGE = uint32(c.max_recv_sge)
	in.MaxInline = uint32(c.max_inline_data)
}

// CreateQP calls ibv_create_qp.
func CreateQP(pd uintptr, in *QPInit) (qp uintptr, qpn uint32, err error) {
	c := in.c()
	q, e := C.shim_create_qp((*C.struct_ibv_pd)(ptr(pd)), &c)
	if q == nil {
		return 0, 0, nilErr(e, syscall.EINVAL)
	}
	in.readCaps(&c)
	return handle(unsafe.Pointer(q)), uint32(q.qp_num), nil
}

// DestroyQP calls ibv_destroy_qp.
func DestroyQP(qp uintptr) error {
	rc, err := C.ibv_destroy_qp((*C.struct_ibv_qp)(ptr(qp)))
	return ibvErr(rc, err)
}

// QPParams mirrors struct shim_qp_params (the attributes of INIT, RTR and RTS).
type QPParams struct {
	DGID                              [16]byte
	DestQPNum, RQPSN, SQPSN           uint32
	Port, PathMTU, IsGlobal, HopLimit int
	SGIDIndex, TrafficClass           int
	FlowLabel, SL, DLID               int
	MinRNRTimer, Timeout, RetryCnt    int
	RNRRetry, MaxRdAtomic             int
	MaxDestRdAtomic, Access, PKeyIdx  int
}

func (p *QPParams) c() C.struct_shim_qp_params {
	var c C.struct_shim_qp_params
	for i, b := range p.DGID {
		c.dgid[i] = C.uint8_t(b)
	}
	c.dest_qp_num = C.uint32_t(p.DestQPNum)
	c.rq_psn = C.uint32_t(p.RQPSN)
	c.sq_psn = C.uint32_t(p.SQPSN)
	c.port_num = C.int32_t(p.Port)
	c.path_mtu = C.int32_t(p.PathMTU)
	c.is_global = C.int32_t(p.IsGlobal)
	c.hop_limit = C.int32_t(p.HopLimit)
	c.sgid_index = C.int32_t(p.SGIDIndex)
	c.traffic_class = C.int32_t(p.TrafficClass)
	c.flow_label = C.int32_t(p.FlowLabel)
	c.sl = C.int32_t(p.SL)
	c.dlid = C.int32_t(p.DLID)
	c.min_rnr_timer = C.int32_t(p.MinRNRTimer)
	c.timeout = C.int32_t(p.Timeout)
	c.retry_cnt = C.int32_t(p.RetryCnt)
	c.rnr_retry = C.int32_t(p.RNRRetry)
	c.max_rd_atomic = C.int32_t(p.MaxRdAtomic)
	c.max_dest_rd_atomic = C.int32_t(p.MaxDestRdAtomic)
	c.access_flags = C.int32_t(p.Access)
	c.pkey_index = C.int32_t(p.PKeyIdx)
	return c
}

func qpp(h uintptr) *C.struct_ibv_qp { return (*C.struct_ibv_qp)(ptr(h)) }

// QPToInit moves qp RESET→INIT (port, pkey index, access flags).
func QPToInit(qp uintptr, p *QPParams) error {
	c := p.c()
	return rcErr(C.shim_qp_to_init(qpp(qp), &c))
}

// QPToRTR moves qp INIT→RTR.
func QPToRTR(qp uintptr, p *QPParams) error {
	c := p.c()
	return rcErr(C.shim_qp_to_rtr(qpp(qp), &c))
}

// QPToRTS moves qp RTR→RTS.
func QPToRTS(qp uintptr, p *QPParams) error {
	c := p.c()
	return rcErr(C.shim_qp_to_rts(qpp(qp), &c))
}

// QPToErr moves qp to ERR.
func QPToErr(qp uintptr) error { return rcErr(C.shim_qp_to_err(qpp(qp))) }

// QPState returns the QP's state (enum ibv_qp_state).
func QPState(qp uintptr) (int, error) {
	rc := C.shim_qp_state(qpp(qp))
	if rc < 0 {
		return 0, syscall.Errno(-rc)
	}
	return int(rc), nil
}

// ---------- SRQ ----------

// CreateSRQ calls ibv_create_srq and returns the actual max_wr.
func CreateSRQ(pd uintptr, maxWR, maxSGE, limit int) (uintptr, int, error) {
	var a C.struct_ibv_srq_init_attr
	a.attr.max_wr = C.uint32_t(maxWR)
	a.attr.max_sge = C.uint32_t(maxSGE)
	a.attr.srq_limit = C.uint32_t(limit)
	s, err := C.ibv_create_srq((*C.struct_ibv_pd)(ptr(pd)), &a)
	if s == nil {
		return 0, 0, nilErr(err, syscall.EINVAL)
	}
	return handle(unsafe.Pointer(s)), int(a.attr.max_wr), nil
}

// ArmSRQ sets the SRQ limit (ibv_modify_srq IBV_SRQ_LIMIT).
func ArmSRQ(srq uintptr, limit int) error {
	var a C.struct_ibv_srq_attr
	a.srq_limit = C.uint32_t(limit)
	rc, err := C.ibv_modify_srq((*C.struct_ibv_srq)(ptr(srq)), &a, C.IBV_SRQ_LIMIT)
	return ibvErr(rc, err)
}

// DestroySRQ calls ibv_destroy_srq.
func DestroySRQ(srq uintptr) error {
	rc, err := C.ibv_destroy_srq((*C.struct_ibv_srq)(ptr(srq)))
	return ibvErr(rc, err)
}

// ---------- async events ----------

// AsyncEvent is a copied (and already acknowledged) ibv_async_event.
type AsyncEvent struct {
	Type, Port  int
	QPNum       uint32
	QP, CQ, SRQ uintptr
}

// GetAsyncEvent gets and acks one async event; EAGAIN when none is ready.
func GetAsyncEvent(ctx uintptr) (AsyncEvent, error) {
	var e C.struct_shim_async_event
	if err := rcErr(C.shim_get_async_event(ctxp(ctx), &e)); err != nil {
		return AsyncEvent{}, err
	}
	return AsyncEvent{Type: int(e._type), Port: int(e.port), QPNum: uint32(e.qp_num),
		QP: uintptr(e.qp), CQ: uintptr(e.cq), SRQ: uintptr(e.srq)}, nil
}

// ---------- strings ----------

// WCStatusStr is ibv_wc_status_str.
func WCStatusStr(s int) string { return C.GoString(C.ibv_wc_status_str(uint32(s))) }

// EventTypeStr is ibv_event_type_str.
func EventTypeStr(t int) string { return C.GoString(C.ibv_event_type_str(uint32(t))) }

// CMEventStr is rdma_event_str.
func CMEventStr(t int) string { return C.GoString(C.rdma_event_str(uint32(t))) }

// PortStateStr is ibv_port_state_str.
func PortStateStr(s int) string { return C.GoString(C.ibv_port_state_str(uint32(s))) }

// ---------- rdma_cm ----------

// CreateEventChannel calls rdma_create_event_channel and sets its fd non-blocking.
func CreateEventChannel() (uintptr, int, error) {
	ch, err := C.rdma_create_event_channel()
	if ch == nil {
		return 0, -1, nilErr(err, syscall.ENODEV)
	}
	if err := SetNonblock(int(ch.fd)); err != nil {
		C.rdma_destroy_event_channel(ch)
		return 0, -1, err
	}
	return handle(unsafe.Pointer(ch)), int(ch.fd), nil
}

// DestroyEventChannel calls rdma_destroy_event_channel.
func DestroyEventChannel(ch uintptr) {
	C.rdma_destroy_event_channel((*C.struct_rdma_event_channel)(ptr(ch)))
}

func idp(h uintptr) *C.struct_rdma_cm_id { return (*C.struct_rdma_cm_id)(ptr(h)) }

// CreateID calls rdma_create_id with port space ps (e.g. RDMA_PS_TCP).
func CreateID(ch uintptr, ps int) (uintptr, error) {
	var id *C.struct_rdma_cm_id
	rc, err := C.rdma_create_id((*C.struct_rdma_event_channel)(ptr(ch)), &id, nil, uint32(ps))
	if rc != 0 {
		return 0, ibvErr(rc, err)
	}
	return handle(unsafe.Pointer(id)), nil
}

// DestroyID calls rdma_destroy_id.
func DestroyID(id uintptr) error {
	rc, err := C.rdma_destroy_id(idp(id))
	return ibvErr(rc, err)
}

// IDVerbs is id->verbs (0 until the id is bound to a device).
func IDVerbs(id uintptr) uintptr { return handle(unsafe.Pointer(idp(id).verbs)) }

// IDPort is id->port_num.
func IDPort(id uintptr) int { return int(idp(id).port_num) }

// BindAddr calls rdma_bind_addr; family is AF_INET or AF_INET6, ip is 4 or 16 bytes.
func BindAddr(id uintptr, family int, ip [16]byte, port int) error {
	return rcErr(C.shim_cm_bind(idp(id), C.int(family), (*C.uint8_t)(unsafe.Pointer(&ip[0])), C.int(port)))
}

// ResolveAddr calls rdma_resolve_addr; sfamily 0 means no source address.
func ResolveAddr(id uintptr, sfamily int, sip [16]byte, sport int, dfamily int, dip [16]byte, dport int, timeoutMS int) error {
	return rcErr(C.shim_cm_resolve_addr(idp(id), C.int(sfamily), (*C.uint8_t)(unsafe.Pointer(&sip[0])), C.int(sport),
		C.int(dfamily), (*C.uint8_t)(unsafe.Pointer(&dip[0])), C.int(dport), C.int(timeoutMS)))
}

// LocalAddr calls rdma_get_local_addr.
func LocalAddr(id uintptr) (family int, ip [16]byte, port int, err error) {
	var fam, prt C.int
	err = rcErr(C.shim_cm_local_addr(idp(id), (*C.uint8_t)(unsafe.Pointer(&ip[0])), &fam, &prt))
	return int(fam), ip, int(prt), err
}

// ResolveRoute calls rdma_resolve_route.
func ResolveRoute(id uintptr, timeoutMS int) error {
	rc, err := C.rdma_resolve_route(idp(id), C.int(timeoutMS))
	return ibvErr(rc, err)
}

// Listen calls rdma_listen.
func Listen(id uintptr, backlog int) error {
	rc, err := C.rdma_listen(idp(id), C.int(backlog))
	return ibvErr(rc, err)
}

// ConnParam mirrors struct rdma_conn_param.
type ConnParam struct {
	ResponderResources, InitiatorDepth uint8
	FlowControl, RetryCount, RNRRetry  uint8
	PrivateData                        []byte // at most 196 bytes
}

func (p *ConnParam) c() (C.struct_shim_conn_param, error) {
	var c C.struct_shim_conn_param
	if len(p.PrivateData) > len(c.private_data) {
		return c, syscall.EINVAL
	}
	c.responder_resources = C.uint8_t(p.ResponderResources)
	c.initiator_depth = C.uint8_t(p.InitiatorDepth)
	c.flow_control = C.uint8_t(p.FlowControl)
	c.retry_count = C.uint8_t(p.RetryCount)
	c.rnr_retry_count = C.uint8_t(p.RNRRetry)
	c.private_data_len = C.uint8_t(len(p.PrivateData))
	for i, b := range p.PrivateData {
		c.private_data[i] = C.uint8_t(b)
	}
	return c, nil
}

// Connect calls rdma_connect.
func Connect(id uintptr, p *ConnParam) error {
	c, err := p.c()
	if err != nil {
		return err
	}
	return rcErr(C.shim_cm_connect(idp(id), &c))
}

// Accept calls rdma_accept.
func Accept(id uintptr, p *ConnParam) error {
	c, err := p.c()
	if err != nil {
		return err
	}
	return rcErr(C.shim_cm_accept(idp(id), &c))
}

// Reject calls rdma_reject.
func Reject(id uintptr, data []byte) error {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = C.CBytes(data)
		defer C.free(p)
	}
	rc, err := C.rdma_reject(idp(id), p, C.uint8_t(len(data)))
	return ibvErr(rc, err)
}

// Disconnect calls rdma_disconnect.
func Disconnect(id uintptr) error {
	rc, err := C.rdma_disconnect(idp(id))
	return ibvErr(rc, err)
}

// MigrateID calls rdma_migrate_id.
func MigrateID(id, ch uintptr) error {
	rc, err := C.rdma_migrate_id(idp(id), (*C.struct_rdma_event_channel)(ptr(ch)))
	return ibvErr(rc, err)
}

// RDMACreateQP calls rdma_create_qp on id with the given PD and init attributes.
func RDMACreateQP(id, pd uintptr, in *QPInit) (qp uintptr, qpn uint32, err error) {
	c := in.c()
	if err := rcErr(C.shim_rdma_create_qp(idp(id), (*C.struct_ibv_pd)(ptr(pd)), &c)); err != nil {
		return 0, 0, err
	}
	in.readCaps(&c)
	q := idp(id).qp
	return handle(unsafe.Pointer(q)), uint32(q.qp_num), nil
}

// RDMADestroyQP calls rdma_destroy_qp.
func RDMADestroyQP(id uintptr) { C.rdma_destroy_qp(idp(id)) }

// CMEvent is a copy of an rdma_cm_event; Event must be passed to AckCMEvent.
type CMEvent struct {
	Event, ID, ListenID, Verbs uintptr
	Type, Status               int
	PrivateData                [256]byte
	PrivateDataLen             int
}

// GetCMEvent calls rdma_get_cm_event; EAGAIN when none is ready.
func GetCMEvent(ch uintptr) (CMEvent, error) {
	var e C.struct_shim_cm_event
	if err := rcErr(C.shim_cm_get_event((*C.struct_rdma_event_channel)(ptr(ch)), &e)); err != nil {
		return CMEvent{}, err
	}
	ev := CMEvent{Event: uintptr(e.event), ID: uintptr(e.id), ListenID: uintptr(e.listen_id),
		Verbs: uintptr(e.verbs), Type: int(e._type), Status: int(e.status), PrivateDataLen: int(e.private_data_len)}
	for i := 0; i < ev.PrivateDataLen; i++ {
		ev.PrivateData[i] = byte(e.private_data[i])
	}
	return ev, nil
}

// AckCMEvent calls rdma_ack_cm_event.
func AckCMEvent(ev uintptr) error {
	rc, err := C.rdma_ack_cm_event((*C.struct_rdma_cm_event)(ptr(ev)))
	return ibvErr(rc, err)
}
