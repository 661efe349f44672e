#!/usr/bin/env bash
# all.sh — `make test`: host tests, then the RDMA tests on rxe; one summary.
set -uo pipefail
cd "$(dirname "$0")/.."
rm -f .build/host.counts .build/rdma.counts
tests/host.sh
hrc=$?
tests/rdma.sh
rrc=$?
read -r hp hf hs < <(cat .build/host.counts 2>/dev/null || echo "0 1 0")
read -r rp rf rs < <(cat .build/rdma.counts 2>/dev/null || echo "0 1 0")
[ $hrc -eq 0 ] || [ "$hf" -gt 0 ] || hf=1
[ $rrc -eq 0 ] || [ "$rf" -gt 0 ] || rf=1
echo "host: $hp passed, $hf failed, $hs skipped; rdma (rxe): $rp passed, $rf failed, $rs skipped"
echo "total: $((hp + rp)) passed, $((hf + rf)) failed, $((hs + rs)) skipped"
[ $hrc -eq 0 ] && [ $rrc -eq 0 ]
