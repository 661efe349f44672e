// Package perfcounters owns counters that outlive a connection, in Ceph's
// shape: a Registry (one per messenger) of named Sets ("AsyncMessenger::
// Worker-0", "AsyncMessenger::RDMADispatcher", ...), each a list of named
// 64-bit counters and gauges, dumped as Ceph's `perf dump` JSON and
// described by `perf schema`. Every layer may import it: it imports only the
// standard library.
//
// Counters are atomics: updating one never takes a lock or allocates, so a
// hot path may count. A Set's list of counters is fixed once it is in use
// (Add while nothing reads); Dump and Each read under the registry's lock.
//
// It must not serve anything: the admin socket (package
// perfcounters/adminsock) and the Prometheus collector (package
// perfcounters/promcollector) read a Registry from outside.
package perfcounters
