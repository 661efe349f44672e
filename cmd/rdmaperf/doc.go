// Command rdmaperf is a perftest-style latency and bandwidth tool for
// asyncmsgr: raw-verbs tests (send_lat, write_lat, read_lat, send_bw,
// write_bw over an RC QP, with perftest's loops, flags and result rows) and
// the same measurements through the messenger (msgr_lat, msgr_bw over the
// rdma or posix stack).
//
//	rdmaperf SUBCOMMAND [flags]                 # server
//	rdmaperf SUBCOMMAND [flags] SERVER-ADDRESS  # client
//
// Client and server exchange parameters and connection data over TCP on -p
// (default 18515) and refuse to run when their parameters differ, naming
// them. --json prints one JSON object per result row; --trace adds the
// kernel-side counters of each run (eBPF doorbell count, rxe hw_counters).
//
// The -n send_lat and write_lat runs loop entirely in C, returning to Go
// once a millisecond, with GOMAXPROCS=2 (an idle P, so that sysmon leaves
// the goroutine in C alone); the other raw tests run with GOMAXPROCS=1,
// crossings into C of at most 15 µs and a yield every 2 ms. Either way the
// Go runtime neither takes their P nor wakes another thread on the critical
// path; internal/raw's doc has the measurements and the RDMAPERF_* variables
// that change these settings.
//
// Layout: internal/perf (flags, perftest's statistics and output, the
// out-of-band exchange), internal/raw (the verbs loops), internal/trace
// (eBPF + sysfs counters), internal/clock; this package wires them and runs
// the messenger tests. It must not import "C" (verbs/cshim does) and its hot
// loops must not allocate.
package main
