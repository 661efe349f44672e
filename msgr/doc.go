// Package msgr is a messenger after Ceph's AsyncMessenger: endpoints that
// exchange typed messages over msgr2.1 sessions, on the TCP (posix) or the
// RDMA stack.
//
// Usage: import the stack (for its registration), build a Messenger, add a
// Dispatcher, Bind (servers) and Start:
//
//	import _ "github.com/asyncmsgr/asyncmsgr/posixfallback" // "posix"
//
//	m, err := msgr.New(config.Default(), msgr.EntityName{Type: msgr.EntityTypeClient, Num: 1})
//	m.AddDispatcherTail(d) // MsDispatch(*Message) and connection events
//	err = m.Start()
//	defer m.Shutdown()
//	conn, err := m.ConnectContext(ctx, "10.0.0.1:6800") // returns once ready
//	err = conn.SendMessage(&msgr.Message{Type: 42, Front: payload})
//
// SendMessage never blocks; SendMessageContext waits while the send queue
// holds WithSendQueueBytes or more. A Message belongs to the messenger once
// sent: do not modify it until it is acknowledged (lossless) or written
// (lossy). Replies arrive on the Dispatcher, m.Conn names their connection.
// A received message of 16 KiB to 1 MiB is read into a buffer from the
// messenger's pool; Message.Release, once the application is done with the
// payload, returns it for the next one (an unreleased message is garbage
// collected as usual; RxBufStats counts both).
// Policies (SetPolicy, SetDefaultPolicy: LossyClient, LosslessClient,
// LosslessPeer, StatelessServer, StatefulServer) say whether a session
// drops its queue on a fault (MsHandleReset) or keeps it and reconnects with
// back-off (ms_initial_backoff to ms_max_backoff), whichever side dialled
// (see Connection races below). The accepting side's
// policy decides lossiness: the client learns it from the server's
// SERVER_IDENT, as in Ceph. Optional Dispatcher interfaces hear more:
// FastDispatcher (handle on the worker goroutine), RefusedHandler (Ceph's
// ms_handle_refused), FaultHandler (faults of lossless sessions, including
// ErrSessionStalled). Connection.WaitReady waits for a session;
// ShutdownContext bounds the shutdown. Errors of closed connections match
// net.ErrClosed, timeouts have Timeout(). The Examples show each of these.
//
// Inside: a Messenger owns one network stack (chosen by cfg.TransportType
// through netstack.New), listens, and keeps Connections to peers; each
// Connection runs the msgr2.1 session state machine (banner, HELLO,
// AUTH_REQUEST/AUTH_DONE, AUTH_SIGNATURE, CLIENT_IDENT/SERVER_IDENT or
// SESSION_RECONNECT/RECONNECT_OK, then MESSAGE, ACK, KEEPALIVE2) on its
// worker's event centre, with per-priority out queues, acks, keepalives and
// idle/handshake timeouts whose timers a closing connection cancels at
// once. Received messages go to Dispatchers, either fast (on the worker
// goroutine) or through the messenger's DispatchQueue.
//
// Keepalives and what an idle connection costs: a connection has one
// periodic timer, its tick, once per ms_keepalive_interval (with keepalives
// off, four per ms_connection_idle_timeout), on a grid common to the
// process so that the connections of a centre tick in one wake-up. At a
// tick the idle timeout is checked and, when the interval carried no
// message, a KEEPALIVE2 goes out, from the end that initiated the session
// only: the other end counts the KEEPALIVE2s it receives as traffic and
// sends its own only after two quiet intervals (a peer with keepalives
// off), since the KEEPALIVE2_ACK it answers with is what the first end's
// idle timeout needs. So an idle session costs, per interval, one tick at
// each end, one KEEPALIVE2 and one KEEPALIVE2_ACK, and over rdma no busy
// polling (the centre is told, EventCenter.Quiet, that keepalive frames
// predict no traffic). In the Soft-RoCE VM (qemu TCG, 2 vCPUs) 4 idle rdma
// connections with 1 s keepalives, both ends in one process, measured
// 1.0-2.2 % of a core in worker mode, median 1.6 % of 5 runs, and 3.6-5.2 %
// in dispatcher mode (tests/rdmaidle; before the guest read the TSC, every
// clock read trapped and worker mode's median was 4.7 %).
//
// Threading: every Connection is driven by exactly one EventCenter goroutine
// at a time (its worker's; a lossless server session adopting a reconnected
// socket moves to that socket's worker), which owns the session state;
// Connection.mu is that ownership's token. Application goroutines touch only
// a small shared part under its own mutex (the out queue, the error, the
// wake flag, what the getters report): SendMessage queues there and wakes the
// centre with DispatchExternal, coalesced by the wake flag. One exception, as
// in Ceph: SendMessage on an idle ready session whose socket allows it
// (netstack.AnyGoroutineSender) borrows the token without waiting (TryLock),
// writes the frames itself and hands over to the centre when the socket
// would block or fails; it never touches the centre's file or time events.
// Received messages are acked by the next message sent; a bare ACK follows
// only after a short delay (or a batch). Data segments of 16 KiB or more are
// sent by reference, not copied, so a Message must stay unmodified until
// acked (lossless) or written (lossy). Dials run on helper goroutines and
// hand the socket back to the centre. Dispatcher callbacks run with no
// messenger lock held: fast dispatch on the centre goroutine, the rest on
// the DispatchQueue goroutine. The lock order is written once, in
// lockorder.go, and checked by the tests.
//
// Authentication: auth none or cephx (msgr/cephx; auth.go says which side
// offers and requires what), in crc or secure mode (AES-128-GCM records,
// msgr2.Secure), with service tickets and the cephx authorizer toward
// non-monitor services (auth_authorizer.go); see README "Authentication".
// Connection races: two lossless peers (neither lossy nor a server) dialling
// each other at once end with one session, the one the lower address
// dialled, as in Ceph's ProtocolV2 (race.go): the other side's dial takes
// over the accepted socket, or the loser is told to WAIT; Connect to a peer
// that dialled us returns that session. After a fault both ends of a
// lossless session reconnect, as Ceph's do: the side that initiated it
// (unless its policy is Standby and it has nothing to send) and the side
// the peer dialled when it has messages queued or unacknowledged, to the
// address the peer is bound to; a server policy waits for the peer. Two
// reconnects with the same connect_seq race like dials: the lower
// address's wins and the other is told to WAIT (handle_reconnect).
// Known limits: no rotating service secrets, no compression; a session
// with an unbound peer (no address to dial) waits for the peer to
// reconnect. The DispatchQueue is FIFO unless WithPriorityDispatch asks
// for Ceph's PrioritizedQueue order.
//
// Logging: one log/slog logger per messenger, WithLogger (default
// slog.Default()), put on the messenger's copy of the Config so that the
// stack, dispatcher and devices under it log through it too. Levels follow
// Ceph's debug_ms (log.go, DebugMsLevel): faults at Warn (0), sessions ready
// and closed by the peer at Info (1), handshake steps at Debug (5); nothing
// is logged per message. A peer's orderly close (EOF) is not a fault. A
// Connection prints as its peer's address.
//
// msgr owns the session layer only. It must not parse frames itself (that
// is msgr/msgr2), must not touch sockets except through netstack interfaces,
// must not import any transport (posix, rdma) and must not block an event
// centre goroutine (dials run on their own goroutines).
package msgr
