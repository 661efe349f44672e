#!/usr/bin/env bash
# demo.sh — `make demo`, the main job: rdmaperf and C perftest side by side
# on a real RDMA device (this host's, or rxe in the Soft-RoCE VM when the
# host has none), then a comparison table: send_lat and write_lat at 2 B and
# 4 KiB (medians of DEMO_REPS alternating runs, default 3, since a latency
# run in the VM sometimes lands in a timer-tick mode), send_bw at 4 KiB and
# 64 KiB, with ratios. The driver is cmd/rdmabench (shared with `make
# bench`); it fails when rdmaperf produced no row. Takes a few minutes.
#
#   soft-roce/demo.sh
#   DEMO_ITERS=2000 soft-roce/demo.sh   # more iterations per latency run
#   DEMO_REPS=5 soft-roce/demo.sh       # more repetitions per latency row
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
export PATH=$PATH:/usr/local/go/bin
. "$here/deps.sh"
ensure_build_deps
run_rdmabench demo "$@"
