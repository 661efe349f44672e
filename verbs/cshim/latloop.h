/* latloop.h - a whole perftest-style latency run inside the shim.
 *
 * shim_spin (shim.h) makes one step of a ping-pong per crossing; a run of
 * 1000 round trips then returns to Go several times per round trip, and each
 * return is where the Go runtime acts (sysmon retaking the P, preemption,
 * exitsyscall). shim_lat_run instead runs the loop of perftest's
 * run_iter_lat_send / run_iter_lat_write itself, iteration after
 * iteration, and returns only at a time bound the caller sets (so that a
 * crossing still ends well inside the runtime's thresholds), at the end of
 * the run, or on a failure. The loop's state lives in struct shim_lat, so
 * the next call carries on where the last one stopped.
 */
#ifndef ASYNCMSGR_LATLOOP_H
#define ASYNCMSGR_LATLOOP_H

#include "shim.h"

enum {
	SHIM_LAT_SEND = 1,	/* SEND ping-pong: wait for a receive, then reply */
	SHIM_LAT_WRITE = 2,	/* RDMA WRITE ping-pong: wait for the peer's last byte */
};

struct shim_lat {
	/* in, set once per run */
	int32_t mode;		/* SHIM_LAT_SEND or SHIM_LAT_WRITE */
	int32_t client;		/* this side sends first */
	int32_t iters;		/* round trips of the run (<= stamps' capacity) */
	int32_t cq_mod;		/* send: signal every cq_mod-th send and the last */
	int32_t rx_batch;	/* send: repost receives this many at a time (<= rb's cap) */
	int32_t rx_posted;	/* send: receives posted before the run */
	int32_t stamp_tsc;	/* stamps are TSC ticks (x86), else CLOCK_MONOTONIC ns */
	int32_t cap;		/* capacity of stamps (set by shim_lat_new) */
	uint64_t mark_addr;	/* write: the outgoing message's last byte */
	uint64_t watch_addr;	/* write: the incoming message's last byte */
	uint64_t max_ticks;	/* each call returns once this much time passed (0: no bound) */
	uint64_t *stamps;	/* out: stamps[i] is the clock just before send i's post */
	/* state, carried from call to call (zeroed by shim_lat_reset) */
	int32_t scnt;		/* sends posted */
	int32_t rcnt;		/* receives (send) or peer bytes (write) consumed */
	int32_t ccnt;		/* send-queue completions seen */
	int32_t signaled;	/* signaled sends posted */
	int32_t rposted;	/* send: receives posted so far */
	int32_t consumed;	/* send: receives consumed and not yet reposted */
	int32_t recv_ready;	/* send: receive completions seen and not yet consumed */
	int32_t pad;
	/* out, per call */
	int32_t done;		/* the run is complete */
	int32_t progress;	/* this call saw a completion or the peer's byte */
	int32_t stage;		/* failure: 1 receive post, 2 send post, 3 poll, 4 completion error */
	int32_t wc_status;	/* stage 4: the failed completion */
	int32_t wc_opcode;
	uint32_t wc_vendor_err;
	int32_t timed_out;	/* max_ticks ended the call */
	int32_t rounds;		/* polling rounds this call made */
};

struct shim_lat *shim_lat_new(int cap);	/* NULL + errno */
void shim_lat_free(struct shim_lat *l);
void shim_lat_reset(struct shim_lat *l);

/* shim_lat_run runs l's loop on qp: the send WR is sb's first (posted with
 * IBV_SEND_SIGNALED added as cq_mod says), receives are reposted from rb's
 * first rx_batch WRs, completions are polled from cq (send and receive
 * completions, the QP's send CQ and receive CQ must both be cq). It returns
 * 0 (l->done says whether the run is over) or -errno; a completion with an
 * error status is -EIO with stage 4. It never blocks and never sleeps. */
int shim_lat_run(uintptr_t qp, uintptr_t sb, uintptr_t rb, uintptr_t cq, uintptr_t l);

#endif
