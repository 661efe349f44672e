package raw

import (
	"errors"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/clock"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// recvReqs fills the first k reusable receive WRs (k <= len(r.rwr)) for
// messages of size bytes and returns them.
func (r *res) recvReqs(size, k int) []verbs.RecvRequest {
	sge := r.mr.SGE(r.half, max(size, 1))
	for i := range k {
		r.rwr[i].ID = 0
		r.rsge[i] = sge
	}
	return r.rwr[:k]
}

// latIters is the ping-pong of send_lat/write_lat and the READ loop of
// read_lat, recording the post times.
func (r *res) latIters(size int, posted []int64) (int, error) {
	if r.rt.loopTicks > 0 {
		return r.latLoop(size, posted)
	}
	switch r.p.Verb {
	case "send":
		return r.sendLat(size, posted, 0)
	case "write":
		return r.writeLat(size, posted, 0)
	default:
		if r.p.IsServer() {
			return 0, r.waitPeer()
		}
		return r.readLat(size, posted, 0)
	}
}

// latDuration runs the ping-pong until -D seconds pass (client) or the
// client says it is done (server).
func (r *res) latDuration(size int) (int, int64, error) {
	deadline := clock.Now() + int64(r.p.Duration)*1e9
	start := clock.Now()
	var n int
	var err error
	switch r.p.Verb {
	case "send":
		n, err = r.sendLat(size, nil, deadline)
	case "write":
		n, err = r.writeLat(size, nil, deadline)
	default:
		if r.p.IsServer() {
			return 0, 0, r.waitPeer()
		}
		n, err = r.readLat(size, nil, deadline)
	}
	el := clock.Now() - start
	if errors.Is(err, errPeerGone) && r.p.IsServer() {
		err = nil
	}
	return n, el, err
}

func (r *res) progress(n int) {
	if r.hooks.Progress != nil && n&(progressStride-1) == 0 {
		r.hooks.Progress.Store(int64(n))
	}
}

// latWR readies the one send work request a latency loop reposts for op
// and returns it with the loop's waiter.
func (r *res) latWR(op verbs.Opcode) (*verbs.WorkRequest, waiter) {
	wr := &r.swr[0]
	wr.Opcode = op
	return wr, waiter{oob: r.oob}
}

// sent records send number scnt, which a step stamped and posted: its post
// time in posted (when kept) and the progress. It returns the new count.
func (r *res) sent(posted []int64, scnt int, stamp int64) int {
	if posted != nil {
		posted[scnt] = stamp
	}
	scnt++
	r.progress(scnt)
	return scnt
}

// latEnd is what a latency loop returns when a step failed with err: nil
// when the peer left a timed run (its normal end), err otherwise.
func latEnd(err error, duration bool) error {
	if duration && errors.Is(err, errPeerGone) {
		return nil
	}
	return err
}

// sendLat: perftest's run_iter_lat_send. The server waits for a message
// before each reply; sends are signaled every CQMod (every one at tx depth
// 1) and the next send waits for the previous signaled one to complete. Send
// and receive completions share one CQ (see setup). Each iteration is one
// PostSpin crossing (SendAfter): repost consumed receives (16 at a time),
// spin-poll in C for the peer's message and the previous signaled send's
// completion, then stamp the time and post the send, all in C, so the reply
// leaves without a return to Go; Go's bookkeeping runs while it is in
// flight.
func (r *res) sendLat(size int, posted []int64, deadline int64) (int, error) {
	p := r.p
	iters := p.Iters
	duration := deadline != 0
	client := !p.IsServer()
	wr, w := r.latWR(verbs.OpSend)
	r.sge[0] = r.mr.SGE(0, size)
	base := r.baseFlags(size)
	cqMod := max(1, min(p.CQMod, p.TxDepth))
	rxBatch := len(r.rwr)
	tsc := clock.TSC()
	posted0 := min(p.RxDepth, iters)
	if duration {
		posted0 = p.RxDepth
	}
	rposted, consumed := posted0, 0
	scnt, rcnt := 0, 0
	recvReady, sendPending := 0, false
	var recvNow []verbs.RecvRequest // consumed receives, reposted by the next step
	for duration || scnt < iters || rcnt < iters {
		needRecv := (duration || rcnt < iters) && !(scnt < 1 && client)
		if duration && client && clock.Now() >= deadline {
			return scnt, nil
		}
		sw := verbs.SpinWait{CQ: r.scq, Spins: spinBudget, MaxTicks: r.rt.maxTicks, StampTSC: tsc}
		if needRecv && recvReady == 0 {
			sw.Recvs = 1
		}
		if sendPending {
			sw.Sends = 1
		}
		var send []verbs.WorkRequest
		signaled := false
		if duration || scnt < iters {
			signaled = (scnt+1)%cqMod == 0 || (!duration && scnt+1 == iters)
			wr.Flags = base
			if signaled {
				wr.Flags |= verbs.SendSignaled
			}
			send = r.swr[:1]
			sw.SendAfter = true
		}
		w.stopOnDone = duration && needRecv
		s, rc, stamp, err := r.step(recvNow, send, &sw, &w)
		recvNow = nil
		recvReady += rc
		if s > 0 {
			sendPending = false
		}
		if err != nil {
			return scnt, latEnd(err, duration)
		}
		if send != nil {
			scnt = r.sent(posted, scnt, stamp)
			sendPending = signaled
		}
		if needRecv {
			recvReady--
			rcnt++
			consumed++
			if consumed >= rxBatch && (duration || rposted < iters) {
				k := consumed
				if !duration {
					k = min(k, iters-rposted)
				}
				recvNow = r.recvReqs(size, k)
				rposted += k
				consumed -= k
			}
		}
	}
	if sendPending {
		sw := verbs.SpinWait{CQ: r.scq, Sends: 1, Spins: spinBudget, MaxTicks: r.rt.maxTicks, StampTSC: tsc}
		if _, _, _, err := r.step(nil, nil, &sw, &w); err != nil {
			return scnt, err
		}
	}
	return scnt, nil
}

// writeLat: perftest's run_iter_lat_write: each side RDMA-writes its
// message into the peer's receive half with the last byte set to the
// iteration count, and waits until its own receive half's last byte shows
// the peer's count. Each iteration is one PostSpin crossing (SendAfter):
// spin in C until the previous write completed and the peer's byte shows,
// then set the outgoing last byte, stamp the time and post the write, in C.
func (r *res) writeLat(size int, posted []int64, deadline int64) (int, error) {
	p := r.p
	iters := p.Iters
	duration := deadline != 0
	client := !p.IsServer()
	wr, w := r.latWR(verbs.OpRDMAWrite)
	wr.RemoteAddr = r.remote.VAddr + uint64(r.half)
	wr.RKey = r.remote.RKey
	wr.Flags = r.baseFlags(size) | verbs.SendSignaled
	r.sge[0] = r.mr.SGE(0, size)
	tsc := clock.TSC()
	scnt, rcnt, ccnt := 0, 0, 0
	for duration || scnt < iters || ccnt < iters || rcnt < iters {
		needByte := (duration || rcnt < iters) && !(scnt < 1 && client)
		if duration && client && clock.Now() >= deadline {
			return scnt, nil
		}
		// The previous write's completion (perftest polls it right after
		// the post) and the peer's next byte, then the next write.
		sw := verbs.SpinWait{CQ: r.scq, Sends: scnt - ccnt, Spins: spinBudget, MaxTicks: r.rt.maxTicks, StampTSC: tsc}
		if needByte {
			rcnt++
			sw.Watch, sw.WatchOff, sw.WatchWant = r.mr, r.half+size-1, uint8(rcnt)
		}
		var send []verbs.WorkRequest
		if duration || scnt < iters {
			send = r.swr[:1]
			sw.SendAfter = true
			sw.Mark, sw.MarkOff, sw.MarkVal = r.mr, size-1, uint8(scnt+1)
		}
		w.stopOnDone = duration && needByte
		s, _, stamp, err := r.step(nil, send, &sw, &w)
		ccnt += s
		if err != nil {
			return scnt, latEnd(err, duration)
		}
		if send != nil {
			scnt = r.sent(posted, scnt, stamp)
		}
	}
	return scnt, nil
}

// readLat: perftest's run_iter_lat for RDMA READ: post one signaled READ,
// wait for its completion, repeat. Each iteration is one PostSpin crossing
// (SendAfter): wait for the previous READ's completion, then stamp and post
// the next one, in C. Only the client runs it.
func (r *res) readLat(size int, posted []int64, deadline int64) (int, error) {
	p := r.p
	wr, w := r.latWR(verbs.OpRDMARead)
	wr.RemoteAddr = r.remote.VAddr
	wr.RKey = r.remote.RKey
	wr.Flags = verbs.SendSignaled
	r.sge[0] = r.mr.SGE(r.half, size)
	tsc := clock.TSC()
	scnt, ccnt := 0, 0
	for deadline != 0 || scnt < p.Iters {
		if deadline != 0 && clock.Now() >= deadline {
			break
		}
		sw := verbs.SpinWait{CQ: r.scq, Sends: scnt - ccnt, SendAfter: true, Spins: spinBudget, MaxTicks: r.rt.maxTicks, StampTSC: tsc}
		s, _, stamp, err := r.step(nil, r.swr[:1], &sw, &w)
		ccnt += s
		if err != nil {
			return scnt, err
		}
		scnt = r.sent(posted, scnt, stamp)
	}
	if scnt > ccnt {
		sw := verbs.SpinWait{CQ: r.scq, Sends: scnt - ccnt, Spins: spinBudget, MaxTicks: r.rt.maxTicks, StampTSC: tsc}
		if _, _, _, err := r.step(nil, nil, &sw, &w); err != nil {
			return scnt, err
		}
	}
	return scnt, nil
}
