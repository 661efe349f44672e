// Package clock is rdmaperf's timestamp source. Like perftest's get_cycles
// it reads the CPU's time-stamp counter (RDTSC on amd64), converted to
// nanoseconds with a rate calibrated against the monotonic clock: on a VM
// whose clocksource is not the TSC (the TCG Soft-RoCE VM fell back to hpet
// until vm-run.sh asked for the TSC),
// clock_gettime is a trapping syscall costing microseconds, which would
// otherwise land in every measured iteration. Elsewhere it falls back to the
// runtime's monotonic clock. It must not start goroutines.
package clock
