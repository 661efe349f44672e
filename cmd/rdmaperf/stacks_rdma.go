//go:build !nordma

package main

// The rdma transport; build with -tags nordma for a posix-only rdmaperf.
import _ "github.com/asyncmsgr/asyncmsgr/rdmastack" // "rdma"
