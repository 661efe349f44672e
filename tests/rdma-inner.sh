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
# Every binary runs in the default polling mode (ms_async_rdma_polling_mode,
# dispatcher); the ones whose tests take ASYNCMSGR_RDMA_POLLING_MODE run
# again in worker mode.
modes() {
	sed 's/$/ /' "$bindir/list"
	grep -E '^(rdmastack|tests_rdmasuite|tests_rdmaidle)\.test ' "$bindir/list" | sed 's/$/ worker/'
}
while read -r bin dir mode; do
	echo "== $bin, polling mode ${mode:-default} (on $(ls /sys/class/infiniband | tr '\n' ' '))"
	l=$bindir/$bin${mode:+.$mode}.log
	(cd "$dir" && ASYNCMSGR_RDMA_POLLING_MODE=$mode "$bindir/$bin" -test.v -test.count=1 -test.timeout=15m ${RDMA_TEST_ARGS:-}) >"$l" 2>&1
	brc=$?
	cat "$l" >>"$log"
	grep -E '^(---|=== RUN|PASS|FAIL|ok|panic)|^\s+--- |^\s+\S+\.go:[0-9]+:' "$l" | grep -vE '^=== RUN' | grep -vE '^\s*--- PASS' || true
	if [ $brc -ne 0 ]; then
		tail -40 "$l"
		echo "$bin${mode:+ ($mode)}: FAILED (exit $brc)"
		rc=1
	else
		echo "$bin${mode:+ ($mode)}: ok"
	fi
done < <(modes)
read -r p f s < <(count_results "$log")
if [ -n "${CI:-}" ] && [ "$s" -gt 0 ]; then
	echo "rdma: CI forbids skips on rxe; these skipped:"
	grep -E '^\s*--- SKIP' "$log"
	rc=1
fi
echo "$p $f $s" >.build/rdma.counts
echo "rdma: $p passed, $f failed, $s skipped"
exit $rc
