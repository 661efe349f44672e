// Package dispatcher is the rdma stack's RDMADispatcher (after Ceph's
// RDMADispatcher): it owns the device context, protection domain, the shared
// TX and RX completion queues with their completion channels, the SRQ, and
// the TX/RX memory pools of one stack, and runs the single polling goroutine
// that drains both CQs.
//
// The poller (locked to its OS thread) busy-polls up to 32 completions per
// call while they flow and for ms_async_rdma_polling_us after, then re-arms
// both CQs, polls once more and sleeps in poll(2) on the two completion-channel
// fds, the async-event fd and an eventfd used to wake it (never inside a C
// call). While idle-polling it reads the clock and yields its thread only
// every few polls (a clock read traps on VMs without a vDSO clocksource; a
// Gosched on a locked thread costs two futex wake-ups). A connection that
// posts a send wakes a sleeping poller at once (QPHandle.AddInflight), so
// the completion and the reply that usually follows are busy-polled rather
// than waited for through the completion-channel interrupt. RX completions are grouped per connection and handed over with a
// per-connection receive sequence number; TX completions return chunks to the
// TX pool and wake connections waiting for memory; failed completions and
// fatal async events fault the connection they belong to; retired QPs are
// moved to ERR, drained with a beacon send and destroyed only once the beacon
// completed and both CQs were polled empty after it.
//
// With ms_async_rdma_polling_mode = worker the stack's workers each get a
// CQSet (NewCQSet): a TX/RX CQ pair and completion channels polled by the
// worker's event centre (CQSet.Poll/Arm, a netstack Poller), with the same
// hand-over code; QPs created on it (CreateQPOn) complete only there, so
// that centre is their entries' one poller, and posting on them kicks no
// dispatcher. The dispatcher goroutine keeps async events and reaping.
//
// Files: dispatcher.go (options, Open, Start, Close), qp.go (the QP table:
// registration, handles, in-flight accounting, retirement requests, TX
// space waiters), poll.go (the polling loop and the TX/RX completion
// hand-over with receive sequencing), cqset.go (a worker's CQ pair),
// cqroom.go (sizing each CQ pair for its QPs, growing it as QPs are
// added), rxpost.go (posting receive buffers to the SRQ or a QP's RQ),
// reap.go (moving retired QPs to ERR, the beacon, destruction), async.go
// (device async events), counters.go (counters and Stats).
//
// Owners: the poller goroutine alone owns the per-entry receive sequence,
// RX batches and TX completion counts, and calls connections back; the QP
// table, retirement list and TX-space waiters are under Dispatcher.mu
// (taken by the poller and by connections, never while calling a Conn);
// receive posting is under the RX post lock; in-flight counts and RX
// deficits are atomics. Lock order: a connection's own locks, then
// Dispatcher.mu or the RX post lock, then the pools'. A callback must not
// wait for a lock that a connection's sender holds (see Conn).
//
// It logs only through Options.Logger (the stack passes its Config's).
//
// dispatcher must not: know the socket or handshake layers (it calls
// connections back through the Conn interface only), block in C, call a Conn
// back while holding its own locks, or allocate per completion.
package dispatcher
