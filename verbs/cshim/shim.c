//go:build linux && cgo

/* shim.c - see shim.h. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

struct shim_counters shim_ctr;

#define CTR_ADD(f, v) __atomic_fetch_add(&shim_ctr.f, (uint64_t)(v), __ATOMIC_RELAXED)

/* ---------- reusable arrays ---------- */

/* A send and a receive batch are the same four arrays of different element
 * types: one definition of their constructor and destructor for both. */
#define SHIM_BATCH_FUNCS(kind)								\
struct shim_##kind##_batch *shim_##kind##_batch_new(int cap, int sge_cap)		\
{											\
	struct shim_##kind##_batch *b;							\
											\
	if (cap <= 0 || sge_cap <= 0) {							\
		errno = EINVAL;								\
		return NULL;								\
	}										\
	b = calloc(1, sizeof(*b));							\
	if (!b)										\
		return NULL;								\
	b->cap = cap;									\
	b->sge_cap = sge_cap;								\
	b->wr = calloc(cap, sizeof(*b->wr));						\
	b->sge = calloc(sge_cap, sizeof(*b->sge));					\
	b->ibv_wr = calloc(cap, sizeof(*b->ibv_wr));					\
	b->ibv_sge = calloc(sge_cap, sizeof(*b->ibv_sge));				\
	if (!b->wr || !b->sge || !b->ibv_wr || !b->ibv_sge) {				\
		shim_##kind##_batch_free(b);						\
		errno = ENOMEM;								\
		return NULL;								\
	}										\
	return b;									\
}											\
											\
void shim_##kind##_batch_free(struct shim_##kind##_batch *b)				\
{											\
	if (!b)										\
		return;									\
	free(b->wr);									\
	free(b->sge);									\
	free(b->ibv_wr);								\
	free(b->ibv_sge);								\
	free(b);									\
}

SHIM_BATCH_FUNCS(send)
SHIM_BATCH_FUNCS(recv)

struct shim_wc_array *shim_wc_array_new(int cap)
{
	struct shim_wc_array *a;

	if (cap <= 0) {
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->cap = cap;
	a->ibv_wc = calloc(cap, sizeof(*a->ibv_wc));
	a->wc = calloc(cap, sizeof(*a->wc));
	a->spin = calloc(1, sizeof(*a->spin));
	if (!a->ibv_wc || !a->wc || !a->spin) {
		shim_wc_array_free(a);
		errno = ENOMEM;
		return NULL;
	}
	return a;
}

void shim_wc_array_free(struct shim_wc_array *a)
{
	if (!a)
		return;
	free(a->ibv_wc);
	free(a->wc);
	free(a->spin);
	free(a);
}

/* ---------- batched data path ---------- */

static int copy_sges(struct ibv_sge *dst, const struct shim_sge *src, int off, int n, int cap)
{
	int j;

	if (n < 0 || off < 0 || off + n > cap)
		return -EINVAL;
	for (j = 0; j < n; j++) {
		dst[off + j].addr = src[off + j].addr;
		dst[off + j].length = src[off + j].length;
		dst[off + j].lkey = src[off + j].lkey;
	}
	return 0;
}

/* posted ends a post call of n WRs that returned rc (0, or an errno of
 * either sign, as providers differ): *bad is how many were accepted (on
 * failure bad_idx, the failed WR's index) and the result 0 or -errno. */
static int posted(int rc, int bad_idx, int n, int *bad)
{
	if (rc) {
		*bad = bad_idx;
		return rc > 0 ? -rc : rc;
	}
	*bad = n;
	return 0;
}

int shim_post_send(struct ibv_qp *qp, struct shim_send_batch *b, int n)
{
	int *bad = &b->bad;
	struct ibv_send_wr *bad_wr = NULL;
	int i, rc;

	*bad = 0;
	if (n <= 0 || n > b->cap)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		const struct shim_send_wr *s = &b->wr[i];
		struct ibv_send_wr *w = &b->ibv_wr[i];

		rc = copy_sges(b->ibv_sge, b->sge, s->sge_off, s->num_sge, b->sge_cap);
		if (rc) {
			*bad = i;
			return rc;
		}
		memset(w, 0, sizeof(*w));
		w->wr_id = s->wr_id;
		w->next = (i + 1 < n) ? &b->ibv_wr[i + 1] : NULL;
		w->sg_list = s->num_sge ? &b->ibv_sge[s->sge_off] : NULL;
		w->num_sge = s->num_sge;
		w->opcode = (enum ibv_wr_opcode)s->opcode;
		w->send_flags = (unsigned int)s->flags;
		switch (s->opcode) {
		case IBV_WR_SEND_WITH_IMM:
			w->imm_data = htonl(s->imm);
			break;
		case IBV_WR_RDMA_WRITE_WITH_IMM:
			w->imm_data = htonl(s->imm);
			/* fallthrough */
		case IBV_WR_RDMA_WRITE:
		case IBV_WR_RDMA_READ:
			w->wr.rdma.remote_addr = s->remote_addr;
			w->wr.rdma.rkey = s->rkey;
			break;
		default:
			break;
		}
	}
	CTR_ADD(post_send_calls, 1);
	CTR_ADD(post_send_wrs, n);
	rc = ibv_post_send(qp, b->ibv_wr, &bad_wr);
	return posted(rc, bad_wr ? (int)(bad_wr - b->ibv_wr) : 0, n, bad);
}

