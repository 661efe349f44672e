// Package posixfallback owns the "posix" network stack: plain TCP sockets
// (IPv4 and IPv6) kept as raw non-blocking file descriptors and served by the
// workers' netstack.EventCenter loops, after Ceph's PosixStack. It registers
// itself with netstack from init, so importing it (even as _) makes
// ms_async_transport_type = posix available, and it is the stack
// netstack.New falls back to. The TCP address, socket and listen helpers it
// shares with the rdma stack's side channel are netstack's (tcp.go); it
// logs nothing itself.
//
// It must not use net.Conn or the Go netpoller for its sockets (they live in
// the event centres; Send may also run on a messenger goroutine, see
// netstack.AnyGoroutineSender), must not import verbs or any cgo code (it builds with
// CGO_ENABLED=0), and must not block an event centre's goroutine: only
// Worker.Connect blocks, and only its caller.
package posixfallback
