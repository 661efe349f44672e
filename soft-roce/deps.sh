# deps.sh — sourced by the soft-roce scripts, the Makefile's deps target and
# the Dockerfile: the Debian packages asyncmsgr needs and the VM's initramfs.
# shellcheck shell=bash

# Packages to build (cgo against rdma-core) and to use a host's rxe device.
ASYNCMSGR_BUILD_PKGS="gcc libc6-dev pkg-config libibverbs-dev librdmacm-dev rdma-core ibverbs-providers ibverbs-utils rdmacm-utils perftest iproute2 kmod"
# Real Ceph for the interop tests (ceph-mon 16.2 is built with RDMA support)
# and ceph-conf for the config parser's cross-check.
ASYNCMSGR_TEST_PKGS="ceph-mon ceph-common"
# Extra packages to boot the Soft-RoCE VM on a host without rdma_rxe.
ASYNCMSGR_VM_PKGS="qemu-system-x86 linux-image-amd64 busybox-static"

# apt_install PKG... installs the packages that are not installed yet.
apt_install() {
	local missing=() p installed
	# One dpkg-query for all: each reads dpkg's whole status file, about 2 s
	# in the Soft-RoCE VM (over 9p, under TCG), where setup.sh runs this.
	installed=$'\n'$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null | sed -n 's/ install ok installed$//p' || true)$'\n'
	for p in "$@"; do
		[[ $installed == *$'\n'"$p"$'\n'* ]] || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "asyncmsgr: installing ${missing[*]}" >&2
	local sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	# another apt (a second make on the machine) holds the lock: wait for it
	local lock=(-o DPkg::Lock::Timeout=600)
	$sudo apt-get "${lock[@]}" update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_build_deps() {
	# shellcheck disable=SC2086
	apt_install $ASYNCMSGR_BUILD_PKGS
}

ensure_vm_deps() {
	# shellcheck disable=SC2086
	apt_install $ASYNCMSGR_BUILD_PKGS $ASYNCMSGR_VM_PKGS
}

ensure_test_deps() {
	# shellcheck disable=SC2086
	apt_install $ASYNCMSGR_BUILD_PKGS $ASYNCMSGR_TEST_PKGS
}

# run_rdmabench MODE ARGS... is `make demo`'s and `make bench`'s last step
# (run from the repository root): the VM's packages when this host has no
# RDMA device, rdmaperf and the driver built, then the driver run in MODE.
run_rdmabench() {
	local mode=$1
	shift
	ls /sys/class/infiniband 2>/dev/null | grep -q . || ensure_vm_deps
	echo "$mode: building rdmaperf and rdmabench" >&2
	go build -o .build/rdmaperf ./cmd/rdmaperf
	go build -o .build/rdmabench ./cmd/rdmabench
	exec .build/rdmabench "$mode" "$@"
}

# pick_kernel prints the newest Debian kernel version with both an image and
# modules that include rdma_rxe.
pick_kernel() {
	local v
	for v in $(ls -1 /boot/vmlinuz-*-amd64 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -rV); do
		if [ -r "/boot/vmlinuz-$v" ] && find "/lib/modules/$v" -name 'rdma_rxe.ko*' 2>/dev/null | grep -q .; then
			echo "$v"
			return 0
		fi
	done
	return 1
}

# Modules the initramfs loads itself: enough to mount the host root over 9p
# with an overlay. The RDMA modules are loaded later from the host root.
ASYNCMSGR_INITRD_MODULES="virtio_pci 9pnet_virtio 9p overlay"

# build_initramfs KVER CACHEDIR prints the path of a cached initramfs for KVER.
build_initramfs() {
	local kver=$1 cache=$2 here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	local key
	key=$(cat "$here/initramfs-init.sh" /bin/busybox "$here/deps.sh" | sha256sum | cut -c1-16)
	local out="$cache/initrd-$kver-$key.cpio.gz"
	if [ -s "$out" ]; then
		echo "$out"
		return 0
	fi
	mkdir -p "$cache"
	local root
	root=$(mktemp -d)
	mkdir -p "$root"/{bin,dev,proc,sys,lower,rw,newroot,lib/modules}
	cp /bin/busybox "$root/bin/busybox"
	cp "$here/initramfs-init.sh" "$root/init"
	chmod +x "$root/init"
	local m f name
	: >"$root/modules.order"
	# modprobe resolves each module's dependencies in load order; built-in
	# ones print as "builtin" and are skipped.
	for m in $ASYNCMSGR_INITRD_MODULES; do
		modprobe -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
	done | awk '!seen[$0]++' | while read -r f; do
		name=$(basename "$f")
		name=${name%%.ko*}.ko
		case "$f" in
		*.ko) cp "$f" "$root/lib/modules/$name" ;;
		*.ko.xz) xz -dc "$f" >"$root/lib/modules/$name" ;;
		*.ko.zst) zstd -qdc "$f" >"$root/lib/modules/$name" ;;
		*.ko.gz) gzip -dc "$f" >"$root/lib/modules/$name" ;;
		esac
		echo "$name" >>"$root/modules.order"
	done
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$root"
	echo "$out"
}
