package verbs

import (
	"syscall"

	"github.com/asyncmsgr/asyncmsgr/verbs/cshim"
)

// SpinWait describes the wait of a spin step: QP.PostSpin and CQ.PollSpin
// busy-poll inside the shim (one cgo crossing) until it is satisfied or its
// budget is spent, then return to Go. It is the building block of perftest-
// style ping-pong loops, where a post and a poll are otherwise two crossings
// on the critical path.
type SpinWait struct {
	// CQ is polled; required.
	CQ *CQ
	// CQ2, when non-nil and not CQ, is polled too, alternately with CQ
	// (a QP whose send and receive completions go to different CQs).
	CQ2 *CQ
	// Sends and Recvs: the wait needs at least this many send-queue and
	// receive completions (WCOpcode.IsRecv) among the ones this call polls.
	Sends, Recvs int
	// Watch, when non-nil, adds a condition: the byte at WatchOff of the
	// registered range must equal WatchWant (an RDMA WRITE's last byte, as
	// perftest's write_lat polls it). The byte is read with acquire order.
	Watch     *MR
	WatchOff  int
	WatchWant byte
	// SendAfter posts the send chain only once the wait is met, in the
	// same crossing right after it, instead of before it: a ping-pong
	// reply leaves without a return to Go in between (perftest's order:
	// wait for the peer, then post). When the result is not Done nothing
	// was sent; call again with the same chain. Just before the post the
	// shim stores MarkVal at MarkOff of Mark (when Mark is non-nil: the
	// byte perftest's write_lat sets in the outgoing message) and reads
	// the clock into SpinResult.Stamp.
	SendAfter bool
	Mark      *MR
	MarkOff   int
	MarkVal   byte
	// StampTSC makes Stamp the CPU's time-stamp counter (RDTSC, x86 only;
	// cheap where clock_gettime traps into a hypervisor); otherwise it is
	// CLOCK_MONOTONIC nanoseconds.
	StampTSC bool
	// Spins is the budget: the call returns after this many polling rounds
	// that found nothing new (at least one round is made). It bounds the
	// time a goroutine spends in C; the caller loops, checking its own
	// deadlines between calls.
	Spins int
	// MaxTicks, when non-zero, bounds the call by time as well: it returns
	// (not Done, TimedOut) once the clock StampTSC selects (TSC ticks, or
	// nanoseconds) has advanced this much since it began. A round's cost
	// varies (0.3-2 µs under emulation, far less on hardware), so a time
	// bound is what keeps a crossing under the Go runtime's thresholds for
	// a goroutine in C (see package cshim's doc).
	MaxTicks uint64
}

// SpinResult is what one spin step did.
type SpinResult struct {
	// N completions were written to dst[:N]; Sends and Recvs of them are
	// send-queue and receive completions. A completion with an error
	// status ends the step at once (it is among the N).
	N, Sends, Recvs int
	// Watched: the watched byte showed WatchWant.
	Watched bool
	// Done: the wait was satisfied. When false (budget spent, dst full, or
	// a failed completion), call again with what is still missing.
	Done bool
	// Rounds is the number of polling rounds the step made.
	Rounds int
	// Sent: the send chain was posted (always when it was not empty and
	// the step did not fail, except with SendAfter when not Done).
	Sent bool
	// Stamp is the clock read just before a SendAfter post (see StampTSC).
	Stamp uint64
	// TimedOut: SpinWait.MaxTicks ended the step.
	TimedOut bool
	// FromCQ: of the N, this many came from SpinWait.CQ (the rest from
	// CQ2).
	FromCQ int
}

