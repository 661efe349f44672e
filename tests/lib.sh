# lib.sh — shared by tests/host.sh and tests/rdma.sh.
# shellcheck shell=bash

# Packages whose tests need a real RDMA device: they run on rxe (in the
# Soft-RoCE VM when the host has none), never on the plain host.
RDMA_TEST_PKGS_RE='/(verbs|mempool|dispatcher|rdmastack|cmd/rdmaperf|tests/rdma[^/]*)$'

# test_pkgs prints "importpath dir" for every package with tests.
test_pkgs() {
	go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' ./... | sed '/^$/d'
}

# count_results LOG prints "P F S": passed, failed, skipped tests (subtests
# included) in a -v log.
count_results() {
	local p f s
	p=$(grep -cE '^\s*--- PASS' "$1" || true)
	f=$(grep -cE '^\s*--- FAIL' "$1" || true)
	s=$(grep -cE '^\s*--- SKIP' "$1" || true)
	echo "$p $f $s"
}
