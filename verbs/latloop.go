package verbs

import (
	"fmt"
	"syscall"

	"github.com/asyncmsgr/asyncmsgr/verbs/cshim"
)

// LatLoop is a whole perftest-style latency run executed inside the shim:
// the ping-pong of ib_send_lat or ib_write_lat loops in C, iteration after
// iteration, and each Run (one cgo crossing) returns only at its time bound,
// at the end of the run or on a failure. Where PostSpin makes one step of a
// round trip per crossing, a LatLoop crosses once per time bound, so the Go
// runtime (sysmon, preemption, exitsyscall) meets the loop only there and
// never between a receive and its reply. It is owned by one goroutine.
type LatLoop struct {
	q   *QP
	cq  *CQ
	l   *cshim.Lat
	cfg LatLoopConfig
	enc cshim.LatConfig
}

// LatLoopConfig describes a latency run.
type LatLoopConfig struct {
	// Write runs the RDMA WRITE ping-pong (ib_write_lat): each side writes
	// its message with the last byte set to the iteration count (1, 2, …
	// modulo 256) into Watch of the peer, and waits for the peer's byte at
	// WatchOff of its own Watch. Otherwise the SEND ping-pong
	// (ib_send_lat): wait for a receive, then reply.
	Write bool
	// Client sends first.
	Client bool
	// Iters is the number of round trips.
	Iters int
	// CQ is polled for both the send and the receive completions: it must
	// be the QP's send CQ and (SEND) its receive CQ.
	CQ *CQ
	// Send is the message. Its SendSignaled flag is managed by the loop:
	// every CQMod-th send and the last are signaled (CQMod <= 1: all).
	Send  WorkRequest
	CQMod int
	// Recv (SEND only) is the receive reposted RxBatch at a time, once as
	// many were consumed; RxPosted receives are posted before the run.
	Recv     RecvRequest
	RxBatch  int
	RxPosted int
	// Mark/MarkOff (WRITE) is the outgoing message's last byte, set just
	// before each post; Watch/WatchOff the incoming one's.
	Mark     *MR
	MarkOff  int
	Watch    *MR
	WatchOff int
	// StampTSC makes the post stamps TSC ticks (x86), else CLOCK_MONOTONIC
	// nanoseconds.
	StampTSC bool
}

// LatStatus is where a LatLoop stands after a Run.
type LatStatus struct {
	// Sends posted and receives (WRITE: peer bytes) consumed so far.
	Sends, Recvs int
	// Done: the run is complete.
	Done bool
	// Progress: this Run saw a completion or the peer's byte.
	Progress bool
	// TimedOut: the time bound ended this Run.
	TimedOut bool
	// Rounds: the empty polling rounds this Run made.
	Rounds int
}

const latOp = "shim_lat_run"

// NewLatLoop prepares a latency run on q (no crossing but the allocation).
func (q *QP) NewLatLoop(c LatLoopConfig) (*LatLoop, error) {
	if q == nil || q.n.isClosed() || c.CQ == nil || c.CQ.n.isClosed() {
		return nil, goneErr(latOp)
	}
	if c.Iters <= 0 || len(c.Send.SG) > 1 {
		return nil, kindErr(latOp, syscall.EINVAL, nil, "a run needs iterations and at most one SGE per message")
	}
	enc := cshim.LatConfig{Write: c.Write, Client: c.Client, Iters: c.Iters, CQMod: max(1, c.CQMod),
		RxBatch: c.RxBatch, RxPosted: c.RxPosted, StampTSC: c.StampTSC}
	if c.Write {
		for _, b := range []struct {
			mr  *MR
			off int
			dst *uint64
		}{{c.Mark, c.MarkOff, &enc.MarkAddr}, {c.Watch, c.WatchOff, &enc.WatchAddr}} {
			if b.mr == nil || b.mr.n.isClosed() || b.off < 0 || b.off >= b.mr.length {
				return nil, kindErr(latOp, syscall.EINVAL, nil, "marked or watched byte outside its MR")
			}
			*b.dst = uint64(b.mr.addr) + uint64(b.off)
		}
	} else if q.x.recv == nil || c.RxBatch <= 0 || c.RxBatch > len(q.x.recv.WR) || len(c.Recv.SG) > 1 {
		return nil, kindErr(latOp, syscall.EINVAL, nil, "a SEND run needs the QP's own receive queue and a receive batch that fits it")
	}
	l, err := cshim.NewLat(c.Iters)
	if err != nil {
		return nil, opErr(latOp, err)
	}
	ll := &LatLoop{q: q, cq: c.CQ, l: l, cfg: c, enc: enc}
	l.Set(&ll.enc)
	return ll, nil
}

// Run runs the loop for up to maxTicks of the clock StampTSC selects (0: no
// bound) in one crossing. A failed completion is an error wrapping its
// WCStatus (with the opcode and vendor error in its detail). The QP's send
// and receive locks are held for the call.
func (ll *LatLoop) Run(maxTicks uint64) (LatStatus, error) {
	if ll == nil || ll.l == nil {
		return LatStatus{}, goneErr(latOp)
	}
	q, c := ll.q, &ll.cfg
	q.sendMu.Lock()
	defer q.sendMu.Unlock()
	q.recvMu.Lock()
	defer q.recvMu.Unlock()
	if q.n.closed || ll.cq.n.closed {
		return LatStatus{}, goneErr(latOp)
	}
	// The QP's reused arrays are shared with PostSend/PostRecv: encode
	// under the locks, every call.
	if err := encodeSend(q.x.send, []WorkRequest{c.Send}, q.caps.MaxInlineData); err != nil {
		return LatStatus{}, kindErr(latOp, syscall.EINVAL, nil, "too many SGEs")
	}
	var rb *cshim.RecvBatch
	if !c.Write {
		rb = q.x.recv
		for i := range c.RxBatch {
			if err := encodeRecv(rb, []RecvRequest{c.Recv}); err != nil {
				return LatStatus{}, kindErr(latOp, syscall.EINVAL, nil, "too many SGEs")
			}
			rb.WR[i] = rb.WR[0]
		}
	}
	s, err := ll.l.Run(q.h, q.x.send, rb, ll.cq.h, maxTicks)
	st := LatStatus{Sends: s.Sends, Recvs: s.Recvs, Done: s.Done, Progress: s.Progress, TimedOut: s.TimedOut, Rounds: s.Rounds}
	if err == nil {
		return st, nil
	}
	switch s.Stage {
	case 1:
		return st, opErr("ibv_post_recv", err)
	case 2:
		return st, opErr("ibv_post_send", err)
	case 4:
		return st, &Error{Op: latOp, Errno: syscall.EIO, Kind: WCStatus(s.WCStatus),
			Detail: fmt.Sprintf("completion with error (opcode %s, vendor err %#x)", WCOpcode(s.WCOpcode), s.WCVendorErr)}
	}
	return st, opErr(latOp, err)
}

// Stamps are the clock readings just before each send's post (StampTSC's
// clock); the first LatStatus.Sends are valid. They live in C memory until
// Close.
func (ll *LatLoop) Stamps() []uint64 {
	if ll == nil || ll.l == nil {
		return nil
	}
	return ll.l.Stamps()
}

// Close frees the run; idempotent.
func (ll *LatLoop) Close() error {
	if ll != nil && ll.l != nil {
		ll.l.Free()
		ll.l = nil
	}
	return nil
}
