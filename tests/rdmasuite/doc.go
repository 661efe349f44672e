// Package rdmasuite runs the messenger suite (tests/msgrsuite) and the
// net.Conn conformance tests (nettest over netstack/netconn) over the rdma stack
// on a real RDMA device (rxe in the Soft-RoCE VM: soft-roce/vm-run.sh), same
// host and, with RXE_TWO_HOST, across the veth wire between rxe0 and rxe1,
// at the suite's full sizes unless -short (see TestMain). It also runs
// traffic through a stack whose pools live in reserved huge pages
// (ms_async_rdma_enable_hugepage; the test sets vm.nr_hugepages as root).
//
// It owns no production code.
package rdmasuite
