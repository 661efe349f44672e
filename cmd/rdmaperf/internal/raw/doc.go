// Package raw runs rdmaperf's raw-verbs tests (send_lat, write_lat,
// read_lat, send_bw, write_bw) over an RC QP with the loops of perftest:
// ping-pong latency with one timestamp per post, RDMA WRITE latency polling
// the last byte of the buffer, and bandwidth counting completions within a
// send-queue depth. It owns the verbs objects of one run. Its hot loops must
// not allocate and must batch crossings (chained posts, batched polls); it
// must not print anything but through the Reporter it is given.
package raw