static int build_recv(struct shim_recv_batch *b, int n, int *bad)
{
	int i, rc;

	for (i = 0; i < n; i++) {
		const struct shim_recv_wr *s = &b->wr[i];
		struct ibv_recv_wr *w = &b->ibv_wr[i];

		rc = copy_sges(b->ibv_sge, b->sge, s->sge_off, s->num_sge, b->sge_cap);
		if (rc) {
			*bad = i;
			return rc;
		}
		w->wr_id = s->wr_id;
		w->next = (i + 1 < n) ? &b->ibv_wr[i + 1] : NULL;
		w->sg_list = s->num_sge ? &b->ibv_sge[s->sge_off] : NULL;
		w->num_sge = s->num_sge;
	}
	return 0;
}

typedef int (*recv_post_fn)(void *obj, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);

static int qp_recv_post(void *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	return ibv_post_recv((struct ibv_qp *)qp, wr, bad);
}

static int srq_recv_post(void *srq, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	return ibv_post_srq_recv((struct ibv_srq *)srq, wr, bad);
}

/* post_recv_batch links b's first n WRs and posts them with one post call
 * (a QP's or an SRQ's receive queue). */
static int post_recv_batch(void *obj, recv_post_fn post, struct shim_recv_batch *b, int n)
{
	int *bad = &b->bad;
	struct ibv_recv_wr *bad_wr = NULL;
	int rc;

	*bad = 0;
	if (n <= 0 || n > b->cap)
		return -EINVAL;
	rc = build_recv(b, n, bad);
	if (rc)
		return rc;
	CTR_ADD(post_recv_calls, 1);
	CTR_ADD(post_recv_wrs, n);
	rc = post(obj, b->ibv_wr, &bad_wr);
	return posted(rc, bad_wr ? (int)(bad_wr - b->ibv_wr) : 0, n, bad);
}

int shim_post_recv(struct ibv_qp *qp, struct shim_recv_batch *b, int n)
{
	return post_recv_batch(qp, qp_recv_post, b, n);
}

int shim_post_srq_recv(struct ibv_srq *srq, struct shim_recv_batch *b, int n)
{
	return post_recv_batch(srq, srq_recv_post, b, n);
}

static void convert_wcs(struct shim_wc_array *a, int from, int n);

