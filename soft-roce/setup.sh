#!/usr/bin/env bash
# setup.sh [IFACE] — create a Soft-RoCE device rxe0 on IFACE (default: the
# interface of the default route) on a host whose kernel has rdma_rxe.
# Idempotent: an existing rxe device on IFACE is kept. For hosts without the
# module (the kernel lacks CONFIG_RDMA_RXE) use soft-roce/vm-run.sh instead.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=soft-roce/deps.sh
. "$here/deps.sh"
ensure_build_deps
name=${RXE_NAME:-rxe0}
iface=${1:-$(ip -o route show default 2>/dev/null | awk '{print $5; exit}')}
[ -n "$iface" ] || { echo "setup: no interface given and no default route; usage: $0 IFACE" >&2; exit 2; }
ip link show "$iface" >/dev/null 2>&1 || { echo "setup: no interface $iface" >&2; exit 2; }
if ! modprobe rdma_rxe 2>/dev/null; then
	echo "setup: the kernel $(uname -r) has no rdma_rxe module (CONFIG_RDMA_RXE); run tests with soft-roce/vm-run.sh instead" >&2
	exit 3
fi
modprobe ib_uverbs
modprobe rdma_ucm || true
if rdma link show 2>/dev/null | grep -q "netdev $iface\b"; then
	echo "setup: $(rdma link show | grep "netdev $iface\b")"
	exit 0
fi
rdma link add "$name" type rxe netdev "$iface"
echo "setup: $(rdma link show "$name/1")"
