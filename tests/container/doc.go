// Package container runs asyncmsgr's image (the repository's Dockerfile, built
// by soft-roce/container.sh) under a container engine (podman) and checks what
// the README promises of it: rdmaperf --help works without an RDMA device; a
// container without --device /dev/infiniband gets the stack's "no RDMA
// device" error, or the posix fallback when configured, and no crash; with
// the documented flags (--network host --device /dev/infiniband --cap-add
// IPC_LOCK --ulimit memlock=-1) rdmaperf send_lat runs between two
// containers and the messenger-over-rdma short suite (tests/rdmasuite's test
// binary, built on the host) passes inside one, on rxe in the Soft-RoCE VM.
//
// The engine command, the flags this sandbox adds and the image come from
// ASYNCMSGR_CONTAINER_ENGINE, ASYNCMSGR_CONTAINER_SANDBOX and ASYNCMSGR_IMAGE
// (soft-roce/container.sh sets them); ASYNCMSGR_CONTAINER_SUITE names the
// rdmasuite test binary. It owns no production code.
package container