int shim_poll_cq(struct ibv_cq *cq, struct shim_wc_array *a, int n)
{
	int got;

	if (n <= 0 || n > a->cap)
		return -EINVAL;
	CTR_ADD(poll_calls, 1);
	got = ibv_poll_cq(cq, n, a->ibv_wc);
	if (got < 0)
		return got == -1 ? -EIO : got;
	convert_wcs(a, 0, got);
	CTR_ADD(poll_wcs, got);
	return got;
}

static void convert_wcs(struct shim_wc_array *a, int from, int n)
{
	int i;

	for (i = from; i < from + n; i++) {
		const struct ibv_wc *w = &a->ibv_wc[i];
		struct shim_wc *s = &a->wc[i];

		s->wr_id = w->wr_id;
		s->status = w->status;
		s->opcode = w->opcode;
		s->vendor_err = w->vendor_err;
		s->byte_len = w->byte_len;
		s->imm = (w->wc_flags & IBV_WC_WITH_IMM) ? ntohl(w->imm_data) : 0;
		s->qp_num = w->qp_num;
		s->src_qp = w->src_qp;
		s->wc_flags = w->wc_flags;
		s->pkey_index = w->pkey_index;
		s->slid = w->slid;
		s->sl = w->sl;
		s->dlid_path_bits = w->dlid_path_bits;
	}
}

/* One polling round of shim_spin on one CQ (first: the step's cq, bounded
 * by limit1): poll into the free tail of the array, convert and count.
 * Returns the number polled or -errno. */
static int spin_poll(struct ibv_cq *cq, struct shim_wc_array *a, struct shim_spin *sp, int *failed, int first)
{
	int i, got, lim = (sp->limit > 0 && sp->limit < a->cap) ? sp->limit : a->cap;
	int room = lim - sp->nwc;

	if (first && sp->limit1 > 0 && room > sp->limit1 - sp->nwc1)
		room = sp->limit1 - sp->nwc1;

	if (room <= 0)
		return 0;
	got = ibv_poll_cq(cq, room, &a->ibv_wc[sp->nwc]);
	if (got < 0)
		return got == -1 ? -EIO : got;
	if (got == 0)
		return 0;
	convert_wcs(a, sp->nwc, got);
	if (first)
		sp->nwc1 += got;
	for (i = sp->nwc; i < sp->nwc + got; i++) {
		if (a->ibv_wc[i].status != IBV_WC_SUCCESS)
			*failed = 1;
		if (a->ibv_wc[i].opcode & IBV_WC_RECV)
			sp->got_recv++;
		else
			sp->got_send++;
	}
	sp->nwc += got;
	return got;
}

/* The completions the wait needs are all there (the watched byte aside). */
static int spin_cq_met(const struct shim_spin *sp)
{
	return sp->got_send >= sp->want_send && sp->got_recv >= sp->want_recv &&
	       sp->nwc >= sp->want_any;
}

static int spin_satisfied(const struct shim_spin *sp)
{
	return sp->got_send >= sp->want_send && sp->got_recv >= sp->want_recv &&
	       sp->nwc >= sp->want_any && (!sp->watch_addr || sp->watched);
}

