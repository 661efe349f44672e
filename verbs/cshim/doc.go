// Package cshim is the only package of asyncmsgr that imports "C". It is a thin
// shim over rdma-core's libibverbs and librdmacm (shim.c, shim.h) and exposes
// them as functions on plain Go types: uintptr handles for C objects, ints and
// errnos, and slices that view C memory.
//
// What it owns:
//   - the C allocations of reusable work-request, scatter/gather and
//     work-completion arrays (SendBatch, RecvBatch, WCArray), which Go fills or
//     reads in place; one cgo crossing posts a whole linked chain or polls a
//     whole batch; shim_spin (WCArray.Spin) posts and then spin-polls in
//     the same crossing, with a budget of empty polling rounds and
//     optionally of time (max_ticks, on the TSC or CLOCK_MONOTONIC) so
//     that it always returns to Go, and takes its handles as integers
//     (nothing for the cgo pointer check to inspect). The Go runtime
//     treats a goroutine in C as one in a blocking syscall: sysmon takes
//     its P when the call spans two of its ticks (20 µs at the shortest)
//     and no other P is idle, or after 10 ms, and preempts it after 10 ms
//     without a reschedule; measured in the Soft-RoCE VM a 10 µs call
//     comes back with its P 98% of the time, a 1 ms call 14-32%. Spinning
//     callers therefore bound each crossing by time well under 20 µs and
//     yield at safe points (cmd/rdmaperf/internal/raw's doc has the
//     numbers); shim_lat_run (Lat.Run, latloop.c) runs a whole perftest
//     latency loop the same way, its state kept in C between calls;
//   - crossing counters (ReadCounters) kept by the C side;
//   - errno capture: every failing call returns a bare syscall.Errno taken in
//     the same cgo call.
//
// What it must not do: keep a Go pointer in C memory (wr_id is an opaque
// integer chosen by the Go side); block in C (every event fd it creates is
// O_NONBLOCK, so get-event functions return EAGAIN when nothing is ready);
// add policy, bookkeeping or typed errors — that is package verbs' job. Only
// package verbs should import it.
//
// Files by object, as in package verbs: device.go (devices, attributes, GIDs,
// async events), mr.go (PD, memory, MR), cq.go (completion channels, CQs,
// WCArray and shim_spin), latloop.go (latency runs), qp.go (WR batches, QPs), srq.go, cm.go (rdma_cm),
// cgo.go (errno helpers, counters, names); types.go holds the plain Go
// mirrors both variants share.
//
// Without cgo (or off Linux) nocgo.go is the whole package: the same
// functions, each failing with EOPNOTSUPP (which verbs reports as
// ErrNotSupported) and touching nothing, so that verbs declares its API
// once, with no build tags of its own.
package cshim
