#!/usr/bin/env bash
# teardown.sh [NAME] — remove the Soft-RoCE device NAME (default rxe0).
# Idempotent: a missing device is not an error.
set -euo pipefail
name=${1:-${RXE_NAME:-rxe0}}
if rdma link show "$name/1" >/dev/null 2>&1; then
	rdma link delete "$name"
	echo "teardown: removed $name"
else
	echo "teardown: no device $name"
fi
