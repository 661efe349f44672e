package raw

import (
	"fmt"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/clock"
	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/perf"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// waiter bounds busy waits: it fails when the peer is gone or nothing
// happened for stallNs.
type waiter struct {
	oob   *perf.OOB
	spins int
	since int64
	// stopOnDone: the peer's end of the run ends this wait (the receive
	// waits of -D runs); otherwise only the peer's failure does.
	stopOnDone bool
}

func (w *waiter) reset() { w.spins = 0; w.since = 0 }

// spin returns an error when the wait must stop.
func (w *waiter) spin() error {
	w.spins++
	if w.spins&(spinCheck-1) != 0 {
		return nil
	}
	if w.oob.PeerFailed.Load() || (w.stopOnDone && w.oob.PeerDone.Load()) {
		return errPeerGone
	}
	now := clock.Now()
	if w.since == 0 {
		w.since = now
	} else if now-w.since > stallNs {
		return fmt.Errorf("rdmaperf: no progress for %ds (peer or device stalled)", stallNs/1e9)
	}
	return nil
}

// check is spin's test without the stride: a PostSpin call that returned
// empty-handed has spun a whole budget already.
func (w *waiter) check() error {
	w.spins = spinCheck - 1
	return w.spin()
}

// step posts recv and send (either may be empty; send after the wait when
// sw.SendAfter) and spin-polls in C until sw is met (PostSpin: one cgo
// crossing, repeated when a budget runs out). It returns the send-queue
// and receive completions it saw and the send's post time on Now's scale
// (SendAfter); a failed completion is an error. sw is consumed.
func (r *res) step(recv []verbs.RecvRequest, send []verbs.WorkRequest, sw *verbs.SpinWait, w *waiter) (sends, recvs int, stamp int64, err error) {
	w.reset()
	for {
		res, err := r.qp.PostSpin(recv, send, sw, r.wcs)
		if err != nil {
			return sends, recvs, 0, err
		}
		recv = nil
		if res.Sent {
			// With SendAfter the send waits in Go until a step meets
			// the wait; then it leaves from C, stamped.
			send = nil
			stamp = clock.FromStamp(res.Stamp)
			r.rt.posted()
		}
		for i := range res.N {
			if r.wcs[i].Status != verbs.WCSuccess {
				return sends, recvs, 0, fmt.Errorf("rdmaperf: completion with error: %w (opcode %s, vendor err %#x)", r.wcs[i].Err(), r.wcs[i].Opcode, r.wcs[i].VendorErr)
			}
		}
		sends += res.Sends
		recvs += res.Recvs
		if res.Done {
			return sends, recvs, stamp, nil
		}
		sw.Sends = max(0, sw.Sends-res.Sends)
		sw.Recvs = max(0, sw.Recvs-res.Recvs)
		if res.Watched {
			sw.Watch = nil
		}
		if res.N == 0 {
			if err := w.check(); err != nil {
				return sends, recvs, 0, err
			}
		} else {
			w.reset()
		}
	}
}

// waitPeer waits for the peer's end of the run (the passive side).
func (r *res) waitPeer() error {
	<-r.oob.PeerDoneC()
	return nil
}
