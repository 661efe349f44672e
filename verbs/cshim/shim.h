/* shim.h - the C half of asyncmsgr's cgo shim over libibverbs and librdmacm.
 *
 * Rules: C never keeps a Go pointer. Every array the shim reads or writes
 * (work requests, scatter/gather entries, work completions) is allocated here
 * with malloc and reused by the Go side. Functions that return int follow the
 * convention "0 or a positive count on success, -errno on failure".
 */
#ifndef ASYNCMSGR_SHIM_H
#define ASYNCMSGR_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

/* Crossing counters, updated atomically by the shim, read by Go. */
struct shim_counters {
	uint64_t post_send_calls;
	uint64_t post_send_wrs;
	uint64_t post_recv_calls;
	uint64_t post_recv_wrs;
	uint64_t poll_calls;
	uint64_t poll_wcs;
};
extern struct shim_counters shim_ctr;

/* Plain (union-free) descriptions the Go side fills in C memory. */
struct shim_sge {
	uint64_t addr;
	uint32_t length;
	uint32_t lkey;
};

struct shim_send_wr {
	uint64_t wr_id;
	uint64_t remote_addr;
	uint32_t rkey;
	uint32_t imm;      /* host order; converted to network order by the shim */
	int32_t opcode;    /* enum ibv_wr_opcode */
	int32_t flags;     /* enum ibv_send_flags */
	int32_t num_sge;
	int32_t sge_off;   /* index of the first SGE in the batch's SGE array */
};

struct shim_recv_wr {
	uint64_t wr_id;
	int32_t num_sge;
	int32_t sge_off;
};

struct shim_wc {
	uint64_t wr_id;
	int32_t status;
	int32_t opcode;
	uint32_t vendor_err;
	uint32_t byte_len;
	uint32_t imm;      /* host order */
	uint32_t qp_num;
	uint32_t src_qp;
	uint32_t wc_flags;
	uint16_t pkey_index;
	uint16_t slid;
	uint8_t sl;
	uint8_t dlid_path_bits;
	uint8_t pad[6];
};

/* A reusable batch of send WRs: the plain array Go fills, and the ibv array
 * the shim builds the chain in. */
struct shim_send_batch {
	int cap;
	int bad;	/* index of the first WR not posted by the last post */
	int sge_cap;
	struct shim_send_wr *wr;
	struct shim_sge *sge;
	struct ibv_send_wr *ibv_wr;
	struct ibv_sge *ibv_sge;
};

struct shim_recv_batch {
	int cap;
	int bad;
	int sge_cap;
	struct shim_recv_wr *wr;
	struct shim_sge *sge;
	struct ibv_recv_wr *ibv_wr;
	struct ibv_sge *ibv_sge;
};

/* The in/out block of shim_spin, kept in C memory next to the WC array it
 * fills (one per array, so one per CQ owner). */
struct shim_spin {
	/* in */
	uint64_t watch_addr;	/* 0, or the address of a byte the wait also needs */
	int32_t send_n;		/* send WRs of the batch to post (0: none) */
	int32_t recv_n;		/* receive WRs of the batch to post first (0: none) */
	int32_t want_send;	/* wait for this many send-queue completions */
	int32_t want_recv;	/* and this many receive completions */
	int32_t spins;		/* budget: empty polling rounds before returning */
	uint8_t watch_want;	/* the value the watched byte must show */
	uint8_t pad[3];
	/* out */
	int32_t nwc;		/* completions written to the array */
	int32_t got_send;	/* of which send-queue completions */
	int32_t got_recv;	/* and receive completions */
	int32_t watched;	/* the watched byte showed watch_want */
	int32_t done;		/* the wait was satisfied */
	int32_t stage;		/* on a post failure: 1 receive post, 2 send post */
	int32_t bad;		/* and the index of the first WR not posted */
	int32_t rounds;		/* polling rounds made */
	int32_t limit;		/* in: at most this many completions (0: the array's cap) */
	int32_t want_any;	/* in: and at least this many completions of any kind */
	/* Post-after mode (in): send_after set posts the send_n send WRs only
	 * once the wait is met, after storing mark_val at mark_addr (when set)
	 * and reading the clock into stamp (out): the TSC when stamp_tsc, else
	 * CLOCK_MONOTONIC ns. sent (out) says whether they were posted. */
	uint64_t mark_addr;
	uint64_t stamp;
	int32_t send_after;
	int32_t stamp_tsc;
	int32_t sent;
	uint8_t mark_val;
	uint8_t pad3[3];
	/* in: 0, or a bound on the step's time as well as its empty rounds:
	 * it returns (not done) once the clock stamp_tsc selects has advanced
	 * by max_ticks since it began; timed_out (out) says it did. The Go
	 * runtime treats a long C call as a blocked syscall (sysmon retakes
	 * its P; see cshim's doc), so callers bound it by time, not rounds. */
	uint64_t max_ticks;
	int32_t timed_out;
	/* in: 0, or at most this many completions from cq in the step (the
	 * rest of the room is cq2's: a pair polled in one round gets a fair
	 * share each); out: nwc1, how many of the nwc came from cq. In a step
	 * of one round (spins 0, want_any 1) they are the array's first nwc1
	 * and cq2's follow. */
	int32_t limit1;
	int32_t nwc1;
	int32_t pad5;
};

