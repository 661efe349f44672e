#!/usr/bin/env bash
# container.sh — the asyncmsgr image with podman, without a container registry.
#
#   soft-roce/container.sh build        the local Debian bases (debootstrap,
#                                       cached), then podman build ->
#                                       localhost/asyncmsgr
#   soft-roce/container.sh podman ARGS  podman as this sandbox needs it (the
#                                       engine tests/container runs)
#
# make test runs both (internal/testrun: the build on the host, tests/container
# on the host and in the Soft-RoCE VM). What this sandbox adds to the README's
# run flags, all here: crun refuses the host's hybrid cgroups, so
# --runtime runc --cgroup-manager=cgroupfs; podman's default rlimits exceed
# the hard limits, so run gets --ulimit nofile=1024:1024 --ulimit
# nproc=1024:1024. In the VM, whose root is the host's over 9p under a tmpfs
# overlay: overlayfs takes no upper dir on that overlay, so podman's own
# storage goes on /run's tmpfs (--root, --runroot) and the host's image store
# is read as an additional read-only one (overlay.imagestore: no save/load);
# the VM mounts no cgroups, so cgroup2 is mounted for runc.
#
# The bases' tars and debootstrap's .debs are cached in
# $ASYNCMSGR_CONTAINER_CACHE (default /var/cache/asyncmsgr-container).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${ASYNCMSGR_CONTAINER_CACHE:-/var/cache/asyncmsgr-container}
image=${ASYNCMSGR_IMAGE:-localhost/asyncmsgr}
store=/var/lib/containers/storage
engine=(podman --runtime runc --cgroup-manager=cgroupfs)
sandbox=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
suite=bookworm
log() { echo "container: $*" >&2; }

# base NAME PKG... prints the tag of a local image debootstrapped with PKG...
# installed, made (and its tar cached) when its inputs changed.
base() {
	local name=$1 mirror key tag tar root
	shift
	mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | awk -v s=$suite '$2 == s {print $1; exit}')
	[ -n "$mirror" ] || { log "no $suite mirror in /etc/apt/sources.list*"; exit 1; }
	key=$(echo "$suite $mirror $* $(dpkg-query -W -f='${Version}' debootstrap)" | sha256sum | cut -c1-12)
	tag=localhost/asyncmsgr-base-$name:$key
	if ! "${engine[@]}" image exists "$tag"; then
		tar=$cache/base-$name-$key.tar
		if [ ! -s "$tar" ]; then
			log "debootstrap $suite ($name: $*) from $mirror"
			root=$(mktemp -d)
			mkdir -p "$cache/debs"
			debootstrap --variant=minbase --cache-dir="$cache/debs" --include="$(echo "$*" | tr ' ' ,)" \
				"$suite" "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
			rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root.log"
			tar -C "$root" -c . >"$tar.tmp" && mv "$tar.tmp" "$tar"
			rm -rf "$root"
		fi
		"${engine[@]}" import -q "$tar" "$tag" >/dev/null
	fi
	echo "$tag"
}

build() {
	# shellcheck source=soft-roce/deps.sh
	. "$here/deps.sh"
	apt_install podman runc debootstrap
	ensure_build_deps
	local rt bld gocache
	# The runtime base gets exactly the Dockerfile's runtime packages.
	# shellcheck disable=SC2046
	rt=$(base runtime $(sed -n "s/^ *apt_install \([^'&]*\).*/\1/p" "$repo/Dockerfile"))
	# shellcheck disable=SC2086
	bld=$(base build $ASYNCMSGR_BUILD_PKGS)
	(cd "$repo" && go mod download)
	gocache=$(go env GOCACHE) && mkdir -p "$gocache"
	log "podman build $image (FROM $bld, $rt; Go from $(go env GOROOT), no network)"
	"${engine[@]}" build "${sandbox[@]}" --pull=never --network=none -q \
		-v "$(go env GOROOT):/usr/local/go:ro" -v "$(go env GOMODCACHE):/root/go/pkg/mod:ro" \
		-v "$gocache:/root/.cache/go-build" \
		--build-arg BUILD_IMAGE="$bld" --build-arg RUNTIME_IMAGE="$rt" --build-arg GOPROXY=off \
		-t "$image" "$repo" >/dev/null
	# The previous builds' images and build stages, now untagged.
	"${engine[@]}" image prune -f >/dev/null
	log "$("${engine[@]}" image ls --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' "$image")"
}

# in_vm reports whether this runs inside soft-roce/vm-run.sh.
in_vm() { grep -q asyncmsgr.job= /proc/cmdline; }

run_podman() {
	if in_vm; then
		mkdir -p /run/asyncmsgr-podman/root /run/asyncmsgr-podman/run
		mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null ||
			mountpoint -q /sys/fs/cgroup
		engine+=(--root /run/asyncmsgr-podman/root --runroot /run/asyncmsgr-podman/run
			--storage-opt "overlay.imagestore=$store")
	fi
	if [ "${1:-}" = run ]; then
		shift
		exec "${engine[@]}" run "${sandbox[@]}" "$@"
	fi
	exec "${engine[@]}" "$@"
}

case "${1:-}" in
build) build ;;
podman) shift; run_podman "$@" ;;
*) sed -n '2,8p' "$0"; exit 2 ;;
esac