// PostSpin runs one latency step inside the shim, in one cgo crossing: it
// posts recv (one ibv_post_recv chain, may be empty), then send (one
// ibv_post_send chain, may be empty; inline is added as PostSend does), then
// busy-polls w.CQ (and w.CQ2) into dst until w is satisfied, a completion
// fails, dst is full (at most 64 completions) or w.Spins rounds found
// nothing. It never blocks and never sleeps in C; when the result is not
// Done the caller calls again, usually with nothing to post and the wait
// reduced by what arrived. Each chain must fit in one post (the QP's reused
// arrays hold at least 64 WRs). It does not allocate.
//
// Like CQ.Poll, it is meant for the goroutine that owns w.CQ (the step uses
// that CQ's reused completion array). The QP's send lock, then its receive
// lock, is held for the whole step when send (recv) is not empty, so other
// posters on the same QP wait up to the spin budget.
func (q *QP) PostSpin(recv []RecvRequest, send []WorkRequest, w *SpinWait, dst []WorkCompletion) (SpinResult, error) {
	const op = "shim_spin"
	if q == nil {
		return SpinResult{}, goneErr(op)
	}
	if len(send) > 0 {
		q.sendMu.Lock()
		defer q.sendMu.Unlock()
	}
	if len(recv) > 0 {
		q.recvMu.Lock()
		defer q.recvMu.Unlock()
	}
	if q.n.closed {
		return SpinResult{}, goneErr(op)
	}
	a, cq2, err := spinPrepare(op, w, dst)
	if err != nil {
		return SpinResult{}, err
	}
	sp := a.SpinBlock()
	sp.WantSend, sp.WantRecv, sp.WantAny = int32(max(w.Sends, 0)), int32(max(w.Recvs, 0)), 0
	var sb *cshim.SendBatch
	var rb *cshim.RecvBatch
	if len(send) > 0 {
		sb = q.x.send
		if sb == nil || len(send) > len(sb.WR) {
			return SpinResult{}, kindErr(op, syscall.EINVAL, nil, "send chain longer than one post")
		}
		if err := encodeSend(sb, send, q.caps.MaxInlineData); err != nil {
			return SpinResult{}, kindErr(op, syscall.EINVAL, nil, "too many SGEs in one chain")
		}
		sp.SendN = int32(len(send))
		if w.SendAfter {
			sp.SendAfter = 1
			if w.Mark != nil {
				if w.Mark.n.isClosed() {
					return SpinResult{}, goneErr(op)
				}
				if w.MarkOff < 0 || w.MarkOff >= w.Mark.length {
					return SpinResult{}, kindErr(op, syscall.EINVAL, nil, "marked byte outside the MR")
				}
				sp.MarkAddr = uint64(w.Mark.addr) + uint64(w.MarkOff)
				sp.MarkVal = w.MarkVal
			}
		}
	}
	if len(recv) > 0 {
		rb = q.x.recv
		if rb == nil {
			return SpinResult{}, kindErr(op, syscall.EINVAL, nil, "the QP uses an SRQ")
		}
		if len(recv) > len(rb.WR) {
			return SpinResult{}, kindErr(op, syscall.EINVAL, nil, "receive chain longer than one post")
		}
		if err := encodeRecv(rb, recv); err != nil {
			return SpinResult{}, kindErr(op, syscall.EINVAL, nil, "too many SGEs in one chain")
		}
		sp.RecvN = int32(len(recv))
	}
	return spinRun(op, a, q.h, sb, rb, w.CQ.h, cq2, dst)
}

// PollSpin busy-polls the CQ inside the shim (one cgo crossing) until at
// least min completions arrived (min is capped at len(dst) and 64), one
// failed, or spins polling rounds found nothing; it copies them into dst and
// returns how many. It never blocks; with fewer than min the caller calls
// again. Like Poll it is meant for the CQ's owner goroutine and does not
// allocate.
func (cq *CQ) PollSpin(dst []WorkCompletion, min, spins int) (int, error) {
	const op = "shim_spin"
	w := SpinWait{CQ: cq, Spins: spins}
	a, _, err := spinPrepare(op, &w, dst)
	if err != nil {
		return 0, err
	}
	sp := a.SpinBlock()
	sp.WantSend, sp.WantRecv = 0, 0
	sp.WantAny = int32(max(0, min))
	if int(sp.WantAny) > int(sp.Limit) {
		sp.WantAny = sp.Limit
	}
	res, err := spinRun(op, a, 0, nil, nil, cq.h, 0, dst)
	return res.N, err
}

