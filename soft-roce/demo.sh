#!/usr/bin/env bash
# demo.sh — `make demo`, the main job: rdmaperf and C perftest side by side
# on a real RDMA device (this host's, or rxe in the Soft-RoCE VM when the host
# has none), then a short comparison table: send_lat
# and write_lat at 2 B and 4 KiB, send_bw at 4 KiB and 64 KiB, rdmaperf vs
# perftest, with ratios. Latency rows are the median of DEMO_REPS (default 3)
# alternating runs, since a latency run in the VM sometimes lands in a
# timer-tick mode (see BENCHMARKS.md). Takes a few minutes.
#
#   soft-roce/demo.sh
#   DEMO_ITERS=2000 soft-roce/demo.sh   # more iterations per latency run
#   DEMO_REPS=5 soft-roce/demo.sh       # more repetitions per latency row
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
export PATH=$PATH:/usr/local/go/bin
out=$repo/.build/demo

inner() {
	local dev=${RXE_DEV_A:-$(ls /sys/class/infiniband | head -1)}
	local gid=${RXE_GID_IDX:-1}
	local rp=$repo/.build/rdmaperf
	local port=21000 n=${DEMO_ITERS:-1000}
	: >"$out/results.tsv"
	echo "demo: device $dev (gid index $gid), kernel $(uname -r), $(nproc) cpus" >&2
	run() { # KIND TEST SIZE ITERS
		local kind=$1 test=$2 size=$3 iters=$4 cmd
		if [ "$kind" = perftest ]; then cmd=(ib_"$test" -F); else cmd=("$rp" "$test"); fi
		cmd+=(-d "$dev" -x "$gid" -s "$size" -n "$iters")
		port=$((port + 1))
		timeout 120 "${cmd[@]}" -p "$port" >"$out/srv.$kind.$test.$size" 2>&1 &
		local i
		for i in $(seq 300); do # until the server listens (perftest's client does not retry)
			ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && break
			sleep 0.1
		done
		timeout 120 "${cmd[@]}" -p "$port" 127.0.0.1 >"$out/cli.$kind.$test.$size" 2>&1 || true
		wait || true
		local row
		row=$(grep -E '^ [0-9]' "$out/cli.$kind.$test.$size" | tail -1)
		case $test in
		*_lat) echo "$row" | awk -v k="$kind" -v t="$test" -v s="$size" 'NF {print k "\t" t "\t" s "\t" $5}' ;;
		*) echo "$row" | awk -v k="$kind" -v t="$test" -v s="$size" 'NF {print k "\t" t "\t" s "\t" $4}' ;;
		esac >>"$out/results.tsv"
		printf 'demo: %-8s %-9s %7s B: %s\n' "$kind" "$test" "$size" "${row:-FAILED (see $out/cli.$kind.$test.$size)}" >&2
	}
	local s t r
	for r in $(seq "${DEMO_REPS:-3}"); do
		for t in send_lat write_lat; do
			for s in 2 4096; do
				run perftest "$t" "$s" "$n"
				run rdmaperf "$t" "$s" "$n"
			done
		done
	done
	for s in 4096 65536; do
		run perftest send_bw "$s" 200
		run rdmaperf send_bw "$s" 200
	done
}

if [ "${1:-}" = "--inner" ]; then
	inner
	exit 0
fi

. "$here/deps.sh"
ensure_build_deps
mkdir -p "$out"
echo "demo: building rdmaperf" >&2
go build -o .build/rdmaperf ./cmd/rdmaperf
if ls /sys/class/infiniband 2>/dev/null | grep -q .; then
	"$0" --inner
else
	ensure_vm_deps
	echo "demo: no RDMA device on this host: running in the Soft-RoCE VM" >&2
	soft-roce/vm-run.sh -- env DEMO_ITERS="${DEMO_ITERS:-}" DEMO_REPS="${DEMO_REPS:-}" "$0" --inner
fi
res=$out/results.tsv
[ -s "$res" ] || { echo "demo: no results" >&2; exit 1; }
# val KIND TEST SIZE: the median of the runs' values (the middle one, or
# the mean of the two middle ones).
val() {
	awk -F'\t' -v k="$1" -v t="$2" -v s="$3" '$1==k && $2==t && $3==s && $4 ~ /^[0-9.]+$/ {print $4}' "$res" |
		sort -g | awk '{v[NR]=$1} END {if (NR==0) exit; if (NR%2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2]+v[NR/2+1])/2}'
}
echo
echo "rdmaperf vs C perftest (same device, same boot; latency: t_typical usec one way, median of ${DEMO_REPS:-3} runs, lower is better; bandwidth: BW average MB/sec, higher is better)"
printf '%-9s %8s %12s %12s %8s\n' test size perftest rdmaperf ratio
fail=0
for ts in send_lat:2 send_lat:4096 write_lat:2 write_lat:4096 send_bw:4096 send_bw:65536; do
	t=${ts%%:*} s=${ts#*:}
	p=$(val perftest "$t" "$s") r=$(val rdmaperf "$t" "$s")
	q=$(awk -v a="$r" -v b="$p" 'BEGIN {if (a=="" || b=="" || b+0==0) print "n/a"; else printf "%.2fx", a/b}')
	printf '%-9s %8s %12s %12s %8s\n' "$t" "$s" "${p:-failed}" "${r:-failed}" "$q"
	[ -n "$r" ] || fail=1
done
exit $fail
