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

// Supported: this build calls rdma-core.
const Supported = true

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

// WCStatusStr is ibv_wc_status_str.
func WCStatusStr(s int) string { return C.GoString(C.ibv_wc_status_str(uint32(s))) }

// EventTypeStr is ibv_event_type_str.
func EventTypeStr(t int) string { return C.GoString(C.ibv_event_type_str(uint32(t))) }

// CMEventStr is rdma_event_str.
func CMEventStr(t int) string { return C.GoString(C.rdma_event_str(uint32(t))) }