uint64_t shim_stamp(int tsc)
{
	struct timespec ts;

#if defined(__x86_64__) || defined(__i386__)
	if (tsc)
		return __rdtsc();
#else
	(void)tsc;
#endif
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int shim_spin(uintptr_t qpu, uintptr_t sbu, uintptr_t rbu, uintptr_t cqu, uintptr_t cq2u, uintptr_t au)
{
	struct ibv_qp *qp = (struct ibv_qp *)qpu;
	struct ibv_cq *cq = (struct ibv_cq *)cqu, *cq2 = (struct ibv_cq *)cq2u;
	struct shim_wc_array *a = (struct shim_wc_array *)au;
	struct shim_spin *sp = a->spin;
	const volatile uint8_t *watch = (const volatile uint8_t *)(uintptr_t)sp->watch_addr;
	int32_t empty = 0, rounds = 0, polls = 0;
	int failed = 0, rc = 0, got;
	/* The clock is read every round with the TSC (an instruction), every
	 * 16th with clock_gettime (a VM exit where the clocksource is hpet). */
	const int32_t tick_mask = sp->stamp_tsc ? 0 : 15;
	const uint64_t t0 = sp->max_ticks ? shim_stamp(sp->stamp_tsc) : 0;

	sp->nwc = sp->nwc1 = sp->got_send = sp->got_recv = 0;
	sp->watched = sp->done = sp->stage = sp->bad = sp->sent = sp->timed_out = 0;
	sp->stamp = 0;
	if (cq2 == cq)
		cq2 = NULL;
	if (sp->recv_n > 0) {
		rc = shim_post_recv(qp, (struct shim_recv_batch *)rbu, sp->recv_n);
		if (rc) {
			sp->stage = 1;
			sp->bad = ((struct shim_recv_batch *)rbu)->bad;
			return rc;
		}
	}
	if (sp->send_n > 0 && !sp->send_after) {
		rc = shim_post_send(qp, (struct shim_send_batch *)sbu, sp->send_n);
		if (rc) {
			sp->stage = 2;
			sp->bad = ((struct shim_send_batch *)sbu)->bad;
			return rc;
		}
		sp->sent = 1;
	}
	for (;;) {
		int progress = 0;

		if (watch && !sp->watched &&
		    __atomic_load_n(watch, __ATOMIC_ACQUIRE) == sp->watch_want) {
			sp->watched = 1;
			progress = 1;
		}
		if (spin_satisfied(sp)) {
			sp->done = 1;
			break;
		}
		rounds++;
		if (sp->max_ticks && (rounds & tick_mask) == 0 &&
		    shim_stamp(sp->stamp_tsc) - t0 >= sp->max_ticks) {
			sp->timed_out = 1;
			break;
		}
		if (watch && spin_cq_met(sp)) {
			/* Only the byte is missing: spin on memory alone, as
			 * perftest does once its send completion is in. A poll
			 * takes the CQ's lock (an atomic), which under TCG can
			 * stall the other vCPU, where the peer works. */
			int i;

			for (i = 0; i < 64 && __atomic_load_n(watch, __ATOMIC_ACQUIRE) != sp->watch_want; i++)
				;
			if (i < 64)
				continue;
			if (++empty >= sp->spins) {
				sp->done = 0;
				break;
			}
			continue;
		}
		polls++;
		got = spin_poll(cq, a, sp, &failed, 1);
		if (got < 0) {
			rc = got;
			break;
		}
		progress |= got > 0;
		if (cq2 && !failed) {
			polls++;
			got = spin_poll(cq2, a, sp, &failed, 0);
			if (got < 0) {
				rc = got;
				break;
			}
			progress |= got > 0;
		}
		if (failed || sp->nwc >= a->cap || (sp->limit > 0 && sp->nwc >= sp->limit))
			break;
		if (!progress && ++empty >= sp->spins) {
			/* One last look, so that a budget of 0 still reports a
			 * wait the polls above just satisfied. */
			if (watch && !sp->watched &&
			    __atomic_load_n(watch, __ATOMIC_ACQUIRE) == sp->watch_want)
				sp->watched = 1;
			sp->done = spin_satisfied(sp);
			break;
		}
	}
	if (!sp->done && !failed && rc == 0 && spin_satisfied(sp))
		sp->done = 1;
	if (sp->done && sp->send_n > 0 && sp->send_after) {
		if (sp->mark_addr)
			__atomic_store_n((uint8_t *)(uintptr_t)sp->mark_addr, sp->mark_val, __ATOMIC_RELEASE);
		sp->stamp = shim_stamp(sp->stamp_tsc);
		rc = shim_post_send(qp, (struct shim_send_batch *)sbu, sp->send_n);
		if (rc) {
			sp->stage = 2;
			sp->bad = ((struct shim_send_batch *)sbu)->bad;
		} else {
			sp->sent = 1;
		}
	}
	sp->rounds = rounds;
	CTR_ADD(poll_calls, polls);
	CTR_ADD(poll_wcs, sp->nwc);
	return rc ? rc : sp->nwc;
}

/* ---------- devices ---------- */

struct ibv_context *shim_open_device(const char *name)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int i, n = 0, err = ENODEV;

	list = ibv_get_device_list(&n);
	if (!list)
		return NULL; /* errno set (ENOSYS when no uverbs) */
	for (i = 0; i < n; i++) {
		if (name && name[0] && strcmp(ibv_get_device_name(list[i]), name) != 0)
			continue;
		ctx = ibv_open_device(list[i]);
		if (!ctx)
			err = errno ? errno : EIO;
		break;
	}
	ibv_free_device_list(list);
	if (!ctx)
		errno = err;
	return ctx;
}

