// Package msgr is asyncmsgr's messenger, after Ceph's AsyncMessenger,
// AsyncConnection and ProtocolV2: a Messenger owns one network stack (chosen
// by cfg.TransportType through netstack.New), listens, and keeps Connections
// to peers; each Connection runs the msgr2.1 session state machine (banner,
// HELLO, AUTH_REQUEST/AUTH_DONE with auth method none, AUTH_SIGNATURE,
// CLIENT_IDENT/SERVER_IDENT or SESSION_RECONNECT/RECONNECT_OK, then MESSAGE,
// ACK, KEEPALIVE2) on its worker's event centre, with per-priority out queues,
// lossy and lossless policies, reconnect with backoff, acks, keepalives and
// idle/handshake timeouts. Received messages go to Dispatchers, either fast
// (on the worker goroutine) or through the messenger's DispatchQueue.
//
// Threading: every Connection is driven by exactly one EventCenter goroutine
// at a time; its state is guarded by Connection.mu so that application
// goroutines (SendMessage, MarkDown, Stats) can queue work. Dispatcher
// callbacks run with no messenger lock held. Lock order: Messenger.mu before
// Connection.mu; a Connection never takes the Messenger lock while holding
// its own, except through the lock-free maps noted in messenger.go.
//
// msgr owns the session layer only. It must not parse frames itself (that
// is msgr/msgr2), must not touch sockets except through netstack interfaces,
// must not import any transport (posix, rdma) and must not block an event
// centre goroutine (dials run on their own goroutines).
package msgr
