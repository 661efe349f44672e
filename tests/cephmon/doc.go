// Package cephmon starts a throw-away Ceph monitor (Debian's ceph-mon 16.2)
// for asyncmsgr's interop tests: over TCP on loopback for msgr and
// msgr/msgr2, over async+rdma on a Soft-RoCE device for tests/rdmainterop
// (through tests/rdmatest).
//
// It owns: finding the Ceph tools under the skip rule (Require), the
// single-monitor ceph.conf (auth none, msgr2 only, posix or async+rdma;
// Conf), mkfs, running ceph-mon in the foreground, waiting until it is
// leader of monmap epoch 1 by asking its admin socket (Status, AdminSocket),
// the log tail when a test failed, and killing and removing it at cleanup.
//
// It is a helper for tests only: it must not be imported by non-test code
// and imports nothing but the standard library, so that any package's tests
// (msgr, msgr/msgr2, the RDMA suites) can use it without import cycles. It
// never asserts a time; every wait is bounded and reports what it waited for.
package cephmon
