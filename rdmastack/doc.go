// Package rdmastack is the "rdma" network stack (after Ceph's RDMAStack):
// RDMAWorkers sharing one dispatcher (device, PD, CQs, SRQ, memory pools,
// polling goroutine), server and connected sockets whose FD is a
// per-connection eventfd, the TCP side-channel handshake in Ceph's exact
// 65-byte ASCII format (the TCP socket then stays open as a liveness
// signal), a byte stream of RDMA SENDs with a zero-length SEND as FIN, the
// send path (copy into TX chunks, one chained post per flush, adaptive send
// merging, backpressure when the TX pool is empty, zero-copy sends of
// buffers that are whole TX chunks, see SetZeroCopy). With
// ms_async_rdma_cm=true connections are set up through rdma_cm instead (one
// event channel per connection, QPs made by rdma_create_qp on the
// dispatcher's PD, DISCONNECTED faults the socket) and use the same data
// path.
//
// # Polling modes (ms_async_rdma_polling_mode)
//
// worker (the default, it wins every messenger benchmark: BENCHMARKS.md):
// each Worker owns a TX/RX CQ pair and its two
// completion channels (dispatcher.CQSet), and every QP of its sockets is
// created on that pair, so a QP completes on exactly one worker and its
// completions have exactly one poller: the worker's event centre goroutine.
// The pair is a netstack Poller on the centre: each loop turn polls up to 32
// TX and 32 RX completions (both CQs in one shim crossing,
// verbs.CQ.PollPair), and an RX completion goes, on that goroutine,
// through receive sequencing to the socket (OnRecv), which queues itself on
// the worker; right after the poll the centre runs the socket's read
// handler directly (EventCenter.FireReadable), so the messenger decodes the
// frame and calls fast dispatch there, and the socket's eventfd is written
// only if it is still readable afterwards (level-triggered readiness stays
// exact for any other waiter: it is synced when conn.mu is let go, after
// the handler's Read took the bytes); a turn whose handlers wrote no
// eventfd skips epoll and the timers (netstack.InlinePoller: they wait for
// the centre's periodic check); consumed receive buffers are reposted 16 at
// a time (at most 1/8 of the receive queue); a reply sent from the
// callback is written directly to the socket (the messenger's direct-write
// path) and posted with ibv_post_send, still on that goroutine. No other
// goroutine, channel, eventfd write or dispatcher wake-up lies between
// (TestWorkerModeRunToCompletion counts them). While completions
// flow, and for ms_async_rdma_polling_us after the last, the centre does
// not sleep; then it acknowledges the channel events, re-arms both CQs
// (ibv_req_notify_cq), polls once more (a completion that arrived before the
// arm would otherwise be missed) and sleeps in epoll with the channel fds
// registered, so an idle worker costs nothing. Keepalive frames open no
// spin window (the messenger calls netstack.EventCenter.Quiet when it sent
// or read only those): an idle connection with keepalives costs a wake-up
// for each keepalive frame and its send completion, no polling between
// (msgr's package doc has the numbers). The dispatcher goroutine
// still owns the device's async events and QP retirement; a retired QP on
// a worker pair is destroyed only once its beacon completed and that
// worker polled both its CQs empty after it.
//
// dispatcher: Ceph's shape. One dispatcher goroutine polls
// the shared CQs and hands completions to sockets from there; a socket
// wakes its worker through its eventfd, and a post wakes a sleeping
// dispatcher (the thread hop per message that worker mode removes). Ceph's
// ordered receive sequencing applies in both modes.
//
// # RDMA WRITE of large payloads (ms_async_rdma_send_msg_size > 0)
//
// With the option at 0 (the default, Ceph-compatible) nothing below
// happens: the side channel carries Ceph's three metas and nothing else,
// and every byte goes by SEND. With it above 0 on both sides (TCP side
// channel only; with ms_async_rdma_cm the option is not negotiated and
// everything goes by SEND):
//
// Negotiation. After Ceph's three steps each side writes one extension
// record on the TCP side channel (the client in the same write as its ack
// meta, the server after reading the ack) and reads the peer's before the
// handshake completes (within ms_connection_ready_timeout). The record,
// big endian:
//
//	offset size
//	0      4    magic "AMWR"
//	4      1    version, 1
//	5      1    n, buffers advertised (1..64)
//	6      2    reserved, 0
//	8      4    the sender's threshold (its ms_async_rdma_send_msg_size), > 0
//	12     16*n n times: buffer address u64, rkey u32, length u32 (1..2 MiB)
//
// Each side registers writeSlots (8) receive buffers of 8 TX chunks (at
// most 2 MiB) for the connection, with remote write access, and advertises
// them all in its record.
//
// Data. A Send call of more than the threshold bytes is copied into TX
// chunks that are posted as RDMA_WRITEs into a free advertised buffer of the
// peer, at consecutive offsets; the last WRITE into a buffer is
// RDMA_WRITE_WITH_IMM with imm = 01b<<30 | buffer<<22 | length (bytes in
// the buffer, < 4 MiB). It consumes one receive WR of the peer, so its
// completion is sequenced with the SENDs (RC ordering on one QP): the
// reader delivers the buffer's bytes at that place in the stream. A buffer
// never spans Send calls. Smaller calls, and the rest of a call when no
// peer buffer is free, go by SEND as in Ceph mode (counted as
// WriteFallbacks): memory stays bounded, nothing waits for the peer.
//
// Re-advertisement. Once the reader has copied a buffer out, the buffer is
// advertised again with a zero-length SEND_WITH_IMM, imm = 10b<<30 |
// buffer<<22 (no stream order needed; it is handled at completion). A
// zero-length SEND without immediate data stays the FIN.
//
// Mismatch. The side with the option at 0 recognises the peer's record (or
// immediate data) and faults the connection with an error naming
// ms_async_rdma_send_msg_size; the side with it on fails its handshake with
// such an error when the peer closes the side channel or sends no record
// within ms_connection_ready_timeout.
//
// Close. The receive buffers stay registered until the dispatcher destroyed
// the QP (QPHandle.RetireThen), so nothing can write into freed memory and
// no MR is left behind.
//
// # Owners and lock order
//
// A socket's state (receive queue, TX chunks being filled, merging, WRITE
// mode buffers, readiness eventfd) belongs to whoever holds its conn.mu: the
// application goroutines in Read/Send/Shutdown/Close, the handshake and
// side-channel watcher goroutines. The dispatcher's poller never waits for
// conn.mu: its callbacks (OnRecv, OnTxComplete, OnTxSpace, OnFault) append
// to the socket's inbox under inbox.mu alone and then try conn.mu
// (TryLock); when it is taken, the holder takes the inbox over before it
// lets go (conn.lock/unlock, like release_sock processing a Linux socket's
// backlog). So a Send held in its copy delays only its own socket, never the
// poller or another connection (TestHeldSenderDoesNotStallPoller). finSeen
// and closed are atomics any goroutine reads.
//
// Lock order: conn.mu, then inbox.mu, then the dispatcher's locks
// (Dispatcher.mu in WaitTxSpace, the RX post lock in ReturnRX) and the
// pools' locks. The poller takes inbox.mu (and, on a closed socket, the RX
// pool's locks under it) and conn.mu only by TryLock, never holding a
// dispatcher lock.
//
// # Files
//
// stack.go (the stack, listen, connect), conn.go (the socket: state,
// readiness eventfd, Close), connect.go (the TCP side channel: Ceph's meta
// handshake and the liveness watch), cm.go (the rdma_cm side), inbox.go
// (the poller's inbox and its hand-over), rcv.go (received
// completions, Read), snd.go (Send, TX chunks, merging, posting,
// the FIN), write.go (WRITE mode state and the extension record), meta.go
// (the 65-byte meta), workerpoll.go (the polling modes: a worker's CQ pair on
// its centre).
//
// Connections are set up through rdma_cm with ms_async_rdma_cm, or with
// ms_async_rdma_type = iwarp (Ceph's iWARP sockets connect through rdma_cm).
// The side channel listens and is addressed through netstack's TCP helpers.
// The stack logs through its Config's logger (cfg.Log()), handed to the
// dispatcher too.
//
// Importing the package registers the stack as "rdma" in netstack. Without
// cgo or without a device its factory returns an error wrapping
// netstack.ErrUnavailable, so netstack.New can fall back to posix.
//
// rdmastack must not: import "C", poll CQs itself (the dispatcher, or a
// worker's CQSet on its centre, does),
// block an event centre's goroutine (handshakes run on their own goroutine
// and Connect blocks only its caller), or drop accepted bytes.
package rdmastack
