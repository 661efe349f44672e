// Package verbs is asyncmsgr's typed Go API over RDMA verbs and rdma_cm:
// devices and their ports and GID tables, Context, PD, Buffer (memory the GC
// never moves), MR, CompChannel, CQ, QP (RC; RESET→INIT→RTR→RTS with Ceph's
// attributes by default, see DefaultConnParams), SRQ, async events, and the
// rdma_cm event channel and ids. It is built on verbs/cshim, the only cgo
// package.
//
// Batching: QP.PostSend posts a slice of WorkRequests as one linked chain in
// one cgo crossing (one ibv_post_send); QP.PostRecv and SRQ.PostRecv likewise;
// CQ.Poll fetches up to 64 completions per crossing into a reused C array and
// copies them into the caller's slice without allocating. wr_id is the
// caller's integer; C never holds a Go pointer.
//
// Latency loops: QP.PostSpin runs a whole ping-pong step in one crossing
// (post receives, post a send chain, then busy-poll one or two CQs, and
// optionally a byte of an MR, inside C until the SpinWait is met or its
// spin budget is spent); with SpinWait.SendAfter the send is posted right
// after the wait instead, stamped, so a reply leaves without returning to
// Go. CQ.PollSpin is the poll-only form, and CQ.PollPair polls a send CQ
// and a receive CQ in one crossing, each within its own room (the
// messenger's pollers: one crossing per turn). The budget (rounds, and with
// SpinWait.MaxTicks time) bounds the time a goroutine spends in C, which the
// Go runtime sees as a blocking syscall (see package cshim): the caller
// loops in Go. QP.NewLatLoop goes one level further: a LatLoop runs the
// whole ib_send_lat / ib_write_lat ping-pong in C, round trip after round
// trip, and each Run returns only at its time bound, at the end of the run
// or on a failure, so the runtime meets the loop once per bound instead of
// several times per round trip.
//
// Errors: a failed call returns an *Error naming the verb and wrapping the
// errno captured in the same cgo call, so errors.Is(err, syscall.ENOMEM)
// works; sentinels (ErrNoDevice, ErrPortDown, ErrMemlockTooLow,
// ErrNotSupported, ErrBusy, and net.ErrClosed for closed objects) are matched
// by errors.Is too. A failed work completion's status is a WCStatus, itself
// an error.
//
// Lifetimes: every Close is idempotent and nil-safe. Objects are destroyed
// children first: closing a Context, PD, CQ, CompChannel, SRQ, Buffer,
// CMEventChannel or CMID that still has open children fails with ErrBusy
// (EBUSY) and changes nothing. A runtime cleanup destroys leaked objects as a
// backstop only.
//
// Events: the completion-channel, async-event and rdma_cm fds are
// O_NONBLOCK. Wait on them with epoll, with FDWaiter (the Go netpoller: no
// thread blocks) or with WaitReadable (poll(2)), then
// call CompChannel.GetEvent, Context.GetAsyncEvent or CMEventChannel.GetEvent,
// which return an error with Timeout() true (EAGAIN) when nothing is
// pending; no goroutine ever blocks inside C.
//
// rdma_cm QPs are created with rdma_create_qp (CMID.CreateQP), so librdmacm
// performs the INIT/RTR/RTS transitions during Connect/Accept; PDs and CQs for
// them must come from CMID.Context().
//
// Files by object: device.go (devices, contexts, ports, GIDs, async
// events), mr.go (PD, Buffer, MR), hugepage.go (Region), cq.go (completion
// channels, CQs), qp.go, srq.go, spin.go (PostSpin, PollSpin, PollPair), latloop.go (LatLoop), cm.go
// (rdma_cm), errors.go; node.go is the lifetime bookkeeping all of them share.
//
// Without cgo, or off Linux, the package builds from the same source against
// cshim's no-cgo variant and every entry point returns ErrNotSupported
// (Supported is false); only wait_*.go and rlimit_*.go differ by OS.
//
// This package must not: import "C" (only cshim does), run goroutines of its
// own, keep policy (pools, dispatching, connection logic belong to mempool,
// dispatcher and rdmastack), or block in C.
package verbs
