// Package msgrsuite is the messenger's integration suite, parametrized by
// network stack name so that every transport runs the same tests:
// Run(t, "posix") from a test binary that imports the stack's package (for
// its registration), Run(t, "rdma") from the rdma one. Benchmarks
// (BenchLatency, BenchThroughput) take the stack name too; the posix test
// binary puts them beside plain net.Conn benchmarks for comparison. Tweak
// adjusts the configuration for a stack (device names and the like).
//
// It owns tests only: no production code, and it must not import a
// transport itself (raw peers use the stack under test through netstack).
package msgrsuite
