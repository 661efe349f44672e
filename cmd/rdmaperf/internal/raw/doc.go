// Package raw runs rdmaperf's raw-verbs tests (send_lat, write_lat,
// read_lat, send_bw, write_bw) over an RC QP with the loops of perftest:
// ping-pong latency with one timestamp per post, RDMA WRITE latency polling
// the last byte of the buffer, and bandwidth counting completions within a
// send-queue depth. It owns the verbs objects of one run. Its hot loops must
// not allocate and must batch crossings (chained posts, batched polls); it
// must not print anything but through the Reporter it is given.
//
// Files: raw.go (setup, connection, one size's run), lat.go (the latency
// loops step by step), loop.go (the whole latency loop in C), bw.go (the
// bandwidth loops), wait.go (one PostSpin step and the
// stall/peer checks), goruntime.go (how the loops live with the Go runtime).
//
// # The Go runtime on a polling goroutine
//
// A latency loop spends its time in C (verbs.QP.PostSpin), which the Go
// runtime treats as a blocked syscall. From runtime/proc.go (Go 1.26):
// sysmon wakes every 20 µs, doubling after 1 ms without work up to 10 ms; it
// takes the P of a goroutine whose call spans two of its wake-ups when no
// other P is idle (or when the P's run queue is not empty, or after 10 ms in
// any case), and it preempts a goroutine that has not been rescheduled for
// 10 ms (SIGURG, unless GODEBUG=asyncpreemptoff=1) and takes its P at once
// if it is in C. Getting the P back is exitsyscall's slow path; the
// preemption then reschedules the goroutine through the global queue and
// wakes a spinning thread when a P is idle. On the 2-vCPU Soft-RoCE VM, where
// the two peers already spin on both vCPUs, every such thread competes with
// rxe's kernel work.
//
// Measured in the VM (a C busy-wait of the given length called in a loop;
// "slow" is a return to Go that took over 3 µs, i.e. the P had to be
// reacquired; "retaken" is a second, runnable goroutine getting to run
// during the call with GOMAXPROCS=1):
//
//	call      slow, 1 P   slow, 2 P   retaken, 1 P
//	10 µs        2%          1%          0.4%
//	50 µs        5%          4%          2%
//	200 µs      23%         12%          5%
//	1 ms        86%         68%         22%
//	5 ms       100%        100%         65%
//
// So a crossing is bounded by time, not by rounds (a round costs 0.3-2 µs
// under TCG and far less on hardware), and the -n send_lat and write_lat
// runs cross as rarely as that allows: loop.go runs the whole ping-pong in
// C (verbs.LatLoop), round trip after round trip, and returns to Go once a
// millisecond, so that the runtime meets the loop there and never between a
// message and its reply. Their defaults (goruntime.go) are two Ps (one
// idle: sysmon then leaves a goroutine in C alone for up to 10 ms, and never
// starts a thread for its P), crossings of at most 1 ms and no yield (with
// an idle P a Gosched wakes a spinning thread; sysmon's preemption after 10
// ms costs that wake-up once per 10 ms). Counted with perf's sched_switch in
// one boot of a loaded host (send_lat 2 B, 1000 iterations, both sides):
// the step-by-step loop (one P, 15 µs crossings, a yield every 2 ms) had
// its two sysmon threads go to sleep 14600 times and its threads preempted
// about 13400 times (ib_send_lat: 300 switches in all), t_avg 16 ms against
// ib_send_lat's 2.3 ms; the whole loop with one P and 1 ms crossings: 5000
// and 4500, t_avg 2.7 ms (sysmon takes the P of every crossing and wakes a
// thread for it); with two Ps: 1340 and 840, t_avg 92 µs, t_typical 23.3
// µs against ib_send_lat's 27.1 µs. On a host loaded to the point where
// ib_send_lat's own t_typical is 2-3 ms, no setting came near perftest's
// 200 switches: the whole loop with two Ps 9000-17000 sleeps and as many
// preemptions per run, with GODEBUG=asyncpreemptoff=1 6000, with a yield
// every 5 ms 12000, the step loop 16000-20000 (each of sysmon's
// preemptions every 10 ms puts it back on its 20 µs tick for a while); what
// is left is the Go runtime's own threads waking on a machine with no CPU
// to spare, and it is what the tail of these runs measures there.
//
// The other latency runs (-D, read_lat) step with PostSpin, and the
// bandwidth loops post and poll from Go: one P (no idle P, so
// no spinning thread is ever woken), crossings of at most 15 µs (under
// sysmon's shortest tick) and a runtime.Gosched every 2 ms right after a
// post or a batch of receives (so sysmon never sees 10 ms without a reschedule: no preemption
// signal, no P taken; with one P a Gosched wakes nobody). A/B in one boot
// (5 alternating repetitions, medians, 1000 iterations; the previous
// defaults were 2 Ps and 4096 empty rounds per crossing): send_lat 2 B
// t_typical 22.6 → 18.6 µs, t_avg 164 → 49 µs, 99.9th 10.4 → 4.2 ms;
// write_lat 2 B 20.8 → 16.1 µs, t_avg 195 → 103 µs, 99.9th 11.7 → 5.7 ms;
// write_bw 64 KiB 24.9 → 35.2 MB/s; 4 KiB latencies within the noise.
// Measured and not adopted: GODEBUG=asyncpreemptoff=1 (only drops the
// signal; the preemption and the P taken remain), runtime.LockOSThread
// (a yield or preemption of a locked goroutine hands its P to another
// thread and back: two wake-ups), yielding with 2 Ps (each Gosched wakes a
// spinning thread for the idle P).
//
// RDMAPERF_LOOP_US (0 steps with PostSpin instead of the whole loop),
// RDMAPERF_PROCS, RDMAPERF_SPIN_US, RDMAPERF_YIELD_US (0 turns either off),
// RDMAPERF_LOCK_THREAD=1 and RDMAPERF_POST_LIST (the bandwidth client's
// longest chain) override these, to repeat the measurements.
package raw
