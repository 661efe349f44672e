//go:build linux && cgo

/* latloop.c - see latloop.h. */
#include "latloop.h"

#include <errno.h>
#include <stdlib.h>

/* One allocation: the block, then its stamps. */
struct shim_lat *shim_lat_new(int cap)
{
	struct shim_lat *l;

	if (cap <= 0) {
		errno = EINVAL;
		return NULL;
	}
	l = calloc(1, sizeof(*l) + (size_t)cap * sizeof(uint64_t));
	if (!l)
		return NULL;
	l->stamps = (uint64_t *)(l + 1);
	l->cap = cap;
	return l;
}

void shim_lat_free(struct shim_lat *l)
{
	free(l);
}

void shim_lat_reset(struct shim_lat *l)
{
	l->scnt = l->rcnt = l->ccnt = l->signaled = 0;
	l->rposted = l->rx_posted;
	l->consumed = l->recv_ready = 0;
	l->done = l->progress = l->stage = l->timed_out = l->rounds = 0;
}

/* lat_step posts what the loop may post now: it consumes the receive (or the
 * peer's byte) the wait was for, posts the next send and reposts consumed
 * receives (after the send: the reply is on its way first). */
static int lat_step(struct ibv_qp *qp, struct shim_send_batch *sb, struct shim_recv_batch *rb,
		    struct shim_lat *l, int need_recv, int32_t base_flags)
{
	int rc;

	if (need_recv) {
		if (l->mode == SHIM_LAT_SEND)
			l->recv_ready--;
		l->rcnt++;
		l->consumed++;
	}
	if (l->scnt < l->iters) {
		int sig = (l->scnt + 1) % l->cq_mod == 0 || l->scnt + 1 == l->iters;

		sb->wr[0].flags = base_flags | (sig ? IBV_SEND_SIGNALED : 0);
		if (l->mark_addr)
			__atomic_store_n((uint8_t *)(uintptr_t)l->mark_addr, (uint8_t)(l->scnt + 1), __ATOMIC_RELEASE);
		l->stamps[l->scnt] = shim_stamp(l->stamp_tsc);
		rc = shim_post_send(qp, sb, 1);
		if (rc) {
			l->stage = 2;
			return rc;
		}
		l->scnt++;
		l->signaled += sig;
	}
	if (l->mode == SHIM_LAT_SEND && l->consumed >= l->rx_batch && l->rposted < l->iters) {
		int k = l->consumed;

		if (k > l->iters - l->rposted)
			k = l->iters - l->rposted;
		rc = shim_post_recv(qp, rb, k);
		if (rc) {
			l->stage = 1;
			return rc;
		}
		l->rposted += k;
		l->consumed -= k;
	}
	return 0;
}

int shim_lat_run(uintptr_t qpu, uintptr_t sbu, uintptr_t rbu, uintptr_t cqu, uintptr_t lu)
{
	struct ibv_qp *qp = (struct ibv_qp *)qpu;
	struct shim_send_batch *sb = (struct shim_send_batch *)sbu;
	struct shim_recv_batch *rb = (struct shim_recv_batch *)rbu;
	struct ibv_cq *cq = (struct ibv_cq *)cqu;
	struct shim_lat *l = (struct shim_lat *)lu;
	const volatile uint8_t *watch = (const volatile uint8_t *)(uintptr_t)l->watch_addr;
	const int write = l->mode == SHIM_LAT_WRITE;
	const int32_t base_flags = sb->wr[0].flags & ~IBV_SEND_SIGNALED;
	const int32_t tick_mask = l->stamp_tsc ? 0 : 15;
	const uint64_t t0 = l->max_ticks ? shim_stamp(l->stamp_tsc) : 0;
	struct ibv_wc wc[16];
	int32_t rounds = 0;
	int rc = 0;

	l->done = l->progress = l->stage = l->timed_out = 0;
	if (l->iters > l->cap || l->cq_mod <= 0 || (write && !watch) ||
	    (!write && (l->rx_batch <= 0 || l->rx_batch > rb->cap)))
		return -EINVAL;
	for (;;) {
		int need_recv = l->rcnt < l->iters && !(l->scnt < 1 && l->client);
		int sends_met = l->ccnt >= l->signaled;
		int got, i;

		if (l->scnt >= l->iters && l->rcnt >= l->iters && sends_met) {
			l->done = 1;
			break;
		}
		if (sends_met) {
			int ready = !need_recv;

			if (need_recv && write) {
				/* Only the byte is missing: spin on memory alone, as
				 * perftest does; a poll takes the CQ's lock, which
				 * under TCG can stall the vCPU the peer runs on. */
				uint8_t want = (uint8_t)(l->rcnt + 1);

				for (i = 0; i < 64 && __atomic_load_n(watch, __ATOMIC_ACQUIRE) != want; i++)
					;
				ready = i < 64;
			} else if (need_recv) {
				ready = l->recv_ready > 0;
			}
			if (ready) {
				l->progress = 1;
				rc = lat_step(qp, sb, rb, l, need_recv, base_flags);
				if (rc)
					break;
				continue;
			}
		}
		rounds++;
		if (l->max_ticks && (rounds & tick_mask) == 0 && shim_stamp(l->stamp_tsc) - t0 >= l->max_ticks) {
			l->timed_out = 1;
			break;
		}
		if (write && sends_met)
			continue;
		got = ibv_poll_cq(cq, 16, wc);
		if (got < 0) {
			l->stage = 3;
			rc = got == -1 ? -EIO : got;
			break;
		}
		for (i = 0; i < got; i++) {
			if (wc[i].status != IBV_WC_SUCCESS) {
				l->stage = 4;
				l->wc_status = wc[i].status;
				l->wc_opcode = wc[i].opcode;
				l->wc_vendor_err = wc[i].vendor_err;
				rc = -EIO;
				break;
			}
			if (wc[i].opcode & IBV_WC_RECV)
				l->recv_ready++;
			else
				l->ccnt++;
		}
		if (rc)
			break;
		if (got > 0)
			l->progress = 1;
	}
	l->rounds = rounds;
	__atomic_fetch_add(&shim_ctr.poll_calls, (uint64_t)rounds, __ATOMIC_RELAXED);
	return rc;
}
