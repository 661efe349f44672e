// Package bench is the benchmark driver of `make bench` and `make demo`.
//
// It owns the measurement plan (which tool runs which test at which size,
// how often, in what alternation: plan.go), running one server/client pair
// on the device (run.go), reading the tools' rows (perftest's text,
// rdmaperf's --json: parse.go), medians and ratios (stats.go), the targets
// of the performance issue (targets.go), and the outputs: BENCHMARKS.md's
// generated section through text/template (report.go, report.md.tmpl), the
// gnuplot plot (plot.go) and the demo's table (demo.go). phase.go wires them
// into the host phase (conditions, VM boot) and the device phase. The host
// phase also measures secure mode's cost over posix (issue 10: secure.go),
// running the messenger suite's Go benchmarks from their test binary.
//
// A new row of the benchmark is a Series (and a Target to judge it); a
// series that needs an option or an rdmaperf flag the tree lacks is
// recorded as "not measured" with the reason, never silently dropped.
//
// It must not import the messenger or the verbs (it measures through the
// rdmaperf, perftest and test binaries only; it reads config only to ask which
// options exist), and nothing in it may turn a ratio into a pass/fail of a
// test: targets are reported, not asserted.
package bench
