// Package rdmaidle checks that an idle rdma stack does not burn a core
// (GitHub issue 4): with connections open and no traffic, once
// ms_async_rdma_polling_us has passed, the dispatcher's poller sleeps on the
// completion channels and the process uses under 5% of one core. It measures
// CPU time (utime+stime from /proc/self/stat) over a fixed wall-clock
// window; it asserts CPU usage, never a duration.
//
// It has tests only and runs in the rxe VM (make test-rdma).
package rdmaidle
