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

// CreateCompChannel calls ibv_create_comp_channel and sets its fd non-blocking.
func CreateCompChannel(ctx uintptr) (ch uintptr, fd int, err error) {
	c, e := C.ibv_create_comp_channel(ctxp(ctx))
	if c == nil {
		return 0, -1, nilErr(e, syscall.ENOMEM)
	}
	return nonblockChannel(unsafe.Pointer(c), c.fd, func() { C.ibv_destroy_comp_channel(c) })
}

// nonblockChannel sets a new event channel's fd non-blocking (its events are
// waited for in epoll, never in a blocking read) and returns the channel's
// handle and fd, or destroys the channel when that fails.
func nonblockChannel(ch unsafe.Pointer, fd C.int, destroy func()) (uintptr, int, error) {
	if err := SetNonblock(int(fd)); err != nil {
		destroy()
		return 0, -1, err
	}
	return handle(ch), int(fd), nil
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

// ResizeCQ calls ibv_resize_cq. It returns the new actual size.
func ResizeCQ(cq uintptr, cqe int) (size int, err error) {
	c := (*C.struct_ibv_cq)(ptr(cq))
	rc, e := C.ibv_resize_cq(c, C.int(cqe))
	if err := ibvErr(rc, e); err != nil {
		return 0, err
	}
	return int(c.cqe), nil
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

// NewWCArray allocates room for n completions.
func NewWCArray(n int) (*WCArray, error) {
	p, err := C.shim_wc_array_new(C.int(n))
	if p == nil {
		return nil, nilErr(err, syscall.ENOMEM)
	}
	return &WCArray{p: unsafe.Pointer(p), spin: (*Spin)(unsafe.Pointer(p.spin)), view: unsafe.Slice((*WC)(unsafe.Pointer(p.wc)), n)}, nil
}

// Free releases the array.
func (a *WCArray) Free() {
	if a != nil && a.p != nil {
		C.shim_wc_array_free(a.c())
		a.p, a.spin, a.view = nil, nil, nil
	}
}

// Poll polls up to n completions from cq in one crossing; View()[:got] holds them.
func (a *WCArray) Poll(cq uintptr, n int) (int, error) {
	got := C.shim_poll_cq((*C.struct_ibv_cq)(ptr(cq)), a.c(), C.int(n))
	if got < 0 {
		return 0, syscall.Errno(-got)
	}
	return int(got), nil
}

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
		sbp = uintptr(sb.p)
	}
	if rb != nil {
		rbp = uintptr(rb.p)
	}
	rc := C.shim_spin(C.uintptr_t(qp), C.uintptr_t(sbp), C.uintptr_t(rbp), C.uintptr_t(cq), C.uintptr_t(cq2),
		C.uintptr_t(uintptr(a.p)))
	if rc < 0 {
		return 0, syscall.Errno(-rc)
	}
	return int(rc), nil
}

func (a *WCArray) c() *C.struct_shim_wc_array { return (*C.struct_shim_wc_array)(a.p) }
