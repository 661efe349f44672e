#!/bin/bash
# Runs inside the Soft-RoCE VM as PID 1 (after the initramfs): bring up rxe
# on a veth pair, run the job's command, store its exit status, power off.
job=$1
poweroff_now() { sync; echo o >/proc/sysrq-trigger; sleep 30; }
trap poweroff_now EXIT
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# /tmp stays on the overlay (writable, RAM-backed): a tmpfs there would hide
# a repository cloned under /tmp, which the initramfs mounted already.
case "$job" in /run/*) ;; *) mount -t tmpfs tmpfs /run ;; esac
mkdir -p /dev/pts /dev/shm /dev/hugepages
mount -t devpts devpts /dev/pts
# devtmpfs lacks the fd links bash process substitution needs
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
mount -t tmpfs tmpfs /dev/shm
mount -t hugetlbfs hugetlbfs /dev/hugepages 2>/dev/null
hostname rxe-vm
ip link set lo up
for m in crc32_generic ib_uverbs rdma_ucm rdma_rxe veth sch_netem; do
	modprobe "$m" || echo "vm-guest: modprobe $m failed"
done
ip link add veth0 type veth peer name veth1
ip addr add 10.77.0.1/24 dev veth0
ip addr add 10.77.0.2/24 dev veth1
ip link set veth0 up
ip link set veth1 up
rdma link add rxe0 type rxe netdev veth0
# Tests read these to find the device(s); the job's own environment wins.
export RXE_HOST_A=10.77.0.1 RXE_DEV_A=rxe0 RXE_GID_IDX=1
if [ "$(cat "$job/two_host")" = 1 ]; then
	# Two "hosts" joined by the veth wire: host A is 10.77.0.1 on veth0 with
	# rxe0, host B is 10.77.0.2 on veth1 with rxe1. rdma_rxe in Debian 12's
	# 6.1 kernel opens its UDP socket in the initial network namespace only,
	# so the hosts cannot be separate namespaces; instead policy routing sends
	# locally generated traffic for the other host's address out over the
	# veth pair (where tc netem and link-down act) rather than through lo.
	sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
	for d in veth0 veth1; do
		sysctl -qw "net.ipv4.conf.$d.accept_local=1" "net.ipv4.conf.$d.rp_filter=0"
	done
	mac0=$(cat /sys/class/net/veth0/address)
	mac1=$(cat /sys/class/net/veth1/address)
	ip neigh replace 10.77.0.2 lladdr "$mac1" dev veth0 nud permanent
	ip neigh replace 10.77.0.1 lladdr "$mac0" dev veth1 nud permanent
	ip route add 10.77.0.2/32 dev veth0 src 10.77.0.1 table 77
	ip route add 10.77.0.1/32 dev veth1 src 10.77.0.2 table 77
	ip rule add pref 10 iif lo to 10.77.0.0/24 lookup 77
	ip rule add pref 20 lookup local
	ip rule del pref 0
	rdma link add rxe1 type rxe netdev veth1
	export RXE_TWO_HOST=1 RXE_HOST_B=10.77.0.2 RXE_DEV_B=rxe1
	cat >&2 <<'MSG'
vm-guest: two-host mode: host A = 10.77.0.1 (veth0, rxe0), host B = 10.77.0.2 (veth1, rxe1), traffic crosses veth0<->veth1
MSG
fi
ulimit -l unlimited
echo "vm-guest: $(uname -r), rdma links: $(rdma link show | tr '\n' ';')" >&2
bash "$job/cmd.sh" </dev/null
echo $? >"$job/rc"
