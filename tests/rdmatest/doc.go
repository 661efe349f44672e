// Package rdmatest holds the helpers shared by asyncmsgr's RDMA integration
// tests (tests/rdmainterop, tests/rdmafault, tests/rdmaidle):
//
//   - device discovery from the RXE_* environment soft-roce/vm-run.sh exports
//     (Env, DeviceA, DeviceB) and the CI skip rule (Missing: skip outside CI,
//     fail inside it, naming what is missing);
//   - configurations for the rdma stack on a given device (Config);
//   - re-executing the test binary as a child peer process (Child, RunAsChild);
//   - network faults on the veth wire of the two-host VM (Netem, LinkDown);
//   - resource accounting for leak checks: `rdma resource show` filtered to a
//     pid, /proc/self/fd counted by kind (Resources, FDs) and CPU time from
//     /proc/self/stat (ProcCPU);
//   - a ceph-mon 16.2 started with `ms type = async+rdma` (StartCephMon);
//   - a tracing transport that wraps the rdma stack and records the msgr2
//     banner and frames each connection exchanges (TracedTransport).
//
// It is a helper package for tests only: it owns no production code, must not
// be imported by non-test code, and must not import a transport's package (the
// test binary imports the stack it tests, for its registration). It never
// asserts a time; every wait it offers is bounded and reports what it waited
// for.
package rdmatest
