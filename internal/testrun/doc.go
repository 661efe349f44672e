// Package testrun owns the plumbing behind `make test`: which packages run
// where (host or rxe), the fuzz budgets, and the counts, which it reads from
// test2json events (go test -json, go tool test2json), never from -v text.
// tests/run is its command; soft-roce/vm-run.sh only boots the VM.
//
// It must not be imported by library code, and it decides nothing about a
// test's verdict: a test passes, fails or skips by its own events, and the
// one extra rule is internal/testenv's (in CI a skip is a failure).
package testrun
