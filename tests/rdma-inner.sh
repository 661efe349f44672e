#!/usr/bin/env bash
# rdma-inner.sh BINDIR — run the prebuilt RDMA test binaries on this
# machine's rxe device (called by tests/rdma.sh, usually inside the VM).
set -uo pipefail
cd "$(dirname "$0")/.."
. tests/lib.sh
bindir=$(cd "$1" && pwd)
rc=0
log=$bindir/all.log
: >"$log"
while read -r bin dir; do
	echo "== $bin (on $(ls /sys/class/infiniband | tr '\n' ' '))"
	(cd "$dir" && "$bindir/$bin" -test.v -test.count=1 -test.timeout=15m ${RDMA_TEST_ARGS:-}) >"$bindir/$bin.log" 2>&1
	brc=$?
	cat "$bindir/$bin.log" >>"$log"
	grep -E '^(---|=== RUN|PASS|FAIL|ok|panic)|^\s+--- |^\s+\S+\.go:[0-9]+:' "$bindir/$bin.log" | grep -vE '^=== RUN' | grep -vE '^\s*--- PASS' || true
	if [ $brc -ne 0 ]; then
		tail -40 "$bindir/$bin.log"
		echo "$bin: FAILED (exit $brc)"
		rc=1
	else
		echo "$bin: ok"
	fi
done <"$bindir/list"
read -r p f s < <(count_results "$log")
if [ -n "${CI:-}" ] && [ "$s" -gt 0 ]; then
	echo "rdma: CI forbids skips on rxe; these skipped:"
	grep -E '^\s*--- SKIP' "$log"
	rc=1
fi
echo "$p $f $s" >.build/rdma.counts
echo "rdma: $p passed, $f failed, $s skipped"
exit $rc
