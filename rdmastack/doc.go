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
// Not implemented yet: RDMA WRITE of payloads above
// ms_async_rdma_send_msg_size into peer-advertised buffers. The option is
// accepted but never negotiated, so every payload goes by SEND (the
// Ceph-compatible byte stream).
//
// Importing the package registers the stack as "rdma" in netstack. Without
// cgo or without a device its factory returns an error wrapping
// netstack.ErrUnavailable, so netstack.New can fall back to posix.
//
// rdmastack must not: import "C", poll CQs itself (the dispatcher does),
// block an event centre's goroutine (handshakes run on their own goroutine
// and Connect blocks only its caller), or drop accepted bytes.
package rdmastack
