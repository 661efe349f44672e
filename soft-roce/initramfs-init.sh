#!/bin/busybox sh
# PID 1 of the Soft-RoCE VM's initramfs: mount the host root (9p, read-only)
# under a tmpfs overlay, the repository read-write at its own path, then hand
# over to soft-roce/vm-guest.sh from the host root.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.order); do insmod "/lib/modules/$m" || echo "initramfs: insmod $m failed"; done
job=; repo=
for a in $(cat /proc/cmdline); do
	case "$a" in
	asyncmsgr.job=*) job=${a#asyncmsgr.job=} ;;
	asyncmsgr.repo=*) repo=${a#asyncmsgr.repo=} ;;
	esac
done
fail() { echo "initramfs: $*"; echo o >/proc/sysrq-trigger; sleep 60; }
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /lower || fail "cannot mount host root"
mount -t tmpfs -o size=75% tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "cannot mount overlay"
mkdir -p "/newroot$repo"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 repo "/newroot$repo" || fail "cannot mount repo"
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/bash "$repo/soft-roce/vm-guest.sh" "$job"
