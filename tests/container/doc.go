// Package container runs asyncmsgr's image (the repository's Dockerfile, built
// by soft-roce/container.sh build) under podman and checks what the README
// promises of it: rdmaperf --help works on a host without an RDMA device; in
// the Soft-RoCE VM, a container without --device /dev/infiniband gets the
// stack's "no RDMA device" error, or the posix fallback when configured, and
// no crash; with the documented flags (--network host --device
// /dev/infiniband --cap-add IPC_LOCK --ulimit memlock=-1) rdmaperf send_lat
// runs between two containers and the messenger over rdma (SuiteTests of
// tests/rdmasuite's test binary, built on the host) passes inside one.
//
// The engine is soft-roce/container.sh podman (podman with the flags this
// sandbox needs) unless ASYNCMSGR_CONTAINER_ENGINE names another; the image
// is ASYNCMSGR_IMAGE (default localhost/asyncmsgr); ASYNCMSGR_CONTAINER_SUITE
// names the rdmasuite test binary. It owns no production code.
package container
