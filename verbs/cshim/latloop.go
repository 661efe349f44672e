//go:build linux && cgo

package cshim

/*
#include <stdlib.h>
#include "latloop.h"
*/
import "C"
import (
	"syscall"
	"unsafe"
)

// Lat is a latency run kept in C memory (struct shim_lat): its settings,
// its loop state across calls and the post stamps of its sends.
type Lat struct {
	p      *C.struct_shim_lat
	stamps []uint64
}

// NewLat allocates a run of up to n round trips.
func NewLat(n int) (*Lat, error) {
	p, err := C.shim_lat_new(C.int(n))
	if p == nil {
		return nil, nilErr(err, syscall.ENOMEM)
	}
	return &Lat{p: p, stamps: unsafe.Slice((*uint64)(unsafe.Pointer(p.stamps)), n)}, nil
}

// Free releases the run.
func (l *Lat) Free() {
	if l != nil && l.p != nil {
		C.shim_lat_free(l.p)
		l.p, l.stamps = nil, nil
	}
}

// Cap is the most round trips a run may have.
func (l *Lat) Cap() int { return len(l.stamps) }

// Set configures the run and resets its state (no crossing).
func (l *Lat) Set(c *LatConfig) {
	p := l.p
	p.mode = C.SHIM_LAT_SEND
	if c.Write {
		p.mode = C.SHIM_LAT_WRITE
	}
	p.client = cbool(c.Client)
	p.iters = C.int32_t(c.Iters)
	p.cq_mod = C.int32_t(c.CQMod)
	p.rx_batch = C.int32_t(c.RxBatch)
	p.rx_posted = C.int32_t(c.RxPosted)
	p.stamp_tsc = cbool(c.StampTSC)
	p.mark_addr = C.uint64_t(c.MarkAddr)
	p.watch_addr = C.uint64_t(c.WatchAddr)
	C.shim_lat_reset(p)
}

func cbool(b bool) C.int32_t {
	if b {
		return 1
	}
	return 0
}

// Run calls shim_lat_run once (one crossing) with the time bound maxTicks
// (0: none) and reports what the run has done so far.
func (l *Lat) Run(qp uintptr, sb *SendBatch, rb *RecvBatch, cq uintptr, maxTicks uint64) (LatState, error) {
	var rbp uintptr
	if rb != nil {
		rbp = uintptr(rb.p)
	}
	p := l.p
	p.max_ticks = C.uint64_t(maxTicks)
	rc := C.shim_lat_run(C.uintptr_t(qp), C.uintptr_t(uintptr(sb.p)), C.uintptr_t(rbp), C.uintptr_t(cq),
		C.uintptr_t(uintptr(unsafe.Pointer(p))))
	s := LatState{
		Sends: int(p.scnt), Recvs: int(p.rcnt), Done: p.done != 0, Progress: p.progress != 0,
		TimedOut: p.timed_out != 0, Rounds: int(p.rounds), Stage: int(p.stage),
		WCStatus: int(p.wc_status), WCOpcode: int(p.wc_opcode), WCVendorErr: uint32(p.wc_vendor_err),
	}
	if rc < 0 {
		return s, syscall.Errno(-rc)
	}
	return s, nil
}

// Stamps are the clock readings just before each send's post: the first
// LatState.Sends of them are valid.
func (l *Lat) Stamps() []uint64 { return l.stamps }
