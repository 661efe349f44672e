#!/usr/bin/env bash
# container.sh — the asyncmsgr image with podman, without a container registry.
#
#   soft-roce/container.sh build    local bases (debootstrap, cached), then
#                                   podman build -> localhost/asyncmsgr
#   soft-roce/container.sh test     what CI runs (make test-container): build,
#                                   tests/container on the host (no RDMA
#                                   device), then in the Soft-RoCE VM (rxe)
#   soft-roce/container.sh vm-test  (inside the VM) podman storage on tmpfs,
#                                   cgroup2, the image loaded, the tests run
#
# Flags this sandbox needs (not the image's): crun refuses the host's hybrid
# cgroups, so runc with cgroupfs; podman's default rlimits exceed the host's
# hard limits, so nofile/nproc are capped. Bases and saved images are cached
# in $ASYNCMSGR_CONTAINER_CACHE (default /var/cache/asyncmsgr-container).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${ASYNCMSGR_CONTAINER_CACHE:-/var/cache/asyncmsgr-container}
image=${ASYNCMSGR_IMAGE:-localhost/asyncmsgr}
export ASYNCMSGR_IMAGE=$image
export ASYNCMSGR_CONTAINER_ENGINE=${ASYNCMSGR_CONTAINER_ENGINE:-podman --runtime runc --cgroup-manager=cgroupfs}
export ASYNCMSGR_CONTAINER_SANDBOX=${ASYNCMSGR_CONTAINER_SANDBOX---ulimit nofile=1024:1024 --ulimit nproc=1024:1024}
read -r -a engine <<<"$ASYNCMSGR_CONTAINER_ENGINE"
read -r -a sandbox <<<"$ASYNCMSGR_CONTAINER_SANDBOX"
suite=bookworm
log() { echo "container: $*" >&2; }
# shellcheck source=soft-roce/deps.sh
. "$here/deps.sh"

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
	apt_install podman runc debootstrap
	ensure_build_deps
	local rt bld
	# The runtime base gets exactly the Dockerfile's runtime packages.
	# shellcheck disable=SC2046
	rt=$(base runtime $(sed -n "s/^ *apt_install \([^'&]*\).*/\1/p" "$repo/Dockerfile"))
	# shellcheck disable=SC2086
	bld=$(base build $ASYNCMSGR_BUILD_PKGS)
	(cd "$repo" && go mod download)
	local gocache
	gocache=$(go env GOCACHE) && mkdir -p "$gocache"
	log "podman build $image (FROM $bld, $rt; Go from $(go env GOROOT), no network)"
	"${engine[@]}" build "${sandbox[@]}" --pull=never --network=none -q \
		-v "$(go env GOROOT):/usr/local/go:ro" -v "$(go env GOMODCACHE):/root/go/pkg/mod:ro" \
		-v "$gocache:/root/.cache/go-build" \
		--build-arg BUILD_IMAGE="$bld" --build-arg RUNTIME_IMAGE="$rt" --build-arg GOPROXY=off \
		-t "$image" "$repo" >/dev/null
	log "$image: $("${engine[@]}" image inspect --format '{{.Id}}' "$image" | cut -c1-12)," \
		"$(("$("${engine[@]}" image inspect --format '{{.Size}}' "$image")" / 1000000)) MB"
}

# save prints the path of a docker-archive of the image (cached by its ID).
save() {
	local id out
	id=$("${engine[@]}" image inspect --format '{{.Id}}' "$image" | cut -c1-12)
	out=$cache/image-$id.tar
	[ -s "$out" ] || { "${engine[@]}" save -q --format docker-archive -o "$out.tmp" "$image" && mv "$out.tmp" "$out"; }
	find "$cache" -maxdepth 1 -name 'image-*.tar' ! -name "image-$id.tar" -delete
	echo "$out"
}

test_all() {
	build
	ASYNCMSGR_CONTAINER_ARCHIVE=$(save)
	export ASYNCMSGR_CONTAINER_ARCHIVE
	mkdir -p "$repo/.build"
	(cd "$repo" && go test -c -o .build/container.test ./tests/container &&
		go test -c -o .build/rdmasuite.test ./tests/rdmasuite)
	export ASYNCMSGR_CONTAINER_SUITE=$repo/.build/rdmasuite.test
	log "host (no RDMA device; its hard memlock limit refuses memlock=-1): tests/container"
	(cd "$repo/tests/container" && ../../.build/container.test -test.v -test.run 'Help')
	log "Soft-RoCE VM: tests/container"
	"$here/vm-run.sh" -- "$here/container.sh" vm-test
}

# vm_test runs inside the VM, whose root is the host's over 9p under an
# overlay: overlayfs cannot stack its upper dir on that, so podman's storage
# goes on a tmpfs; the VM mounts no cgroups, so cgroup2 is mounted for runc.
vm_test() {
	grep -q asyncmsgr.job= /proc/cmdline || { log "vm-test runs inside soft-roce/vm-run.sh"; exit 2; }
	mount -t tmpfs -o size=2g tmpfs /var/lib/containers
	mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup
	log "loading $ASYNCMSGR_CONTAINER_ARCHIVE"
	"${engine[@]}" load -q -i "$ASYNCMSGR_CONTAINER_ARCHIVE" >/dev/null
	cd "$repo/tests/container" && ../../.build/container.test -test.v
}

case "${1:-}" in
build) build ;;
test) test_all ;;
vm-test) vm_test ;;
*) sed -n '2,11p' "$0"; exit 2 ;;
esac
