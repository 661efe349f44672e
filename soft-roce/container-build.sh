#!/usr/bin/env bash
# container-build.sh [DESTDIR] — the build steps of the Dockerfile: install
# rdma-core's libraries and tools, then build asyncmsgr's commands into
# DESTDIR (default /usr/local/bin). CI runs it inside the image build
# (soft-roce/container.sh, from make test).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=soft-roce/deps.sh
. "$here/deps.sh"
ensure_build_deps
dest=${1:-/usr/local/bin}
mkdir -p "$dest"
cd "$here/.."
for c in cmd/*/; do
	[ -n "$(ls "$c"*.go 2>/dev/null)" ] || continue
	go build -trimpath -o "$dest/$(basename "$c")" "./$c"
	echo "container-build: built $dest/$(basename "$c")"
done