// PollPair polls cq for up to n1 completions and cq2 for up to n2, in one
// shim crossing (shim_spin's polling rounds: cq first, then cq2 unless one
// of cq's failed; after spins empty rounds it returns with nothing, and it
// returns after the first round that found something), and copies them
// into dst: dst[:got1] are cq's, dst[got1:got1+got2] cq2's. n1+n2 is
// capped at len(dst) and 64. A poller of a send CQ and a receive CQ then
// crosses once per turn instead of twice. It never blocks and does not
// allocate; like Poll it is meant for the goroutine that owns both CQs.
func (cq *CQ) PollPair(cq2 *CQ, dst []WorkCompletion, n1, n2, spins int) (got1, got2 int, err error) {
	const op = "shim_spin"
	if cq2 == nil || cq2 == cq || n1 <= 0 || n2 <= 0 {
		return 0, 0, kindErr(op, syscall.EINVAL, nil, "a pair needs two CQs and room for each")
	}
	w := SpinWait{CQ: cq, CQ2: cq2, Spins: spins}
	a, h2, err := spinPrepare(op, &w, dst)
	if err != nil {
		return 0, 0, err
	}
	sp := a.SpinBlock()
	sp.WantSend, sp.WantRecv, sp.WantAny = 0, 0, 1
	sp.Limit = int32(min(int(sp.Limit), n1+n2))
	sp.Limit1 = int32(min(int(sp.Limit), n1))
	res, err := spinRun(op, a, 0, nil, nil, cq.h, h2, dst)
	return res.FromCQ, res.N - res.FromCQ, err
}

// spinPrepare checks w and dst and fills the common inputs of the CQ's
// shim_spin block: no posts, watch, budget, limit.
func spinPrepare(op string, w *SpinWait, dst []WorkCompletion) (*cshim.WCArray, uintptr, error) {
	if w == nil || w.CQ == nil || w.CQ.x.wc == nil || w.CQ.n.closed {
		return nil, 0, goneErr(op)
	}
	var cq2 uintptr
	if w.CQ2 != nil && w.CQ2 != w.CQ {
		if w.CQ2.n.closed {
			return nil, 0, goneErr(op)
		}
		cq2 = w.CQ2.h
	}
	a := w.CQ.x.wc
	sp := a.SpinBlock()
	sp.SendN, sp.RecvN = 0, 0
	sp.WatchAddr, sp.WatchWant = 0, 0
	sp.SendAfter, sp.MarkAddr, sp.MarkVal, sp.StampTSC, sp.Limit1 = 0, 0, 0, 0, 0
	if w.StampTSC {
		sp.StampTSC = 1
	}
	if w.Watch != nil {
		if w.Watch.n.isClosed() {
			return nil, 0, goneErr(op)
		}
		if w.WatchOff < 0 || w.WatchOff >= w.Watch.length {
			return nil, 0, kindErr(op, syscall.EINVAL, nil, "watched byte outside the MR")
		}
		sp.WatchAddr = uint64(w.Watch.addr) + uint64(w.WatchOff)
		sp.WatchWant = w.WatchWant
	}
	n := min(len(dst), a.Cap())
	if n == 0 {
		return nil, 0, kindErr(op, syscall.EINVAL, nil, "no room for completions")
	}
	sp.Limit = int32(n)
	sp.Spins = int32(min(max(w.Spins, 0), 1<<30))
	sp.MaxTicks = w.MaxTicks
	return a, cq2, nil
}

// spinRun makes the crossing and copies the completions out.
func spinRun(op string, a *cshim.WCArray, qp uintptr, sb *cshim.SendBatch, rb *cshim.RecvBatch, cq, cq2 uintptr, dst []WorkCompletion) (SpinResult, error) {
	_, err := a.Spin(qp, sb, rb, cq, cq2)
	sp := a.SpinBlock()
	if err != nil {
		switch sp.Stage {
		case 1:
			return SpinResult{}, opErr("ibv_post_recv", err)
		case 2:
			return SpinResult{}, opErr("ibv_post_send", err)
		}
		return SpinResult{}, opErr(op, err)
	}
	n := int(sp.NWC)
	copyWCs(dst, a.View()[:n])
	return SpinResult{N: n, Sends: int(sp.GotSend), Recvs: int(sp.GotRecv), Watched: sp.Watched != 0,
		Done: sp.Done != 0, Rounds: int(sp.Rounds), Sent: sp.Sent != 0, Stamp: sp.Stamp,
		TimedOut: sp.TimedOut != 0, FromCQ: int(sp.NWC1)}, nil
}
