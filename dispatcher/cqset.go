package dispatcher

import (
	"errors"
	"fmt"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// CQSet is a TX/RX CQ pair with its two completion channels, polled by its
// owner (an RDMAWorker's event centre, ms_async_rdma_polling_mode = worker)
// instead of the dispatcher goroutine. Completions of the QPs created on it
// (CreateQPOn) are handed to their Conn on the owner's goroutine, in
// completion order, with the same receive sequencing as the shared CQs:
// one QP completes on one set only, so its entry has one poller.
//
// Poll, Arm and Events must be called from the owner goroutine only (they
// implement netstack.Poller); nothing in them blocks.
type CQSet struct {
	d          *Dispatcher
	txCh, rxCh *verbs.CompChannel
	txCQ, rxCQ *verbs.CQ

	wcs     []verbs.WorkCompletion
	touched []*entry
	rets    []uint32
	// beacons completed on txCQ whose QPs still wait for a poll of both
	// CQs that finds nothing (then nothing more of theirs can complete).
	beacons              []*entry
	txUnacked, rxUnacked int

	room cqRoom // the QPs created on the set
}

// NewCQSet makes a CQ pair on the dispatcher's device, sized like the
// shared ones (cqRoom). Dispatcher.Close destroys it after the QPs on it.
func (d *Dispatcher) NewCQSet() (_ *CQSet, err error) {
	s := &CQSet{d: d, wcs: make([]verbs.WorkCompletion, 2*MaxPoll), touched: make([]*entry, 0, MaxPoll), rets: make([]uint32, 0, MaxPoll)}
	defer func() {
		if err != nil {
			_ = s.close()
		}
	}()
	if err = d.makeCQPair("worker ", &s.txCh, &s.rxCh, &s.txCQ, &s.rxCQ); err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.sets = append(d.sets, s)
	d.mu.Unlock()
	return s, nil
}

// makeCQPair creates two completion channels and a TX and an RX CQ on them,
// sized for one QP (cqRoom grows them) or of the configured depth, bounded
// by the device; on error the caller closes whatever was made.
func (d *Dispatcher) makeCQPair(what string, txCh, rxCh **verbs.CompChannel, txCQ, rxCQ **verbs.CQ) (err error) {
	txDepth, rxDepth := d.cqDepths()
	if d.dev.MaxCQE > 0 {
		txDepth, rxDepth = min(txDepth, d.dev.MaxCQE), min(rxDepth, d.dev.MaxCQE)
	}
	if *txCh, err = d.ctx.CreateCompChannel(); err != nil {
		return fmt.Errorf("dispatcher: %w", err)
	}
	if *rxCh, err = d.ctx.CreateCompChannel(); err != nil {
		return fmt.Errorf("dispatcher: %w", err)
	}
	if *txCQ, err = d.ctx.CreateCQ(txDepth, *txCh, 0); err != nil {
		return fmt.Errorf("dispatcher: %sTX CQ of %d: %w", what, txDepth, err)
	}
	if *rxCQ, err = d.ctx.CreateCQ(rxDepth, *rxCh, 0); err != nil {
		return fmt.Errorf("dispatcher: %sRX CQ of %d: %w", what, rxDepth, err)
	}
	return nil
}

// FDs are the completion-channel fds the owner sleeps on (readable after
// Arm when a completion arrived); on readiness it calls Events.
func (s *CQSet) FDs() (tx, rx int) { return s.txCh.FD(), s.rxCh.FD() }

// Poll takes up to MaxPoll completions from each CQ, both in one shim
// crossing, and hands them over (Conn callbacks run here, on the owner
// goroutine). It returns how many it took.
func (s *CQSet) Poll() int {
	n := s.d.pollPair(s.txCQ, s.rxCQ, s.wcs, &s.touched, &s.rets)
	if n == 0 && len(s.beacons) > 0 {
		s.d.mu.Lock()
		for _, e := range s.beacons {
			e.beaconDone = true
		}
		s.d.mu.Unlock()
		clear(s.beacons)
		s.beacons = s.beacons[:0]
		s.d.wake() // the dispatcher goroutine reaps
	}
	return n
}

// Arm re-arms both CQs' notification and polls once more, closing the race
// with a completion that arrived before the arm: false means work was found
// (and handled), so the owner must poll again instead of sleeping.
func (s *CQSet) Arm() bool {
	s.Events()
	_ = s.txCQ.ReqNotify(false)
	_ = s.rxCQ.ReqNotify(false)
	return s.Poll() == 0
}

// Events consumes the completion-channel events (never blocks); the CQs
// are re-armed by Arm. Events are acknowledged in batches of 64.
func (s *CQSet) Events() {
	s.d.takeEvents(s.txCh, s.txCQ, &s.txUnacked)
	s.d.takeEvents(s.rxCh, s.rxCQ, &s.rxUnacked)
}

// takeEvents consumes ch's pending completion events (never blocks),
// counting them in *unacked, and acknowledges them on cq in batches of 64
// (the poller's and every CQSet's owner goroutine).
func (d *Dispatcher) takeEvents(ch *verbs.CompChannel, cq *verbs.CQ, unacked *int) {
	for {
		if got, err := ch.GetEvent(); err != nil || got == nil {
			break
		}
		*unacked++
		d.C.CQEvents.Add(1)
	}
	if *unacked >= 64 {
		cq.AckEvents()
		*unacked = 0
	}
}

// close destroys the CQs and channels (Dispatcher.Close, after the QPs).
func (s *CQSet) close() error {
	var errs []error
	if s.txCQ != nil {
		s.txCQ.AckEvents()
		errs = append(errs, s.txCQ.Close())
	}
	if s.rxCQ != nil {
		s.rxCQ.AckEvents()
		errs = append(errs, s.rxCQ.Close())
	}
	if s.txCh != nil {
		errs = append(errs, s.txCh.Close())
	}
	if s.rxCh != nil {
		errs = append(errs, s.rxCh.Close())
	}
	return errors.Join(errs...)
}
