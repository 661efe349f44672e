package dispatcher

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// entry is a registered QP.
type entry struct {
	qp      *verbs.QP
	conn    Conn
	seq     uint64 // next receive sequence number (poller only)
	batch   []RxItem
	txDone  int
	inBatch bool
	// Inflight counts send WRs posted and not completed (posters add, the
	// poller subtracts).
	inflight  atomic.Int64
	rxDeficit atomic.Int64 // per-QP RQ: receive WRs owed to the QP
	rxBatch   int64        // per-QP RQ: its repostBatch (set at creation)

	// retirement (under Dispatcher.mu)
	retired    bool
	lingerEnd  time.Time // move to ERR when inflight reaches 0 or at this time
	errored    bool      // moved to ERR, beacon posted
	beaconDone bool
	rqDepth    int
	after      func()

	// set is the worker CQ pair the QP completes on (polling mode
	// worker), nil for the shared CQs. Its owner goroutine is the one
	// poller of the entry's poller-only fields.
	set *CQSet
}

// QPHandle is a registered QP: the connection's view of its dispatcher entry.
type QPHandle struct {
	d *Dispatcher
	e *entry
}

// QP is the verbs QP.
func (h *QPHandle) QP() *verbs.QP { return h.e.qp }

// Inflight is the number of the QP's send WRs not yet completed.
func (h *QPHandle) Inflight() int { return int(h.e.inflight.Load()) }

// AddInflight is called by the connection around posting n send WRs (and
// with a negative n for WRs the post did not take). Posting wakes a
// sleeping poller: a send means a completion, and usually a reply, will
// follow, so the poller busy-polls for them instead of waiting for the
// completion-channel interrupt (the wake-up happens while the device is
// still sending, off the critical path).
func (h *QPHandle) AddInflight(n int) {
	h.e.inflight.Add(int64(n))
	// A worker's CQs are polled by its own centre, which an armed CQ
	// wakes: nothing to kick there.
	if n > 0 && h.e.set == nil {
		h.d.kick()
	}
}

// rqDepth is a QP's receive-queue depth without an SRQ.
func (d *Dispatcher) rqDepth() int {
	rq := d.opts.RecvQueueLen
	if d.dev.MaxQPWR > 0 && rq > d.dev.MaxQPWR {
		rq = d.dev.MaxQPWR
	}
	return rq
}

// roomOf is the sizing record of the CQ pair e completes on.
func (d *Dispatcher) roomOf(e *entry) *cqRoom {
	if e.set != nil {
		return &e.set.room
	}
	return &d.room
}

// CreateQP creates an RC QP on the shared CQs (and the SRQ when enabled),
// moves it to INIT, registers it for conn, and without SRQ posts its
// receive buffers. The caller moves it to RTR/RTS (verbs.QP.ToRTR/ToRTS).
func (d *Dispatcher) CreateQP(conn Conn) (*QPHandle, error) {
	return d.CreateQPWith(conn, d.pd.CreateQP, true)
}

// CreateQPWith is CreateQP with the QP made by create (e.g. CMID.CreateQP
// bound to the dispatcher's PD); toInit says whether to move it to INIT
// (rdma_create_qp already does).
func (d *Dispatcher) CreateQPWith(conn Conn, create func(verbs.QPInitAttr) (*verbs.QP, error), toInit bool) (*QPHandle, error) {
	return d.CreateQPOn(nil, conn, create, toInit)
}

// CreateQPOn is CreateQPWith with the QP's completions on set's CQs (a
// worker's, polled by its centre) instead of the shared ones when set is
// not nil; create nil means d.PD().CreateQP (moved to INIT).
func (d *Dispatcher) CreateQPOn(set *CQSet, conn Conn, create func(verbs.QPInitAttr) (*verbs.QP, error), toInit bool) (*QPHandle, error) {
	if create == nil {
		create, toInit = d.pd.CreateQP, true
	}
	attr := verbs.QPInitAttr{SendCQ: d.txCQ, RecvCQ: d.rxCQ, SRQ: d.srq, MaxSendWR: d.MaxSendWR() + 1, MaxSendSGE: 1, MaxRecvSGE: 1}
	room := &d.room
	if set != nil {
		attr.SendCQ, attr.RecvCQ, room = set.txCQ, set.rxCQ, &set.room
	}
	rq := 0
	if d.srq == nil {
		rq = d.rqDepth()
		attr.MaxRecvWR = rq
	}
	if err := d.reserve(room, attr.SendCQ, attr.RecvCQ); err != nil {
		return nil, err
	}
	qp, err := create(attr)
	if err != nil {
		room.release()
		return nil, fmt.Errorf("dispatcher: create QP: %w", err)
	}
	if toInit {
		ip := verbs.DefaultConnParams()
		ip.Port = d.opts.Port
		if err := qp.ToInit(ip); err != nil {
			_ = qp.Close()
			room.release()
			return nil, fmt.Errorf("dispatcher: QP to INIT: %w", err)
		}
	}
	e := &entry{qp: qp, conn: conn, rqDepth: rq, rxBatch: repostBatch(rq), batch: make([]RxItem, 0, MaxPoll), set: set}
	d.mu.Lock()
	d.byQPN[qp.Num()] = e
	d.mu.Unlock()
	d.C.QPsCreated.Add(1)
	if rq > 0 {
		e.rxDeficit.Store(int64(rq))
		d.refillQP(e)
	}
	return &QPHandle{d: d, e: e}, nil
}

// Retire hands the QP back: once its inflight sends completed (or after
// linger), it is moved to ERR, a beacon is posted, and it is destroyed after
// the beacon's completion with both CQs drained. The Conn is not called
// again. Idempotent.
func (h *QPHandle) Retire(linger time.Duration) { h.RetireThen(linger, nil) }

// RetireThen is Retire, then runs after (on the poller, or in Close) once
// the QP is destroyed; a second call does nothing.
func (h *QPHandle) RetireThen(linger time.Duration, after func()) {
	if h == nil {
		return
	}
	d, e := h.d, h.e
	d.mu.Lock()
	if e.retired {
		d.mu.Unlock()
		return
	}
	if d.closedQPs {
		d.mu.Unlock()
		if after != nil {
			after()
		}
		return
	}
	e.retired = true
	e.after = after
	e.lingerEnd = time.Now().Add(linger)
	d.retiring = append(d.retiring, e)
	d.mu.Unlock()
	d.wake()
}

// WaitTxSpace registers c to be told (OnTxSpace) when TX chunks are
// returned. Callers retry their allocation after registering.
func (d *Dispatcher) WaitTxSpace(c Conn) {
	d.mu.Lock()
	if _, ok := d.waitSet[c]; !ok {
		d.waitSet[c] = struct{}{}
		d.waiters = append(d.waiters, c)
	}
	d.mu.Unlock()
}

func (d *Dispatcher) lookup(qpn uint32, cache **entry) *entry {
	if c := *cache; c != nil && c.qp.Num() == qpn {
		return c
	}
	d.mu.Lock()
	e := d.byQPN[qpn]
	d.mu.Unlock()
	*cache = e
	return e
}

// liveConn returns e's Conn unless e is retired.
func (d *Dispatcher) liveConn(e *entry) Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.retired {
		return nil
	}
	return e.conn
}

func (d *Dispatcher) liveConns() []Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	var cs []Conn
	for _, e := range d.byQPN {
		if !e.retired {
			cs = append(cs, e.conn)
		}
	}
	return cs
}

// QPsActive is the number of QPs not yet destroyed.
func (d *Dispatcher) QPsActive() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.byQPN)
}
