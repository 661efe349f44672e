#!/usr/bin/env bash
# host.sh — everything that needs no RDMA device: vet, the cgo-free build,
# unit tests with the race detector, and a bounded run of every fuzzer.
# Writes the counts to .build/host.counts ("passed failed skipped").
set -uo pipefail
cd "$(dirname "$0")/.."
. tests/lib.sh
mkdir -p .build
fuzztime=${FUZZTIME:-10s}
log=.build/host-test.log
rc=0

echo "== go vet ./..."
go vet ./... || rc=1
echo "== CGO_ENABLED=0 go build ./..."
CGO_ENABLED=0 go build ./... || rc=1

mapfile -t pkgs < <(test_pkgs | awk '{print $1}' | grep -vE "$RDMA_TEST_PKGS_RE")
echo "== go test -race (${#pkgs[@]} packages on the host)"
go test -race -count=1 -v -timeout 20m "${pkgs[@]}" >"$log" 2>&1
trc=$?
grep -E '^(ok|FAIL|---|panic|\s+\S+_test\.go:)' "$log" | grep -vE '^\s*--- PASS' || true
[ $trc -eq 0 ] || { echo "host tests failed (full log: $log)"; rc=1; }

echo "== fuzzers, $fuzztime each"
fz=0
# Fuzzers of every package, the RDMA ones included: decoders (handshake
# meta, GIDs) need no device.
mapfile -t fuzzpkgs < <(test_pkgs | awk '{print $1}')
for p in "${fuzzpkgs[@]}"; do
	for f in $(go test -list '^Fuzz' "$p" 2>/dev/null | grep '^Fuzz'); do
		if out=$(go test -run='^$' -fuzz="^$f\$" -fuzztime="$fuzztime" "$p" 2>&1); then
			echo "fuzz $p $f: ok"
			fz=$((fz + 1))
		else
			echo "$out" | tail -30
			echo "fuzz $p $f: FAILED"
			rc=1
		fi
	done
done
read -r p f s < <(count_results "$log")
if [ -n "${CI:-}" ] && [ "$s" -gt 0 ]; then
	echo "host: CI forbids skipped tests; these skipped:"
	grep -E '^\s*--- SKIP' "$log"
	rc=1
fi
echo "$((p + fz)) $f $s" >.build/host.counts
echo "host: $((p + fz)) passed, $f failed, $s skipped ($fz fuzz targets)"
exit $rc
