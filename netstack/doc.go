// Package netstack owns the transport-neutral socket abstraction the messenger
// runs on, after Ceph's NetworkStack: a Stack of Workers, each Worker owning one
// EventCenter (an epoll loop driven by exactly one goroutine, with pollers
// for run-to-completion transports), ServerSockets and ConnectedSockets whose
// FD is pollable by that loop, and the registry through which transports
// (posix, rdma) make themselves selectable by name.
//
// Files: eventcenter.go (the loop and its lifecycle), external.go (work
// from other goroutines, wake-ups), fileevents.go, timers.go, poller.go
// (AddPoller, spinning), events.go (the types callbacks see).
//
// netstack must not know any transport: it imports no verbs code and no
// messenger code beyond the leaf config package.
package netstack