int shim_set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0)
		return -errno;
	if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int shim_query_device(struct ibv_context *ctx, struct shim_device_attr *out)
{
	struct ibv_device_attr a;
	int rc;

	memset(&a, 0, sizeof(a));
	rc = ibv_query_device(ctx, &a);
	if (rc)
		return rc > 0 ? -rc : (errno ? -errno : -EIO);
	memset(out, 0, sizeof(*out));
	memcpy(out->fw_ver, a.fw_ver, sizeof(out->fw_ver) - 1);
	out->node_guid = a.node_guid;
	out->sys_image_guid = a.sys_image_guid;
	out->max_mr_size = a.max_mr_size;
	out->vendor_id = a.vendor_id;
	out->vendor_part_id = a.vendor_part_id;
	out->hw_ver = a.hw_ver;
	out->max_qp = a.max_qp;
	out->max_qp_wr = a.max_qp_wr;
	out->max_sge = a.max_sge;
	out->max_cq = a.max_cq;
	out->max_cqe = a.max_cqe;
	out->max_mr = a.max_mr;
	out->max_pd = a.max_pd;
	out->max_qp_rd_atom = a.max_qp_rd_atom;
	out->max_srq = a.max_srq;
	out->max_srq_wr = a.max_srq_wr;
	out->max_srq_sge = a.max_srq_sge;
	out->phys_port_cnt = a.phys_port_cnt;
	return 0;
}

int shim_query_port(struct ibv_context *ctx, int port, struct shim_port_attr *out)
{
	struct ibv_port_attr a;
	int rc;

	if (port < 1 || port > 255)
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	rc = ibv_query_port(ctx, (uint8_t)port, &a);
	if (rc)
		return rc > 0 ? -rc : (errno ? -errno : -EIO);
	memset(out, 0, sizeof(*out));
	out->state = a.state;
	out->max_mtu = a.max_mtu;
	out->active_mtu = a.active_mtu;
	out->gid_tbl_len = a.gid_tbl_len;
	out->max_msg_sz = a.max_msg_sz;
	out->lid = a.lid;
	out->link_layer = a.link_layer;
	out->active_speed = a.active_speed;
	out->active_width = a.active_width;
	out->phys_state = a.phys_state;
	return 0;
}

int shim_query_gid_table(struct ibv_context *ctx, struct ibv_gid_entry *out, int max)
{
	ssize_t n;

	if (max <= 0)
		return -EINVAL;
	n = ibv_query_gid_table(ctx, out, (size_t)max, 0);
	if (n < 0)
		return (int)n;
	return (int)n;
}

int shim_query_gid(struct ibv_context *ctx, int port, int index, uint8_t gid[16])
{
	union ibv_gid g;
	int rc;

	rc = ibv_query_gid(ctx, (uint8_t)port, index, &g);
	if (rc)
		return errno ? -errno : -EINVAL;
	memcpy(gid, g.raw, 16);
	return 0;
}

