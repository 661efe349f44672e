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

	"golang.org/x/sys/unix"
)

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

// Mmap maps size zeroed bytes (anonymous, private, MAP_POPULATE; with huge
// also MAP_HUGETLB, size then a multiple of the huge page size). The Go GC
// never moves or frees such memory.
func Mmap(size int, huge bool) (uintptr, error) {
	flags := unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_POPULATE
	if huge {
		flags |= unix.MAP_HUGETLB
	}
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, flags)
	if err != nil {
		return 0, err
	}
	return handle(p), nil
}

// Munmap unmaps memory from Mmap.
func Munmap(p uintptr, size int) error { return unix.MunmapPtr(ptr(p), uintptr(size)) }
