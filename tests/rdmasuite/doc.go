// Package rdmasuite runs the messenger suite (tests/msgrsuite) and the
// net.Conn conformance tests (nettest over msgr/netconn) over the rdma stack
// on a real RDMA device (rxe in the Soft-RoCE VM: soft-roce/vm-run.sh), same
// host and, with RXE_TWO_HOST, across the veth wire between rxe0 and rxe1.
//
// It owns no production code.
package rdmasuite