/* ---------- QPs ---------- */

static void fill_qp_init(struct ibv_qp_init_attr *a, const struct shim_qp_init *in)
{
	memset(a, 0, sizeof(*a));
	a->send_cq = in->send_cq;
	a->recv_cq = in->recv_cq;
	a->srq = in->srq;
	a->cap.max_send_wr = in->max_send_wr;
	a->cap.max_recv_wr = in->srq ? 0 : in->max_recv_wr;
	a->cap.max_send_sge = in->max_send_sge;
	a->cap.max_recv_sge = in->srq ? 0 : in->max_recv_sge;
	a->cap.max_inline_data = in->max_inline_data;
	a->qp_type = (enum ibv_qp_type)in->qp_type;
	a->sq_sig_all = in->sq_sig_all;
}

static void read_caps(struct shim_qp_init *in, const struct ibv_qp_cap *c)
{
	in->max_send_wr = c->max_send_wr;
	in->max_recv_wr = c->max_recv_wr;
	in->max_send_sge = c->max_send_sge;
	in->max_recv_sge = c->max_recv_sge;
	in->max_inline_data = c->max_inline_data;
}

struct ibv_qp *shim_create_qp(struct ibv_pd *pd, struct shim_qp_init *init)
{
	struct ibv_qp_init_attr a;
	struct ibv_qp *qp;

	fill_qp_init(&a, init);
	qp = ibv_create_qp(pd, &a);
	if (!qp) {
		if (!errno)
			errno = EINVAL;
		return NULL;
	}
	read_caps(init, &a.cap);
	return qp;
}

int shim_rdma_create_qp(struct rdma_cm_id *id, struct ibv_pd *pd, struct shim_qp_init *init)
{
	struct ibv_qp_init_attr a;

	fill_qp_init(&a, init);
	if (rdma_create_qp(id, pd, &a))
		return errno ? -errno : -EINVAL;
	read_caps(init, &a.cap);
	return 0;
}

uint32_t shim_qp_num(struct ibv_qp *qp)
{
	return qp->qp_num;
}

static int modify(struct ibv_qp *qp, struct ibv_qp_attr *a, int mask)
{
	int rc = ibv_modify_qp(qp, a, mask);

	if (rc)
		return rc > 0 ? -rc : (errno ? -errno : -EINVAL);
	return 0;
}

