package dispatcher

import (
	"fmt"
	"sync"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// CtlWRsPerQP bounds the send WRs without a TX chunk (a FIN, WRITE-mode
// advertisements: at most 9 in rdmastack) one QP may have outstanding; the
// CQ sizing counts on it.
const CtlWRsPerQP = 16

// cqRoom sizes a TX/RX CQ pair for the QPs created on it, so that no CQ can
// overrun (an overrun is fatal: the device moves every QP on the CQ to
// error) without every pair costing Ceph's fixed 30000 entries. rxe zeroes
// and maps the whole queue at creation: at Ceph's depth that was 29 % of
// the CPU of a stack start in the Soft-RoCE VM, where the messenger suite
// starts thousands (perf record of TestConnectionRace).
//
// Completions a CQ can hold at once are bounded by work requests posted
// and not yet polled:
//   - TX: a QP has at most its max_send_wr outstanding; and every data WR
//     holds one of the pool's TX chunks until it completes, so all the QPs
//     of a pair together have at most the pool's chunks plus each QP's
//     chunk-less WRs (CtlWRsPerQP, and the retirement beacon).
//   - RX with an SRQ: at most the SRQ's posted WRs, however many QPs share
//     it; without one, each QP's receive queue.
//
// A pair starts with room for one QP and grows (ibv_resize_cq, which keeps
// what the CQ holds and is serialised with its poller by the provider)
// before a QP that needs more is created; it never shrinks. With
// Options.CQDepth set the CQs have that fixed size, as before.
type cqRoom struct {
	mu  sync.Mutex // held across the resize calls
	qps int        // QPs created on the pair and not yet destroyed
}

// txNeed is the TX CQ entries qps QPs can fill.
func (d *Dispatcher) txNeed(qps int) int {
	perQP := d.MaxSendWR() + 1 // the beacon's slot
	chunks := d.tx.Stats().Chunks + qps*(CtlWRsPerQP+1)
	return max(1, min(qps*perQP, chunks))
}

// rxNeed is the RX CQ entries qps QPs can fill.
func (d *Dispatcher) rxNeed(qps int) int {
	if d.srq != nil {
		return max(1, d.srqDepth)
	}
	return max(1, qps*d.rqDepth())
}

// cqDepths are the sizes a new pair is created with.
func (d *Dispatcher) cqDepths() (tx, rx int) {
	if d.opts.CQDepth > 0 {
		return d.opts.CQDepth, d.opts.CQDepth
	}
	return d.txNeed(1), d.rxNeed(1)
}

// reserve makes room on the pair (tx, rx) for one more QP, growing either
// CQ as needed; the caller creates the QP next and calls release when it is
// destroyed or could not be made.
func (d *Dispatcher) reserve(r *cqRoom, tx, rx *verbs.CQ) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.qps + 1
	if d.opts.CQDepth <= 0 {
		if err := d.fit("TX", tx, d.txNeed(n)); err != nil {
			return err
		}
		if err := d.fit("RX", rx, d.rxNeed(n)); err != nil {
			return err
		}
	}
	r.qps = n
	return nil
}

// release returns a destroyed QP's room (the CQs keep their size).
func (r *cqRoom) release() {
	r.mu.Lock()
	r.qps--
	r.mu.Unlock()
}

// fit grows cq to hold need entries: at least doubling, so n QPs cost
// O(log n) resizes, within the device's max_cqe.
func (d *Dispatcher) fit(what string, cq *verbs.CQ, need int) error {
	size := cq.Size()
	if size >= need {
		return nil
	}
	limit := d.dev.MaxCQE
	if limit > 0 && need > limit {
		return fmt.Errorf("dispatcher: a %s CQ would need %d entries for another QP, over the device's max_cqe %d", what, need, limit)
	}
	want := max(need, 2*size)
	if limit > 0 {
		want = min(want, limit)
	}
	if err := cq.Resize(want); err != nil {
		return fmt.Errorf("dispatcher: grow the %s CQ from %d to %d entries: %w", what, size, want, err)
	}
	d.C.CQResizes.Add(1)
	return nil
}
