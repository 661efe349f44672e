#!/usr/bin/env bash
# rdma.sh — the tests that need a real RDMA device. Test binaries are built
# here, then run on rxe: directly when this host has an RDMA device, otherwise
# inside the Soft-RoCE VM (soft-roce/vm-run.sh). With CI set, a skipped test
# is a failure. Writes .build/rdma.counts ("passed failed skipped").
set -uo pipefail
cd "$(dirname "$0")/.."
. tests/lib.sh
bindir=.build/rdmatests
rm -rf "$bindir"
mkdir -p "$bindir"
: >"$bindir/list"
while read -r ip dir; do
	[[ $ip =~ $RDMA_TEST_PKGS_RE ]] || continue
	name=$(echo "${ip#github.com/asyncmsgr/asyncmsgr/}" | tr / _)
	echo "== go test -c $ip"
	go test -c ${RDMA_TEST_RACE:+-race} -o "$bindir/$name.test" "$ip" || exit 1
	echo "$name.test $dir" >>"$bindir/list"
done < <(test_pkgs)
if [ ! -s "$bindir/list" ]; then
	echo "rdma: no RDMA test packages"
	echo "0 0 0" >.build/rdma.counts
	exit 0
fi
if ls /sys/class/infiniband/ 2>/dev/null | grep -q .; then
	tests/rdma-inner.sh "$bindir"
else
	soft-roce/vm-run.sh --two-host -- tests/rdma-inner.sh "$bindir"
fi
