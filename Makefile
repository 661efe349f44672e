# asyncmsgr — see README.md. Every target installs what it needs (Debian).
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin

.PHONY: all deps test-deps build demo test test-host test-rdma test-container bench clean

all: build

# deps installs the Debian packages to build against rdma-core and, when the
# host kernel has no rdma_rxe, to boot the Soft-RoCE VM.
deps:
	@command -v go >/dev/null || { echo "make: Go 1.26 is required (https://go.dev/doc/install)"; exit 1; }
	@. soft-roce/deps.sh && ensure_build_deps && \
	  if ! ls /sys/class/infiniband 2>/dev/null | grep -q . ; then ensure_vm_deps; fi

build: deps
	go build ./...

# demo is the main job: rdmaperf and C perftest side by side on a real rxe
# device (in the VM when the host has none). demo and bench share their
# driver, cmd/rdmabench.
demo: deps
	soft-roce/demo.sh

test: deps test-deps
	go run ./tests/run all

test-host: deps test-deps
	go run ./tests/run host

test-rdma: deps test-deps
	go run ./tests/run rdma

# test-container is make test's container part alone: the image built with
# podman (no registry), tests/container on the host and on rxe in the VM.
test-container: deps
	TESTRUN_PKGS='^tests/container$$' go run ./tests/run rdma

test-deps:
	@. soft-roce/deps.sh && ensure_test_deps

# bench rewrites BENCHMARKS.md and BENCHMARKS.png (BENCH_REPS, BENCH_SIZES,
# BENCH_QUICK: see soft-roce/bench.sh).
bench: deps
	soft-roce/bench.sh

clean:
	rm -rf .build