struct shim_wc_array {
	int cap;
	struct ibv_wc *ibv_wc;
	struct shim_wc *wc;
	struct shim_spin *spin;
};

struct shim_send_batch *shim_send_batch_new(int cap, int sge_cap);
void shim_send_batch_free(struct shim_send_batch *b);
struct shim_recv_batch *shim_recv_batch_new(int cap, int sge_cap);
void shim_recv_batch_free(struct shim_recv_batch *b);
struct shim_wc_array *shim_wc_array_new(int cap);
void shim_wc_array_free(struct shim_wc_array *a);

/* One crossing each. b->bad receives the index of the first WR not posted
 * (n on success). */
int shim_post_send(struct ibv_qp *qp, struct shim_send_batch *b, int n);
int shim_post_recv(struct ibv_qp *qp, struct shim_recv_batch *b, int n);
int shim_post_srq_recv(struct ibv_srq *srq, struct shim_recv_batch *b, int n);
int shim_poll_cq(struct ibv_cq *cq, struct shim_wc_array *a, int n);

/* shim_spin: a whole latency step in one crossing. It posts a->spin->recv_n
 * receive WRs of rb (one ibv_post_recv), then a->spin->send_n send WRs of sb as
 * one chain (one ibv_post_send), then polls cq (and cq2 when non-zero and
 * different) into a's array until it holds want_send send-queue and want_recv
 * receive completions and, when watch_addr is set, the byte there equals
 * watch_want; or until a completion with an error status, a full array, or
 * spins polling rounds that found nothing. With send_after the send WRs are
 * posted only once the wait is met, right after it (mark byte, clock stamp,
 * ibv_post_send), so a ping-pong reply leaves without returning to Go
 * first. It never blocks and never sleeps:
 * the caller loops (with no posts) when spin->done is 0. Handles are passed as
 * integers, so the cgo pointer check has nothing to inspect. Returns the
 * number of completions in the array or -errno (post failure: spin->stage
 * and spin->bad say which WR). */
int shim_spin(uintptr_t qp, uintptr_t sb, uintptr_t rb, uintptr_t cq, uintptr_t cq2, uintptr_t a);

/* shim_stamp reads the clock of shim_spin's stamps: the TSC when tsc (x86),
 * else CLOCK_MONOTONIC nanoseconds. */
uint64_t shim_stamp(int tsc);

/* Devices. */
struct ibv_context *shim_open_device(const char *name); /* NULL + errno */
int shim_set_nonblock(int fd);

struct shim_device_attr {
	char fw_ver[64];
	uint64_t node_guid;
	uint64_t sys_image_guid;
	uint64_t max_mr_size;
	uint32_t vendor_id;
	uint32_t vendor_part_id;
	uint32_t hw_ver;
	int32_t max_qp;
	int32_t max_qp_wr;
	int32_t max_sge;
	int32_t max_cq;
	int32_t max_cqe;
	int32_t max_mr;
	int32_t max_pd;
	int32_t max_qp_rd_atom;
	int32_t max_srq;
	int32_t max_srq_wr;
	int32_t max_srq_sge;
	int32_t phys_port_cnt;
};
int shim_query_device(struct ibv_context *ctx, struct shim_device_attr *out);

