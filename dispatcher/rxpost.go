package dispatcher

import (
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// repostBatch is how many receive WRs a receive queue of depth WRs may owe
// before they are reposted: consumed receives are reposted in one post of
// up to 16 (one verbs crossing per 16 messages instead of one per message),
// while the queue never holds fewer than 7/8 of its depth.
func repostBatch(depth int) int64 {
	return int64(max(1, min(16, depth/8)))
}

// ReturnRX gives received chunks back; receive WRs owed to the SRQ (or to
// h's QP) are reposted from them once a repostBatch is owed.
func (h *QPHandle) ReturnRX(chunks ...uint32) {
	d := h.d
	d.rx.Put(chunks...)
	if d.srq != nil {
		if d.srqDeficit.Load() >= d.srqBatch {
			d.refillSRQ()
		}
	} else if h.e.rxDeficit.Load() >= h.e.rxBatch {
		d.refillQP(h.e)
	}
}

// postRX takes up to want chunks from the RX pool and posts them with post.
// It returns how many were posted.
func (d *Dispatcher) postRX(want int, post func([]verbs.RecvRequest) (int, error)) int {
	d.rxPostMu.Lock()
	defer d.rxPostMu.Unlock()
	total := 0
	for want > 0 {
		n := min(want, 64)
		if cap(d.rxIdx) < n {
			d.rxIdx = make([]uint32, 64)
			d.rxReqs = make([]verbs.RecvRequest, 64)
			d.rxSGEs = make([]verbs.SGE, 64)
		}
		got := d.rx.Get(d.rxIdx[:n], true)
		if got == 0 {
			d.C.RXDeficit.Add(1)
			break
		}
		for i := 0; i < got; i++ {
			d.rxSGEs[i] = d.rx.SGE(d.rxIdx[i], d.rx.ChunkSize())
			d.rxReqs[i] = verbs.RecvRequest{ID: kindRX | uint64(d.rxIdx[i]), SG: d.rxSGEs[i : i+1]}
		}
		posted, err := post(d.rxReqs[:got])
		if posted < got {
			d.rx.Put(d.rxIdx[posted:got]...)
		}
		total += posted
		want -= posted
		if err != nil {
			d.log.Debug("dispatcher: post receive", "err", err)
			break
		}
		if got < n {
			break
		}
	}
	return total
}

func (d *Dispatcher) refillSRQ() {
	if d.srq == nil {
		return
	}
	want := int(d.srqDeficit.Load())
	if want <= 0 {
		return
	}
	n := d.postRX(want, d.srq.PostRecv)
	d.srqDeficit.Add(-int64(n))
}

func (d *Dispatcher) refillQP(e *entry) {
	want := int(e.rxDeficit.Load())
	if want <= 0 {
		return
	}
	n := d.postRX(want, e.qp.PostRecv)
	e.rxDeficit.Add(-int64(n))
}
