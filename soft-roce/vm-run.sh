#!/usr/bin/env bash
# vm-run.sh — run a command on a real Soft-RoCE (rxe) device on a host whose
# kernel has no rdma_rxe.
#
#   soft-roce/vm-run.sh [--two-host] [--mem MiB] [--timeout SEC] [--] CMD [ARGS...]
#
# Boots Debian's linux-image-amd64 kernel under qemu (TCG) with this machine's
# root filesystem shared read-only (tmpfs overlay on top), the repository
# shared read-write at the same path, and no NIC. Inside, rdma_rxe is loaded
# and a veth pair carries the rxe devices:
#   same-host (default): veth0 10.77.0.1/24 <-> veth1 10.77.0.2/24, rxe0 on veth0
#   --two-host: netns "hosta" holds veth0 10.77.0.1 + rxe0, netns "hostb" holds
#               veth1 10.77.0.2 + rxe1; CMD runs in the root netns and reaches
#               the hosts with `ip netns exec hosta|hostb ...`.
# CMD runs as root with `ulimit -l unlimited`, in the caller's working
# directory, with CI, GO*, ASYNCMSGR_* and RXE_* variables passed through.
# Tests find the devices in RXE_DEV_A/RXE_HOST_A (rxe0, 10.77.0.1), RXE_GID_IDX
# and, with --two-host, RXE_TWO_HOST=1, RXE_DEV_B/RXE_HOST_B (rxe1, 10.77.0.2).
# Its output streams to this terminal and its exit code is ours
# (125 when the VM itself failed).
#
# Everything needed is installed on first use (apt-get) and the initramfs is
# cached in $ASYNCMSGR_VM_CACHE (default /var/cache/asyncmsgr-vm).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
two_host=0
mem=${ASYNCMSGR_VM_MEM:-4096}
vm_timeout=${ASYNCMSGR_VM_TIMEOUT:-3600}
cache=${ASYNCMSGR_VM_CACHE:-/var/cache/asyncmsgr-vm}

while [ $# -gt 0 ]; do
	case "$1" in
	--two-host) two_host=1; shift ;;
	--mem) mem=$2; shift 2 ;;
	--timeout) vm_timeout=$2; shift 2 ;;
	--) shift; break ;;
	-h|--help) sed -n '2,21p' "$0"; exit 0 ;;
	-*) echo "vm-run: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "vm-run: no command given (see --help)" >&2; exit 2; }

log() { echo "vm-run: $*" >&2; }

# shellcheck source=soft-roce/deps.sh
. "$here/deps.sh"
ensure_vm_deps

kver=$(pick_kernel) || { log "no Debian kernel with modules under /boot and /lib/modules"; exit 125; }
initrd=$(build_initramfs "$kver" "$cache")

job=$(mktemp -d "$repo/.build/vmjob.XXXXXX" 2>/dev/null || { mkdir -p "$repo/.build"; mktemp -d "$repo/.build/vmjob.XXXXXX"; })
trap 'rm -rf "$job"' EXIT
{
	echo "cd $(printf %q "$PWD")"
	env | grep -E '^(CI|GO[A-Z0-9_]*|ASYNCMSGR_[A-Z0-9_]*|RXE_[A-Z0-9_]*|PATH|HOME)=' | while IFS= read -r kv; do
		printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
	done
	printf 'exec'; printf ' %q' "$@"; printf '\n'
} >"$job/cmd.sh"
echo "$two_host" >"$job/two_host"

# The guest kernel finds TCG's vCPU TSCs "unsynchronized" at boot and falls
# back to hpet, which has no vDSO: every clock read (Go's scheduler makes
# many per wake-up) became a 2.7 µs trap against 0.2 µs on the TSC. Real
# hosts run on the TSC; perftest reads it directly either way.
clock="tsc=reliable clocksource=tsc"
cpus=$(nproc)
[ "$cpus" -gt 4 ] && cpus=4
log "booting $kver (tcg, ${cpus} vcpu, ${mem} MiB), two-host=$two_host"
set +e
timeout --foreground -k 10 "$vm_timeout" qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max -smp "$cpus" -m "$mem" \
	-nographic -fw_cfg name=etc/sercon-port,string=0 -no-reboot -nic none -monitor none -serial stdio \
	-kernel "/boot/vmlinuz-$kver" -initrd "$initrd" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 $clock asyncmsgr.job=$job asyncmsgr.repo=$repo" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$repo,mount_tag=repo,security_model=none,multidevs=remap" \
	</dev/null 2> >(grep -v "fw_cfg item names should be prefixed" >&2) | tr -d "\r"
qrc=${PIPESTATUS[0]}
set -e
if [ -f "$job/rc" ]; then
	exit "$(cat "$job/rc")"
fi
log "the VM ended without the command's exit status (qemu rc $qrc)"
exit 125