struct shim_port_attr {
	int32_t state;
	int32_t max_mtu;
	int32_t active_mtu;
	int32_t gid_tbl_len;
	uint32_t max_msg_sz;
	uint16_t lid;
	uint8_t link_layer;
	uint8_t active_speed;
	uint8_t active_width;
	uint8_t phys_state;
	uint8_t pad[2];
};
int shim_query_port(struct ibv_context *ctx, int port, struct shim_port_attr *out);

/* GIDs: ibv_query_gid_table (rdma-core >= 30). */
int shim_query_gid_table(struct ibv_context *ctx, struct ibv_gid_entry *out, int max);
int shim_query_gid(struct ibv_context *ctx, int port, int index, uint8_t gid[16]);

/* QPs. */
struct shim_qp_init {
	struct ibv_cq *send_cq;
	struct ibv_cq *recv_cq;
	struct ibv_srq *srq;
	uint32_t max_send_wr;
	uint32_t max_recv_wr;
	uint32_t max_send_sge;
	uint32_t max_recv_sge;
	uint32_t max_inline_data;
	int32_t qp_type;
	int32_t sq_sig_all;
};
struct ibv_qp *shim_create_qp(struct ibv_pd *pd, struct shim_qp_init *init); /* caps updated */
int shim_rdma_create_qp(struct rdma_cm_id *id, struct ibv_pd *pd, struct shim_qp_init *init);
uint32_t shim_qp_num(struct ibv_qp *qp);

struct shim_qp_params {
	uint8_t dgid[16];
	uint32_t dest_qp_num;
	uint32_t rq_psn;
	uint32_t sq_psn;
	int32_t port_num;
	int32_t path_mtu;
	int32_t is_global;
	int32_t hop_limit;
	int32_t sgid_index;
	int32_t traffic_class;
	int32_t flow_label;
	int32_t sl;
	int32_t dlid;
	int32_t min_rnr_timer;
	int32_t timeout;
	int32_t retry_cnt;
	int32_t rnr_retry;
	int32_t max_rd_atomic;
	int32_t max_dest_rd_atomic;
	int32_t access_flags;
	int32_t pkey_index;
};
int shim_qp_to_init(struct ibv_qp *qp, struct shim_qp_params *p);
int shim_qp_to_rtr(struct ibv_qp *qp, struct shim_qp_params *p);
int shim_qp_to_rts(struct ibv_qp *qp, struct shim_qp_params *p);
int shim_qp_to_err(struct ibv_qp *qp);
int shim_qp_state(struct ibv_qp *qp); /* state or -errno */

/* Events. */
struct shim_async_event {
	int32_t type;
	int32_t port;
	uint32_t qp_num;
	uint32_t pad;
	uintptr_t qp;
	uintptr_t cq;
	uintptr_t srq;
};
int shim_get_async_event(struct ibv_context *ctx, struct shim_async_event *out); /* gets and acks */
int shim_get_cq_event(struct ibv_comp_channel *ch, uintptr_t *cq);

/* rdma_cm. */
int shim_sockaddr(struct sockaddr_storage *ss, int family, const uint8_t *ip, int port);
int shim_cm_bind(struct rdma_cm_id *id, int family, const uint8_t *ip, int port);
int shim_cm_resolve_addr(struct rdma_cm_id *id, int sfamily, const uint8_t *sip, int sport,
			 int dfamily, const uint8_t *dip, int dport, int timeout_ms);
int shim_cm_local_addr(struct rdma_cm_id *id, uint8_t ip[16], int *family, int *port);

struct shim_conn_param {
	uint8_t responder_resources;
	uint8_t initiator_depth;
	uint8_t flow_control;
	uint8_t retry_count;
	uint8_t rnr_retry_count;
	uint8_t private_data_len;
	uint8_t pad[2];
	uint8_t private_data[196];
};
int shim_cm_connect(struct rdma_cm_id *id, struct shim_conn_param *p);
int shim_cm_accept(struct rdma_cm_id *id, struct shim_conn_param *p);

struct shim_cm_event {
	uintptr_t event;     /* struct rdma_cm_event*, for rdma_ack_cm_event */
	uintptr_t id;
	uintptr_t listen_id;
	uintptr_t verbs;     /* id->verbs */
	int32_t type;
	int32_t status;
	uint8_t private_data_len;
	uint8_t pad[7];
	uint8_t private_data[256];
};
int shim_cm_get_event(struct rdma_event_channel *ch, struct shim_cm_event *out);

#endif
