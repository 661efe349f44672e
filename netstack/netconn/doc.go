// Package netconn owns the net.Conn and net.Listener adapters over any
// netstack.Stack (posix, rdma), so ordinary Go code (and tests such as
// golang.org/x/net/nettest) can use a stack's sockets as blocking streams.
//
// A Conn registers its socket's FD with its worker's EventCenter only while a
// Read or Write waits (through DispatchExternal), and parks the caller on
// channels until the centre reports readiness, a deadline passes, or Close.
// Readiness is only a hint: the adapter always retries the non-blocking
// operation, so it does not depend on the FD being a real socket (the rdma
// stack's FD is an eventfd); see netstack.ReadinessMasker.
//
// It must not block an event centre's goroutine (its blocking calls are made
// from user goroutines only), must not assume a transport, and must not touch
// the messenger.
package netconn