int shim_qp_to_init(struct ibv_qp *qp, struct shim_qp_params *p)
{
	struct ibv_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.pkey_index = (uint16_t)p->pkey_index;
	a.port_num = (uint8_t)p->port_num;
	a.qp_access_flags = (unsigned int)p->access_flags;
	return modify(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
}

int shim_qp_to_rtr(struct ibv_qp *qp, struct shim_qp_params *p)
{
	struct ibv_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = (enum ibv_mtu)p->path_mtu;
	a.dest_qp_num = p->dest_qp_num;
	a.rq_psn = p->rq_psn & 0xffffff;
	a.max_dest_rd_atomic = (uint8_t)p->max_dest_rd_atomic;
	a.min_rnr_timer = (uint8_t)p->min_rnr_timer;
	a.ah_attr.dlid = (uint16_t)p->dlid;
	a.ah_attr.sl = (uint8_t)p->sl;
	a.ah_attr.src_path_bits = 0;
	a.ah_attr.port_num = (uint8_t)p->port_num;
	if (p->is_global) {
		a.ah_attr.is_global = 1;
		memcpy(a.ah_attr.grh.dgid.raw, p->dgid, 16);
		a.ah_attr.grh.flow_label = (uint32_t)p->flow_label;
		a.ah_attr.grh.hop_limit = (uint8_t)p->hop_limit;
		a.ah_attr.grh.sgid_index = (uint8_t)p->sgid_index;
		a.ah_attr.grh.traffic_class = (uint8_t)p->traffic_class;
	}
	return modify(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				      IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
}

int shim_qp_to_rts(struct ibv_qp *qp, struct shim_qp_params *p)
{
	struct ibv_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = (uint8_t)p->timeout;
	a.retry_cnt = (uint8_t)p->retry_cnt;
	a.rnr_retry = (uint8_t)p->rnr_retry;
	a.sq_psn = p->sq_psn & 0xffffff;
	a.max_rd_atomic = (uint8_t)p->max_rd_atomic;
	return modify(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
				      IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
}

int shim_qp_to_err(struct ibv_qp *qp)
{
	struct ibv_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_ERR;
	return modify(qp, &a, IBV_QP_STATE);
}

int shim_qp_state(struct ibv_qp *qp)
{
	struct ibv_qp_attr a;
	struct ibv_qp_init_attr ia;
	int rc;

	memset(&a, 0, sizeof(a));
	rc = ibv_query_qp(qp, &a, IBV_QP_STATE, &ia);
	if (rc)
		return rc > 0 ? -rc : (errno ? -errno : -EINVAL);
	return a.qp_state;
}

/* ---------- events ---------- */

int shim_get_async_event(struct ibv_context *ctx, struct shim_async_event *out)
{
	struct ibv_async_event ev;

	if (ibv_get_async_event(ctx, &ev))
		return errno ? -errno : -EIO;
	memset(out, 0, sizeof(*out));
	out->type = ev.event_type;
	switch (ev.event_type) {
	case IBV_EVENT_QP_FATAL:
	case IBV_EVENT_QP_REQ_ERR:
	case IBV_EVENT_QP_ACCESS_ERR:
	case IBV_EVENT_COMM_EST:
	case IBV_EVENT_SQ_DRAINED:
	case IBV_EVENT_PATH_MIG:
	case IBV_EVENT_PATH_MIG_ERR:
	case IBV_EVENT_QP_LAST_WQE_REACHED:
		out->qp = (uintptr_t)ev.element.qp;
		out->qp_num = ev.element.qp ? ev.element.qp->qp_num : 0;
		break;
	case IBV_EVENT_CQ_ERR:
		out->cq = (uintptr_t)ev.element.cq;
		break;
	case IBV_EVENT_SRQ_ERR:
	case IBV_EVENT_SRQ_LIMIT_REACHED:
		out->srq = (uintptr_t)ev.element.srq;
		break;
	case IBV_EVENT_PORT_ACTIVE:
	case IBV_EVENT_PORT_ERR:
	case IBV_EVENT_LID_CHANGE:
	case IBV_EVENT_PKEY_CHANGE:
	case IBV_EVENT_SM_CHANGE:
	case IBV_EVENT_CLIENT_REREGISTER:
	case IBV_EVENT_GID_CHANGE:
		out->port = ev.element.port_num;
		break;
	default:
		break;
	}
	ibv_ack_async_event(&ev);
	return 0;
}

int shim_get_cq_event(struct ibv_comp_channel *ch, uintptr_t *cq)
{
	struct ibv_cq *c = NULL;
	void *ctx = NULL;

	if (ibv_get_cq_event(ch, &c, &ctx))
		return errno ? -errno : -EIO;
	*cq = (uintptr_t)c;
	return 0;
}

/* ---------- rdma_cm ---------- */

int shim_sockaddr(struct sockaddr_storage *ss, int family, const uint8_t *ip, int port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;

		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)port);
		memcpy(&s->sin_addr, ip, 4);
		return 0;
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

		s->sin6_family = AF_INET6;
		s->sin6_port = htons((uint16_t)port);
		memcpy(&s->sin6_addr, ip, 16);
		return 0;
	}
	return -EAFNOSUPPORT;
}

