// Package netstack owns the transport-neutral socket abstraction the messenger
// runs on, after Ceph's NetworkStack: a Stack of Workers, each Worker owning one
// EventCenter (an epoll loop driven by exactly one goroutine), ServerSockets and
// ConnectedSockets whose FD is pollable by that loop, and the registry through
// which transports (posix, rdma) make themselves selectable by name.
//
// netstack must not know any transport: it imports no verbs code and no
// messenger code beyond the leaf config package.
package netstack
