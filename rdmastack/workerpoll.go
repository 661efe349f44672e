package rdmastack

import (
	"sync/atomic"
	"time"

	"github.com/asyncmsgr/asyncmsgr/dispatcher"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// Polling modes (ms_async_rdma_polling_mode).
const (
	// PollingWorker: each worker's event centre polls its own CQ pair and
	// handles completions inline (run to completion, see doc.go).
	PollingWorker = "worker"
	// PollingDispatcher: Ceph's shape, one dispatcher goroutine polls
	// shared CQs and wakes sockets through their eventfds.
	PollingDispatcher = "dispatcher"
)

// newWorkerCQ gives w its own CQ pair when the stack polls in worker mode.
func (s *Stack) newWorkerCQ(w *Worker) error {
	if s.cfg.RDMAPollingMode == PollingDispatcher {
		return nil
	}
	cq, err := s.d.NewCQSet()
	if err != nil {
		return err
	}
	w.cq = cq
	w.poller = &workerPoller{w: w}
	return nil
}

// workerPoller is a worker's CQ pair as its centre's Poller. Sockets that
// became readable in a poll are queued (conn.OnRecv, on the centre) and
// their read handlers run right after the poll, on the same goroutine: the
// messenger decodes, fast-dispatches and posts the reply there. Only a
// socket still readable after its handler ran (or one without a handler)
// gets its eventfd written, so level-triggered readiness stays exact.
//
// It is a netstack.InlinePoller: a busy turn in which no socket eventfd was
// written (the handlers drained their sockets) needs no epoll look and no
// timer check, which saves a syscall and a clock read per busy turn.
type workerPoller struct {
	w     *Worker
	ready []*conn // loop only
	// seen is the stack's eventfd-write count when PollNeedsTurn last
	// asked for a turn (loop only).
	seen uint64
	// armed: the last Arm succeeded and no completion event came since
	// (loop only). The CQs then hold nothing that did not raise an event,
	// so a turn woken by something else (a timer, a socket) skips the
	// polls and the re-arm: six cgo crossings and two syscalls per idle
	// wake-up.
	armed bool
	// fires counts read handlers run inline (tests: run to completion).
	fires atomic.Uint64
}

var _ netstack.InlinePoller = (*workerPoller)(nil)

func (p *workerPoller) Poll() int {
	if p.armed {
		return 0
	}
	n := p.w.cq.Poll()
	p.fire()
	return n
}

// PollNeedsTurn: a socket eventfd was written since the last turn it asked
// for, by this Poll's completions or read handlers, or by another goroutine
// (a sender whose unlock took a TX-space event over): epoll must report it
// now. readyWrites counts the whole stack's writes, so another worker's
// only costs a look at epoll.
func (p *workerPoller) PollNeedsTurn() bool {
	w := p.w.stack.readyWrites.Load()
	if w == p.seen {
		return false
	}
	p.seen = w
	return true
}

func (p *workerPoller) Arm() bool {
	if p.armed {
		return true
	}
	ok := p.w.cq.Arm()
	p.fire()
	p.armed = ok
	return ok
}

// queue marks c readable for the fire after this poll (loop only).
func (p *workerPoller) queue(c *conn) {
	if !c.queued {
		c.queued = true
		p.ready = append(p.ready, c)
	}
}

func (p *workerPoller) fire() {
	if len(p.ready) == 0 {
		return
	}
	center := p.w.Center()
	for i, c := range p.ready {
		p.ready[i] = nil
		c.queued = false
		if !c.closed.Load() {
			// A Close racing from another goroutine can at worst make
			// this a spurious wake-up, which readiness allows.
			center.FireReadable(c.efd)
			p.fires.Add(1)
		}
		// The handler's Read took the inbox over and synced readiness;
		// without a handler the inbox is still pending and this takes it
		// over (writing the eventfd). TryLock: a sender holding the
		// socket does it on unlock, and the centre never waits for it.
		c.kick()
	}
	p.ready = p.ready[:0]
}

// startPolling registers the worker's CQ pair on its centre (worker mode):
// the centre polls it every turn, busy-polls for ms_async_rdma_polling_us
// after the last completion, then arms it and sleeps in epoll on the
// completion-channel fds.
func (w *Worker) startPolling() {
	if w.cq == nil {
		return
	}
	c := w.Center()
	spin := time.Duration(w.stack.cfg.RDMAPollingUS) * time.Microsecond
	_ = c.DispatchExternal(func() {
		tx, rx := w.cq.FDs()
		onEvent := func(int, netstack.EventMask) {
			// Only consume the channel event: the loop's next turn polls
			// the CQs, and its finding the completion there is what opens
			// the spin window (the reply, and the peer's next message,
			// are then busy-polled rather than waited for).
			w.cq.Events()
			w.poller.armed = false
		}
		for _, fd := range []int{tx, rx} {
			if err := c.CreateFileEvent(fd, netstack.EventReadable, onEvent); err != nil {
				w.stack.cfg.Log().Error("rdmastack: worker CQ channel", "worker", w.ID(), "err", err)
			}
		}
	})
	c.AddPoller(w.poller, spin)
}

// createQP makes c's QP with mk (nil: a verbs QP on the PD, moved to INIT;
// rdma_cm's are made in INIT) on w's CQ pair in worker mode, on the shared
// CQs otherwise.
func (s *Stack) createQP(w netstack.Worker, c *conn, mk func(verbs.QPInitAttr) (*verbs.QP, error)) (*dispatcher.QPHandle, error) {
	var set *dispatcher.CQSet
	if rw, ok := w.(*Worker); ok {
		set = rw.cq
	}
	return s.d.CreateQPOn(set, c, mk, mk == nil)
}