int shim_cm_bind(struct rdma_cm_id *id, int family, const uint8_t *ip, int port)
{
	struct sockaddr_storage ss;
	int rc = shim_sockaddr(&ss, family, ip, port);

	if (rc)
		return rc;
	if (rdma_bind_addr(id, (struct sockaddr *)&ss))
		return errno ? -errno : -EINVAL;
	return 0;
}

int shim_cm_resolve_addr(struct rdma_cm_id *id, int sfamily, const uint8_t *sip, int sport,
			 int dfamily, const uint8_t *dip, int dport, int timeout_ms)
{
	struct sockaddr_storage src, dst;
	int rc;

	rc = shim_sockaddr(&dst, dfamily, dip, dport);
	if (rc)
		return rc;
	if (sfamily) {
		rc = shim_sockaddr(&src, sfamily, sip, sport);
		if (rc)
			return rc;
	}
	if (rdma_resolve_addr(id, sfamily ? (struct sockaddr *)&src : NULL,
			      (struct sockaddr *)&dst, timeout_ms))
		return errno ? -errno : -EINVAL;
	return 0;
}

int shim_cm_local_addr(struct rdma_cm_id *id, uint8_t ip[16], int *family, int *port)
{
	struct sockaddr *sa = rdma_get_local_addr(id);

	memset(ip, 0, 16);
	*family = 0;
	*port = 0;
	if (!sa)
		return -ENOTCONN;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)sa;

		memcpy(ip, &s->sin_addr, 4);
		*port = ntohs(s->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)sa;

		memcpy(ip, &s->sin6_addr, 16);
		*port = ntohs(s->sin6_port);
	}
	*family = sa->sa_family;
	return 0;
}

static void fill_conn(struct rdma_conn_param *c, struct shim_conn_param *p)
{
	memset(c, 0, sizeof(*c));
	c->responder_resources = p->responder_resources;
	c->initiator_depth = p->initiator_depth;
	c->flow_control = p->flow_control;
	c->retry_count = p->retry_count;
	c->rnr_retry_count = p->rnr_retry_count;
	if (p->private_data_len) {
		c->private_data = p->private_data;
		c->private_data_len = p->private_data_len;
	}
}

/* cm_conn runs rdma_connect or rdma_accept (call) on id with the
 * connection parameters p. */
static int cm_conn(int (*call)(struct rdma_cm_id *, struct rdma_conn_param *),
		   struct rdma_cm_id *id, struct shim_conn_param *p)
{
	struct rdma_conn_param c;

	fill_conn(&c, p);
	if (call(id, &c))
		return errno ? -errno : -EINVAL;
	return 0;
}

int shim_cm_connect(struct rdma_cm_id *id, struct shim_conn_param *p)
{
	return cm_conn(rdma_connect, id, p);
}

int shim_cm_accept(struct rdma_cm_id *id, struct shim_conn_param *p)
{
	return cm_conn(rdma_accept, id, p);
}

int shim_cm_get_event(struct rdma_event_channel *ch, struct shim_cm_event *out)
{
	struct rdma_cm_event *ev = NULL;

	if (rdma_get_cm_event(ch, &ev))
		return errno ? -errno : -EIO;
	memset(out, 0, sizeof(*out));
	out->event = (uintptr_t)ev;
	out->id = (uintptr_t)ev->id;
	out->listen_id = (uintptr_t)ev->listen_id;
	out->verbs = ev->id ? (uintptr_t)ev->id->verbs : 0;
	out->type = ev->event;
	out->status = ev->status;
	if ((ev->event == RDMA_CM_EVENT_CONNECT_REQUEST || ev->event == RDMA_CM_EVENT_ESTABLISHED ||
	     ev->event == RDMA_CM_EVENT_REJECTED) &&
	    ev->param.conn.private_data && ev->param.conn.private_data_len) {
		uint8_t n = ev->param.conn.private_data_len;

		out->private_data_len = n;
		memcpy(out->private_data, ev->param.conn.private_data, n);
	}
	return 0;
}
