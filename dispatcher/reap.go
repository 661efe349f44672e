package dispatcher

import (
	"time"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// reap moves lingering retired QPs to ERR with a beacon and, with destroy
// (both CQs were just polled empty), destroys those whose beacon completed.
func (d *Dispatcher) reap(destroy bool) {
	d.mu.Lock()
	if len(d.retiring) == 0 {
		d.mu.Unlock()
		return
	}
	now := time.Now()
	var toErr, toDestroy []*entry
	keep := d.retiring[:0]
	for _, e := range d.retiring {
		switch {
		case e.beaconDone && destroy:
			toDestroy = append(toDestroy, e)
			continue
		case !e.errored && (e.inflight.Load() <= 0 || now.After(e.lingerEnd)):
			e.errored = true
			toErr = append(toErr, e)
		}
		keep = append(keep, e)
	}
	d.retiring = keep
	d.mu.Unlock()
	for _, e := range toErr {
		if err := e.qp.ToError(); err != nil {
			d.log.Debug("dispatcher: QP to ERR", "qpn", e.qp.Num(), "err", err)
		}
		if _, err := e.qp.PostSend([]verbs.WorkRequest{{ID: BeaconID, Opcode: verbs.OpSend, Flags: verbs.SendSignaled}}); err != nil {
			// No beacon: nothing more can complete on it after a full poll.
			d.log.Debug("dispatcher: beacon", "qpn", e.qp.Num(), "err", err)
			d.mu.Lock()
			e.beaconDone = true
			d.mu.Unlock()
		}
	}
	for _, e := range toDestroy {
		if err := e.qp.Close(); err != nil {
			d.log.Warn("dispatcher: destroy QP", "qpn", e.qp.Num(), "err", err)
		}
		d.C.QPsDestroyed.Add(1)
		d.roomOf(e).release()
		d.mu.Lock()
		delete(d.byQPN, e.qp.Num())
		d.mu.Unlock()
		if e.after != nil {
			e.after()
		}
	}
}
