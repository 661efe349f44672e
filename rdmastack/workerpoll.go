package rdmastack

import (
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
	return nil
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
			// Consume the channel event; the next loop turn polls the CQs
			// (the spin window opens once Poll finds the completion).
			w.cq.Events()
			w.cq.Poll()
		}
		for _, fd := range []int{tx, rx} {
			if err := c.CreateFileEvent(fd, netstack.EventReadable, onEvent); err != nil {
				w.stack.cfg.Log().Error("rdmastack: worker CQ channel", "worker", w.ID(), "err", err)
			}
		}
	})
	c.AddPoller(w.cq, spin)
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
