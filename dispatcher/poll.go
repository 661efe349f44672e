package dispatcher

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// kick wakes the poller if it sleeps; it never blocks and costs one atomic
// load while the poller is busy-polling.
func (d *Dispatcher) kick() {
	if d.asleep.Load() && d.asleep.CompareAndSwap(true, false) {
		d.wake()
	}
}

func (d *Dispatcher) wake() {
	if d.wakeFD >= 0 {
		var one = [8]byte{1}
		_, _ = unix.Write(d.wakeFD, one[:])
	}
}

// idleCheck is how many empty polls pass between clock reads (and
// reaping, and yielding the thread) while the poller busy-polls an idle CQ
// pair: on VMs whose clocksource has no vDSO every clock read traps.
const idleCheck = 16

func (d *Dispatcher) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(d.done)
	wcs := make([]verbs.WorkCompletion, 2*MaxPoll)
	touched := make([]*entry, 0, MaxPoll)
	rets := make([]uint32, 0, MaxPoll)
	pollWindow := time.Duration(d.opts.PollingUS) * time.Microsecond
	var idleSince time.Time
	pfd := []unix.PollFd{
		{Fd: int32(d.txCh.FD()), Events: unix.POLLIN},
		{Fd: int32(d.rxCh.FD()), Events: unix.POLLIN},
		{Fd: int32(d.ctx.AsyncFD()), Events: unix.POLLIN},
		{Fd: int32(d.wakeFD), Events: unix.POLLIN},
	}
	var txUnacked, rxUnacked int
	spins, idle := 0, 0
	d.C.PollingOn.Add(1)
	for !d.stopping.Load() {
		n := d.pollPair(d.txCQ, d.rxCQ, wcs, &touched, &rets)
		if spins++; spins&1023 == 0 {
			d.handleAsync() // also while completions keep flowing
			d.reap(n == 0)
		}
		if n > 0 {
			idleSince, idle = time.Time{}, 0
			continue
		}
		// Idle: spin on the CQs. The clock is read, retired QPs reaped
		// and the thread yielded only every idleCheck empty polls: a
		// Gosched on a locked thread hands the P to another thread and
		// back (two futex wake-ups), which costs more than a poll.
		if idle++; idle%idleCheck != 0 {
			continue
		}
		d.reap(true)
		now := time.Now()
		if idleSince.IsZero() {
			idleSince = now
		}
		if now.Sub(idleSince) < pollWindow {
			runtime.Gosched() // let other goroutines have this P now and then (GOMAXPROCS=1)
			continue
		}
		// Sleep: re-arm, poll once more, then wait on the fds.
		_ = d.txCQ.ReqNotify(false)
		_ = d.rxCQ.ReqNotify(false)
		if d.pollPair(d.txCQ, d.rxCQ, wcs, &touched, &rets) > 0 {
			idleSince, idle = time.Time{}, 0
			continue
		}
		d.C.PollingOff.Add(1)
		timeout := -1
		d.mu.Lock()
		if len(d.retiring) > 0 {
			timeout = 20
		}
		d.mu.Unlock()
		for i := range pfd {
			pfd[i].Revents = 0
		}
		d.asleep.Store(true)
		_, err := unix.Poll(pfd, timeout)
		d.asleep.Store(false)
		if err != nil && err != unix.EINTR {
			d.log.Error("dispatcher: poll", "err", err)
		}
		var buf [8]byte
		_, _ = unix.Read(d.wakeFD, buf[:])
		d.takeEvents(d.txCh, d.txCQ, &txUnacked)
		d.takeEvents(d.rxCh, d.rxCQ, &rxUnacked)
		d.handleAsync()
		d.C.PollingOn.Add(1)
		idleSince, idle = time.Time{}, 0
	}
	d.txCQ.AckEvents()
	d.rxCQ.AckEvents()
}

func (d *Dispatcher) countWCErr(s verbs.WCStatus) {
	if s >= 0 && int(s) < len(d.C.WCErrors) {
		d.C.WCErrors[s].Add(1)
	}
}

// pairSpins is how many empty polling rounds one pollPair crossing makes
// before it returns with nothing.
const pairSpins = 0

// pollPair takes one batch of up to MaxPoll completions from each CQ of a
// TX/RX pair (the shared pair on the dispatcher goroutine, a worker's on its
// event centre) in one shim crossing, and hands them over, TX first. wcs
// holds 2*MaxPoll. It returns how many it took.
func (d *Dispatcher) pollPair(txCQ, rxCQ *verbs.CQ, wcs []verbs.WorkCompletion, touched *[]*entry, rets *[]uint32) int {
	nt, nr, err := txCQ.PollPair(rxCQ, wcs, MaxPoll, MaxPoll, pairSpins)
	if err != nil {
		return 0
	}
	return d.takeTX(wcs[:nt], touched, rets) + d.takeRX(wcs[nt:nt+nr], touched)
}

