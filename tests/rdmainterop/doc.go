// Package rdmainterop holds asyncmsgr's interoperability test with real Ceph
// over RDMA: a Debian ceph-mon 16.2 with `ms type = async+rdma` on the
// Soft-RoCE device, and asyncmsgr's messenger as a client over the rdma stack
// (GitHub issue 4). It has tests only; it runs in the rxe VM (make test-rdma).
//
// It must not start anything but ceph-mon and the messenger under test, and
// must not fall back to TCP: the rdma stack is traced (rdmatest's tracing
// transport) so every step is checked on the RDMA socket itself.
package rdmainterop
