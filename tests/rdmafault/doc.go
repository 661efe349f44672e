// Package rdmafault holds the fault tests of asyncmsgr's rdma stack under the
// messenger (GitHub issue 4), run on real rxe devices in the Soft-RoCE VM
// (make test-rdma): a peer process killed with SIGKILL mid-stream, the veth
// link pulled and restored, packet loss and delay from tc netem, a TX pool of
// 8 chunks under a 10k-message burst, a capped RX pool, malformed and silent
// handshake peers, and 500 connect/close cycles checked for leaked QPs, CQs,
// MRs and file descriptors.
//
// It has tests only. Each test bounds its waits and asserts delivery, order,
// integrity and resource counts, never durations.
package rdmafault
