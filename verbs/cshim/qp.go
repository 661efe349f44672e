//go:build linux && cgo

package cshim

/*
#include <stdlib.h>
#include <string.h>
#include "shim.h"
*/
import "C"
import (
	"syscall"
	"unsafe"
)

// NewSendBatch allocates a batch of up to n WRs sharing sges SGEs.
func NewSendBatch(n, sges int) (*SendBatch, error) {
	p, err := C.shim_send_batch_new(C.int(n), C.int(sges))
	if p == nil {
		return nil, nilErr(err, syscall.ENOMEM)
	}
	return &SendBatch{
		p:   unsafe.Pointer(p),
		WR:  unsafe.Slice((*SendWR)(unsafe.Pointer(p.wr)), n),
		SGE: unsafe.Slice((*SGE)(unsafe.Pointer(p.sge)), sges),
	}, nil
}

// Free releases the batch.
func (b *SendBatch) Free() {
	if b != nil && b.p != nil {
		C.shim_send_batch_free(b.c())
		b.p, b.WR, b.SGE = nil, nil, nil
	}
}

// Post links WR[:n] into one chain and calls ibv_post_send once. It returns how
// many WRs were accepted (n on success, the bad WR's index on failure).
func (b *SendBatch) Post(qp uintptr, n int) (int, error) {
	rc := C.shim_post_send((*C.struct_ibv_qp)(ptr(qp)), b.c(), C.int(n))
	return int(b.c().bad), rcErr(rc)
}

// NewRecvBatch allocates a batch of up to n receive WRs sharing sges SGEs.
func NewRecvBatch(n, sges int) (*RecvBatch, error) {
	p, err := C.shim_recv_batch_new(C.int(n), C.int(sges))
	if p == nil {
		return nil, nilErr(err, syscall.ENOMEM)
	}
	return &RecvBatch{
		p:   unsafe.Pointer(p),
		WR:  unsafe.Slice((*RecvWR)(unsafe.Pointer(p.wr)), n),
		SGE: unsafe.Slice((*SGE)(unsafe.Pointer(p.sge)), sges),
	}, nil
}

// Free releases the batch.
func (b *RecvBatch) Free() {
	if b != nil && b.p != nil {
		C.shim_recv_batch_free(b.c())
		b.p, b.WR, b.SGE = nil, nil, nil
	}
}

// Post calls ibv_post_recv once for WR[:n].
func (b *RecvBatch) Post(qp uintptr, n int) (int, error) {
	rc := C.shim_post_recv((*C.struct_ibv_qp)(ptr(qp)), b.c(), C.int(n))
	return int(b.c().bad), rcErr(rc)
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

func (b *SendBatch) c() *C.struct_shim_send_batch { return (*C.struct_shim_send_batch)(b.p) }

func (b *RecvBatch) c() *C.struct_shim_recv_batch { return (*C.struct_shim_recv_batch)(b.p) }
