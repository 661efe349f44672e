// Package testenv owns the rules every test of this module follows when the
// machine lacks something it needs (an RDMA device, root, a Ceph tool):
// outside CI the test skips and names what is missing; in CI (CI set) it
// fails, because CI runs where everything must exist and nothing may skip.
// It also holds the few helpers every test package needs (WaitFor).
//
// It must not be imported by non-test code, and it must not start anything
// (devices, VMs, daemons): it only looks.
package testenv
