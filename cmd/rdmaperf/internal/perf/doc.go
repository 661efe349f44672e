// Package perf owns rdmaperf's perftest compatibility: command-line
// parsing with perftest's flags and defaults, the out-of-band parameter and
// QP-address exchange over TCP (refusing mismatched parameters by name), and
// the report: perftest's header block, its exact latency and bandwidth rows
// and statistics, and the --json form of the same numbers. It must not touch
// verbs objects; the raw and msgr runners measure, perf only formats.
package perf
