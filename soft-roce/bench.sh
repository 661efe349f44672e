#!/usr/bin/env bash
# bench.sh — `make bench`: installs what the benchmark needs, builds rdmaperf
# and the driver (cmd/rdmabench), and runs it. The driver boots the
# Soft-RoCE VM itself (soft-roce/vm-run.sh) when this host has no RDMA
# device, runs C perftest and rdmaperf side by side in that one boot, and
# rewrites the generated section of BENCHMARKS.md and BENCHMARKS.png.
#
#   soft-roce/bench.sh                 # BENCH_REPS=5 repetitions of the ratio points
#   BENCH_REPS=1 BENCH_QUICK=1 soft-roce/bench.sh   # a smoke run (sizes 2 4096 65536)
#   BENCH_SIZES="2 4096" soft-roce/bench.sh         # the curve's sizes
#   .build/rdmabench report            # re-render from .build/bench
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
export PATH=$PATH:/usr/local/go/bin
. "$here/deps.sh"
ensure_build_deps
apt_install gnuplot-nox
run_rdmabench bench "$@"