// takeTX hands over send completions polled from a TX CQ.
func (d *Dispatcher) takeTX(wcs []verbs.WorkCompletion, touched *[]*entry, rets *[]uint32) int {
	n := len(wcs)
	if n == 0 {
		return 0
	}
	d.C.TXCompletions.Add(uint64(n))
	var cache *entry
	*touched = (*touched)[:0]
	*rets = (*rets)[:0]
	for i := range wcs {
		wc := &wcs[i]
		e := d.lookup(wc.QPNum, &cache)
		if wc.ID == BeaconID {
			if e != nil && e.set != nil {
				// Done once the worker's CQs were polled empty after it.
				e.set.beacons = append(e.set.beacons, e)
			} else if e != nil {
				d.mu.Lock()
				e.beaconDone = true
				d.mu.Unlock()
			}
			continue
		}
		if wc.ID&kindMask == kindTX {
			*rets = append(*rets, uint32(wc.ID))
		}
		if wc.Status != verbs.WCSuccess {
			d.countWCErr(wc.Status)
			if e != nil {
				if c := d.liveConn(e); c != nil {
					c.OnFault(fmt.Errorf("rdma: send completion on QP %d: %w", wc.QPNum, errors.Join(wc.Status, net.ErrClosed)))
				}
			}
		}
		if e != nil {
			e.inflight.Add(-1)
			if !e.inBatch {
				e.inBatch = true
				*touched = append(*touched, e)
			}
			e.txDone++
		}
	}
	if len(*rets) > 0 {
		d.tx.Put(*rets...)
	}
	for _, e := range *touched {
		e.inBatch = false
		k := e.txDone
		e.txDone = 0
		if c := d.liveConn(e); c != nil {
			c.OnTxComplete(k)
		}
	}
	if len(*rets) > 0 {
		d.mu.Lock()
		ws := d.waiters
		d.waiters = nil
		clear(d.waitSet)
		d.mu.Unlock()
		for _, c := range ws {
			c.OnTxSpace()
		}
	}
	return n
}

// takeRX hands over receive completions polled from an RX CQ.
func (d *Dispatcher) takeRX(wcs []verbs.WorkCompletion, touched *[]*entry) int {
	n := len(wcs)
	if n == 0 {
		return 0
	}
	d.C.RXCompletions.Add(uint64(n))
	var cache *entry
	*touched = (*touched)[:0]
	reposts := 0
	for i := range wcs {
		wc := &wcs[i]
		idx := uint32(wc.ID)
		e := d.lookup(wc.QPNum, &cache)
		if d.srq != nil {
			reposts++
		} else if e != nil {
			e.rxDeficit.Add(1)
		}
		if wc.Status != verbs.WCSuccess || e == nil {
			d.rx.Put(idx)
			if wc.Status != verbs.WCSuccess {
				d.countWCErr(wc.Status)
			}
			if e != nil && wc.Status != verbs.WCWRFlushErr {
				if c := d.liveConn(e); c != nil {
					c.OnFault(fmt.Errorf("rdma: receive completion on QP %d: %w", wc.QPNum, errors.Join(wc.Status, net.ErrClosed)))
				}
			} else if e != nil {
				if c := d.liveConn(e); c != nil {
					c.OnFault(fmt.Errorf("rdma: receive flushed on QP %d: %w", wc.QPNum, errors.Join(wc.Status, net.ErrClosed)))
				}
			}
			continue
		}
		d.C.RXBytes.Add(uint64(wc.ByteLen))
		e.batch = append(e.batch, RxItem{Seq: e.seq, Chunk: idx, Len: wc.ByteLen, Imm: wc.Imm, HasImm: wc.HasImm})
		e.seq++
		if !e.inBatch {
			e.inBatch = true
			*touched = append(*touched, e)
		}
	}
	// Repost before handing data over, so the receive queue stays full
	// (within a repostBatch).
	if reposts > 0 && d.srqDeficit.Add(int64(reposts)) >= d.srqBatch {
		d.refillSRQ()
	}
	for _, e := range *touched {
		e.inBatch = false
		if d.srq == nil && e.rxDeficit.Load() >= e.rxBatch {
			d.refillQP(e)
		}
		if c := d.liveConn(e); c != nil {
			c.OnRecv(e.batch)
		} else {
			for _, it := range e.batch {
				d.rx.Put(it.Chunk)
			}
		}
		e.batch = e.batch[:0]
	}
	return n
}
