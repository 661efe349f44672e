// Package rdmasetup tests soft-roce/setup.sh and soft-roce/teardown.sh on a
// kernel that has rdma_rxe (the Soft-RoCE VM in CI): creating an rxe device
// on an interface, idempotency, clear errors, and removal. It owns no code
// beyond its tests.
package rdmasetup
