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

// PostSRQ calls ibv_post_srq_recv once for WR[:n].
func (b *RecvBatch) PostSRQ(srq uintptr, n int) (int, error) {
	rc := C.shim_post_srq_recv((*C.struct_ibv_srq)(ptr(srq)), b.c(), C.int(n))
	return int(b.c().bad), rcErr(rc)
}

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
