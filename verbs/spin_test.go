//go:build linux && cgo

package verbs

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// spinSide is one end of a ping-pong: a QP with its own CQ(s) and its own
// send and receive areas in the env's MR.
type spinSide struct {
	qp       *QP
	scq, rcq *CQ
	sendOff  int
	recvOff  int
	dst      []WorkCompletion
}

func (e *env) spinCQ(t *testing.T) *CQ {
	t.Helper()
	cq, err := e.ctx.CreateCQ(256, nil, 0)
	require.NoError(t, err)
	e.own(cq.Close)
	return cq
}

// spinPair connects two QPs whose completions go to CQs of their own (one
// shared by send and receive, or two when split).
func (e *env) spinPair(t *testing.T, split bool) (a, b *spinSide) {
	t.Helper()
	mk := func(base int) *spinSide {
		s := &spinSide{scq: e.spinCQ(t), sendOff: base, recvOff: base + 64<<10, dst: make([]WorkCompletion, 64)}
		s.rcq = s.scq
		if split {
			s.rcq = e.spinCQ(t)
		}
		s.qp = e.qp(t, QPInitAttr{SendCQ: s.scq, RecvCQ: s.rcq, MaxSendWR: 16, MaxRecvWR: 64, MaxInlineData: 64})
		return s
	}
	a, b = mk(0), mk(256<<10)
	e.connect(t, a.qp, b.qp, nil)
	return a, b
}

func (s *spinSide) wait(w SpinWait) SpinWait {
	w.CQ, w.CQ2 = s.scq, s.rcq
	return w
}

// step posts recv and send in one PostSpin and then repeats the wait (with
// nothing to post) until it is satisfied. It returns the receive
// completions it saw and how many calls it took; it fails on an error
// completion, an error, or after 20 s without the wait being met.
func (s *spinSide) step(recv []RecvRequest, send []WorkRequest, w SpinWait) (recvs []WorkCompletion, calls int, err error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := s.qp.PostSpin(recv, send, &w, s.dst)
		calls++
		if err != nil {
			return recvs, calls, err
		}
		recv, send = nil, nil
		for _, wc := range s.dst[:res.N] {
			if wc.Status != WCSuccess {
				return recvs, calls, fmt.Errorf("completion %+v: %w", wc, wc.Err())
			}
			if wc.Opcode.IsRecv() {
				recvs = append(recvs, wc)
			}
		}
		if res.Sends+res.Recvs != res.N {
			return recvs, calls, fmt.Errorf("result counts %d sends + %d receives of %d completions", res.Sends, res.Recvs, res.N)
		}
		w.Sends = max(0, w.Sends-res.Sends)
		w.Recvs = max(0, w.Recvs-res.Recvs)
		if res.Watched {
			w.Watch = nil
		}
		if res.Done {
			if w.Sends != 0 || w.Recvs != 0 || w.Watch != nil {
				return recvs, calls, fmt.Errorf("done with %d sends, %d receives missing (watch %v)", w.Sends, w.Recvs, w.Watch != nil)
			}
			return recvs, calls, nil
		}
		if time.Now().After(deadline) {
			return recvs, calls, fmt.Errorf("wait not met after 20s: %+v", w)
		}
	}
}

// TestPostSpinSendPingPong is perftest's send_lat loop on PostSpin: each
// step reposts the consumed receive, posts one signaled send and spin-polls
// for its completion and the peer's reply, in one crossing when the reply
// arrives within the budget. The payloads carry the iteration number.
func TestPostSpinSendPingPong(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		split bool
	}{
		{"2B-inline-shared-cq", 2, false},
		{"4KiB-shared-cq", 4096, false},
		{"64B-split-cq", 64, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			a, b := e.spinPair(t, tc.split)
			const iters = 200
			buf := e.mr.Bytes()
			for _, s := range []*spinSide{a, b} {
				_, err := s.qp.PostRecv([]RecvRequest{{ID: 1, SG: []SGE{e.mr.SGE(s.recvOff, tc.size)}}})
				require.NoError(t, err)
			}
			mark := func(s *spinSide, i int) {
				for j := range tc.size {
					buf[s.sendOff+j] = byte(i + j)
				}
			}
			check := func(s *spinSide, i int, wcs []WorkCompletion) error {
				if len(wcs) != 1 || wcs[0].ByteLen != uint32(tc.size) {
					return fmt.Errorf("iteration %d: receives %+v, want one of %d bytes", i, wcs, tc.size)
				}
				for j := range tc.size {
					if buf[s.recvOff+j] != byte(i+j) {
						return fmt.Errorf("iteration %d: byte %d is %d, want %d", i, j, buf[s.recvOff+j], byte(i+j))
					}
				}
				return nil
			}
			// b: wait for a message, check it, then (reposting the
			// receive) echo it back and wait for the send completion and
			// the next message in the same step.
			errc := make(chan error, 1)
			go func() {
				recv := []RecvRequest{{ID: 1, SG: []SGE{e.mr.SGE(b.recvOff, tc.size)}}}
				send := []WorkRequest{{ID: 2, Opcode: OpSend, Flags: SendSignaled, SG: []SGE{e.mr.SGE(b.sendOff, tc.size)}}}
				wcs, _, err := b.step(nil, nil, b.wait(SpinWait{Recvs: 1, Spins: 1 << 12}))
				for i := 0; err == nil && i < iters; i++ {
					if err = check(b, i, wcs); err != nil {
						break
					}
					mark(b, i)
					want := SpinWait{Sends: 1, Recvs: 1, Spins: 1 << 12}
					if i == iters-1 {
						want.Recvs = 0
					}
					wcs, _, err = b.step(recv, send, b.wait(want))
				}
				errc <- err
			}()
			recv := []RecvRequest{{ID: 1, SG: []SGE{e.mr.SGE(a.recvOff, tc.size)}}}
			send := []WorkRequest{{ID: 3, Opcode: OpSend, Flags: SendSignaled, SG: []SGE{e.mr.SGE(a.sendOff, tc.size)}}}
			var calls int
			for i := range iters {
				mark(a, i)
				r := recv
				if i == 0 {
					r = nil // pre-posted above
				}
				wcs, n, err := a.step(r, send, a.wait(SpinWait{Sends: 1, Recvs: 1, Spins: 1 << 12}))
				require.NoError(t, err, "iteration %d", i)
				require.NoError(t, check(a, i, wcs))
				calls += n
			}
			require.NoError(t, <-errc)
			require.GreaterOrEqual(t, calls, iters)
			t.Logf("%d round trips in %d PostSpin calls on the client", iters, calls)
		})
	}
}

// TestPostSpinWritePolledByte is perftest's write_lat loop: each side RDMA
// WRITEs its message with the iteration number in the last byte, then waits
// in the same step for the write's completion and for the peer's write to
// show the expected byte in its own receive area.
func TestPostSpinWritePolledByte(t *testing.T) {
	for _, size := range []int{2, 4096} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			e := newEnv(t)
			a, b := e.spinPair(t, false)
			buf := e.mr.Bytes()
			clear(buf)
			const iters = 200
			side := func(s, peer *spinSide, first bool) error {
				send := []WorkRequest{{Opcode: OpRDMAWrite, Flags: SendSignaled, SG: []SGE{e.mr.SGE(s.sendOff, size)},
					RemoteAddr: e.mr.Addr() + uint64(peer.recvOff), RKey: e.mr.RKey()}}
				watch := func(i int) SpinWait {
					return s.wait(SpinWait{Watch: e.mr, WatchOff: s.recvOff + size - 1, WatchWant: byte(i + 1), Spins: 1 << 12})
				}
				if !first {
					if _, _, err := s.step(nil, nil, watch(0)); err != nil {
						return err
					}
				}
				for i := range iters {
					for j := range size {
						buf[s.sendOff+j] = byte(i*7 + j)
					}
					buf[s.sendOff+size-1] = byte(i + 1)
					w := watch(i)
					if !first {
						w = watch(i + 1)
					}
					if i == iters-1 && !first {
						w.Watch = nil
					}
					w.Sends = 1
					if _, _, err := s.step(nil, send, w); err != nil {
						return fmt.Errorf("iteration %d: %w", i, err)
					}
					// The watched byte arrived last; the rest of the
					// peer's message is complete too.
					if w.Watch != nil {
						k := i
						if !first {
							k = i + 1
						}
						for j := range size - 1 {
							if got := buf[s.recvOff+j]; got != byte(k*7+j) {
								return fmt.Errorf("iteration %d: byte %d is %d, want %d", i, j, got, byte(k*7+j))
							}
						}
					}
				}
				return nil
			}
			errc := make(chan error, 1)
			go func() { errc <- side(b, a, false) }()
			require.NoError(t, side(a, b, true))
			require.NoError(t, <-errc)
		})
	}
}

// TestSpinBudgetExpiry: with nothing to poll, a step returns to Go after
// exactly its budget of empty rounds, with nothing, and without allocating.
func TestSpinBudgetExpiry(t *testing.T) {
	e := newEnv(t)
	a, _ := e.spinPair(t, false)
	for _, tc := range []struct {
		name   string
		w      SpinWait
		rounds int
	}{
		{"recv-1000", SpinWait{Recvs: 1, Spins: 1000}, 1000},
		{"send-and-recv-split", SpinWait{Sends: 1, Recvs: 1, Spins: 300, CQ2: e.rcq}, 300},
		{"watch", SpinWait{Watch: e.mr, WatchOff: a.recvOff, WatchWant: 9, Spins: 500}, 500},
		{"zero-budget-one-round", SpinWait{Recvs: 1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w
			w.CQ = a.scq
			res, err := a.qp.PostSpin(nil, nil, &w, a.dst)
			require.NoError(t, err)
			require.Equal(t, SpinResult{Rounds: tc.rounds}, res)
		})
	}
	// A wait that is already met returns Done without polling.
	res, err := a.qp.PostSpin(nil, nil, &SpinWait{CQ: a.scq, Spins: 1000}, a.dst)
	require.NoError(t, err)
	require.Equal(t, SpinResult{Done: true}, res)

	n, err := a.scq.PollSpin(a.dst, 1, 700)
	require.NoError(t, err)
	require.Zero(t, n)

	w := SpinWait{CQ: a.scq, Recvs: 1, Spins: 10}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := a.qp.PostSpin(nil, nil, &w, a.dst); err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs)
}

// TestSpinTimeBound: with MaxTicks a step whose wait is never met returns
// once that much time passed, long before its budget of rounds is spent,
// with either clock.
func TestSpinTimeBound(t *testing.T) {
	e := newEnv(t)
	a, _ := e.spinPair(t, false)
	const bound = 2 * time.Millisecond
	for _, tsc := range []bool{false, true} {
		t.Run(fmt.Sprintf("tsc=%v", tsc), func(t *testing.T) {
			// The TSC's rate is not known here: 2e6 ticks is 0.5-2 ms
			// at 1-4 GHz.
			w := SpinWait{CQ: a.scq, Recvs: 1, Spins: 1 << 30, MaxTicks: uint64(bound), StampTSC: tsc}
			start := time.Now()
			res, err := a.qp.PostSpin(nil, nil, &w, a.dst)
			el := time.Since(start)
			require.NoError(t, err)
			require.True(t, res.TimedOut)
			require.False(t, res.Done)
			require.Zero(t, res.N)
			require.Less(t, res.Rounds, 1<<30)
			require.Less(t, el, time.Second, "%d rounds", res.Rounds)
			if !tsc {
				require.GreaterOrEqual(t, el, bound)
			}
		})
	}
}

// TestPollSpinLimit: PollSpin never takes more completions than dst holds;
// the rest stay queued for the next call.
func TestPollSpinLimit(t *testing.T) {
	e := newEnv(t)
	a, b := e.spinPair(t, false)
	wrs := make([]WorkRequest, 5)
	for i := range wrs {
		wrs[i] = WorkRequest{ID: uint64(10 + i), Opcode: OpRDMAWrite, Flags: SendSignaled, SG: []SGE{e.mr.SGE(a.sendOff, 8)},
			RemoteAddr: e.mr.Addr() + uint64(b.recvOff), RKey: e.mr.RKey()}
	}
	_, err := a.qp.PostSend(wrs)
	require.NoError(t, err)
	var ids []uint64
	deadline := time.Now().Add(20 * time.Second)
	for _, room := range []int{2, 2, 1} {
		got := 0
		for got < room {
			n, err := a.scq.PollSpin(a.dst[got:room], room-got, 1<<12)
			require.NoError(t, err)
			require.LessOrEqual(t, n, room-got)
			for _, wc := range a.dst[got : got+n] {
				require.Equal(t, WCSuccess, wc.Status)
				ids = append(ids, wc.ID)
			}
			got += n
			require.False(t, time.Now().After(deadline), "completions missing after 20s: %v", ids)
		}
	}
	require.Equal(t, []uint64{10, 11, 12, 13, 14}, ids)
	n, err := a.scq.PollSpin(a.dst, 1, 100)
	require.NoError(t, err)
	require.Zero(t, n, "no completion beyond the five")
}

// TestPostSpinErrorCompletion: a failed completion ends the step at once
// and is returned; the wait is not Done.
func TestPostSpinErrorCompletion(t *testing.T) {
	e := newEnv(t)
	a, b := e.spinPair(t, false)
	send := []WorkRequest{{ID: 77, Opcode: OpRDMAWrite, Flags: SendSignaled, SG: []SGE{e.mr.SGE(a.sendOff, 8)},
		RemoteAddr: e.mr.Addr() + uint64(b.recvOff), RKey: e.mr.RKey() ^ 0x5a5a00}}
	// The step would also wait for a receive that never comes: only the
	// failure can end it before the budget.
	w := SpinWait{CQ: a.scq, Sends: 1, Recvs: 1, Spins: 1 << 14}
	deadline := time.Now().Add(20 * time.Second)
	var res SpinResult
	var err error
	for res, err = a.qp.PostSpin(nil, send, &w, a.dst); err == nil && res.N == 0; res, err = a.qp.PostSpin(nil, nil, &w, a.dst) {
		require.False(t, time.Now().After(deadline), "no completion after 20s")
	}
	require.NoError(t, err)
	require.Equal(t, 1, res.N)
	require.False(t, res.Done)
	require.Equal(t, uint64(77), a.dst[0].ID)
	require.Equal(t, WCRemAccessErr, a.dst[0].Status)
}

// TestPostSpinBadArguments: argument and state errors, before any post.
func TestPostSpinBadArguments(t *testing.T) {
	e := newEnv(t)
	a, _ := e.spinPair(t, false)
	closedCQ, err := e.ctx.CreateCQ(4, nil, 0)
	require.NoError(t, err)
	require.NoError(t, closedCQ.Close())
	long := make([]WorkRequest, 5000)
	for _, tc := range []struct {
		name string
		send []WorkRequest
		w    *SpinWait
		dst  []WorkCompletion
		want error
	}{
		{"nil wait", nil, nil, a.dst, net.ErrClosed},
		{"no CQ", nil, &SpinWait{}, a.dst, net.ErrClosed},
		{"closed CQ", nil, &SpinWait{CQ: closedCQ}, a.dst, net.ErrClosed},
		{"closed CQ2", nil, &SpinWait{CQ: a.scq, CQ2: closedCQ}, a.dst, net.ErrClosed},
		{"no room", nil, &SpinWait{CQ: a.scq}, nil, syscall.EINVAL},
		{"watch outside MR", nil, &SpinWait{CQ: a.scq, Watch: e.mr, WatchOff: e.mr.Len()}, a.dst, syscall.EINVAL},
		{"negative watch offset", nil, &SpinWait{CQ: a.scq, Watch: e.mr, WatchOff: -1}, a.dst, syscall.EINVAL},
		{"chain too long", long, &SpinWait{CQ: a.scq}, a.dst, syscall.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.qp.PostSpin(nil, tc.send, tc.w, tc.dst)
			require.ErrorIs(t, err, tc.want)
		})
	}
	// A send the device refuses (queue of 16 overflows) is reported as the
	// ibv_post_send failure, with nothing polled.
	caps := a.qp.Caps()
	require.Less(t, caps.MaxSendWR, 28, "the send queue (asked 16) is small enough to overflow in one post")
	over := make([]WorkRequest, 2*caps.MaxSendWR+8)
	for i := range over {
		over[i] = WorkRequest{Opcode: OpRDMAWrite, SG: []SGE{e.mr.SGE(a.sendOff, 8)}, RemoteAddr: e.mr.Addr(), RKey: e.mr.RKey()}
	}
	_, err = a.qp.PostSpin(nil, over, &SpinWait{CQ: a.scq}, a.dst)
	require.ErrorIs(t, err, syscall.ENOMEM)
	var ve *Error
	require.True(t, errors.As(err, &ve))
	require.Equal(t, "ibv_post_send", ve.Op)

	var nilQP *QP
	_, err = nilQP.PostSpin(nil, nil, &SpinWait{CQ: a.scq}, a.dst)
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = closedCQ.PollSpin(a.dst, 1, 1)
	require.ErrorIs(t, err, net.ErrClosed)
}

// TestPostSpinSendAfterPingPong: with SendAfter each step waits for the
// peer's message and then posts the reply in the same crossing, stamping
// the clock just before the post. Messages and replies rotate through
// buffer slots, so a reply can leave before the message it answers is
// checked.
func TestPostSpinSendAfterPingPong(t *testing.T) {
	for _, size := range []int{2, 4096} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			e := newEnv(t)
			a, b := e.spinPair(t, false)
			buf := e.mr.Bytes()
			const iters = 200
			rslot := func(s *spinSide, k int) int { return s.recvOff + (k%4)*4096 }
			sslot := func(s *spinSide, k int) int { return s.sendOff + (k%2)*4096 }
			recvFor := func(s *spinSide, k int) []RecvRequest {
				return []RecvRequest{{ID: uint64(k), SG: []SGE{e.mr.SGE(rslot(s, k), size)}}}
			}
			for _, s := range []*spinSide{a, b} {
				for k := range 2 {
					_, err := s.qp.PostRecv(recvFor(s, k))
					require.NoError(t, err)
				}
			}
			// prepare writes message k (pattern k+j) into its send slot and
			// returns the WR that sends it.
			prepare := func(s *spinSide, k int) []WorkRequest {
				for j := range size {
					buf[sslot(s, k)+j] = byte(k + j)
				}
				return []WorkRequest{{ID: uint64(k), Opcode: OpSend, Flags: SendSignaled, SG: []SGE{e.mr.SGE(sslot(s, k), size)}}}
			}
			check := func(s *spinSide, k int, wcs []WorkCompletion) error {
				if len(wcs) != 1 || wcs[0].ByteLen != uint32(size) || wcs[0].ID != uint64(k) {
					return fmt.Errorf("message %d: receives %+v", k, wcs)
				}
				for j := range size {
					if got := buf[rslot(s, k)+j]; got != byte(k+j) {
						return fmt.Errorf("message %d: byte %d is %d, want %d", k, j, got, byte(k+j))
					}
				}
				return nil
			}
			// run is one side: initiator sends message 0 first; then call
			// k waits for the peer's message k (and the completion of
			// this side's previous send) and sends this side's next one.
			run := func(s *spinSide, initiator bool) error {
				var last uint64
				stamped := func(res SpinResult) error {
					if !res.Sent || res.Stamp == 0 || res.Stamp < last {
						return fmt.Errorf("send not stamped in order: %+v after %d", res, last)
					}
					last = res.Stamp
					return nil
				}
				next := 0 // this side's next message
				if initiator {
					res, err := s.qp.PostSpin(nil, prepare(s, 0), &SpinWait{CQ: s.scq, SendAfter: true, Spins: 1}, s.dst)
					if err != nil {
						return err
					}
					if !res.Done || res.N != 0 {
						return fmt.Errorf("an empty wait is met at once: %+v", res)
					}
					if err := stamped(res); err != nil {
						return err
					}
					next = 1
				}
				for k := range iters {
					w := SpinWait{CQ: s.scq, Recvs: 1, SendAfter: true, Spins: 1 << 12}
					if next > 0 {
						w.Sends = 1
					}
					var recv []RecvRequest
					if k > 0 {
						recv = recvFor(s, k+1)
					}
					var send []WorkRequest
					if next < iters {
						send = prepare(s, next)
					} else {
						w.SendAfter = false
					}
					var wcs []WorkCompletion
					deadline := time.Now().Add(20 * time.Second)
					for {
						res, err := s.qp.PostSpin(recv, send, &w, s.dst)
						if err != nil {
							return fmt.Errorf("message %d: %w", k, err)
						}
						recv = nil
						for _, wc := range s.dst[:res.N] {
							if wc.Status != WCSuccess {
								return wc.Err()
							}
							if wc.Opcode.IsRecv() {
								wcs = append(wcs, wc)
							}
						}
						w.Sends = max(0, w.Sends-res.Sends)
						w.Recvs = max(0, w.Recvs-res.Recvs)
						if res.Done {
							if send != nil {
								if err := stamped(res); err != nil {
									return err
								}
							}
							break
						}
						if res.Sent {
							return fmt.Errorf("sent before the wait was met: %+v", res)
						}
						if time.Now().After(deadline) {
							return fmt.Errorf("message %d: not met after 20s", k)
						}
					}
					if err := check(s, k, wcs); err != nil {
						return err
					}
					if send != nil {
						next++
					}
				}
				if initiator {
					return nil // its last send completed in the last wait
				}
				// The last reply's completion.
				_, _, err := s.step(nil, nil, SpinWait{CQ: s.scq, Sends: 1, Spins: 1 << 12})
				return err
			}
			errc := make(chan error, 1)
			go func() { errc <- run(b, false) }()
			require.NoError(t, run(a, true))
			require.NoError(t, <-errc)
		})
	}
}

// TestPostSpinSendAfterUnmet: a SendAfter step whose wait is not met sends
// nothing; once the wait is met, the mark byte is stored before the post,
// so the peer sees it in the written message.
func TestPostSpinSendAfterUnmet(t *testing.T) {
	e := newEnv(t)
	a, b := e.spinPair(t, false)
	buf := e.mr.Bytes()
	clear(buf[:1<<20])
	send := []WorkRequest{{ID: 5, Opcode: OpRDMAWrite, Flags: SendSignaled, SG: []SGE{e.mr.SGE(a.sendOff, 16)},
		RemoteAddr: e.mr.Addr() + uint64(b.recvOff), RKey: e.mr.RKey()}}
	w := SpinWait{CQ: a.scq, Recvs: 1, SendAfter: true, Mark: e.mr, MarkOff: a.sendOff + 15, MarkVal: 0xa7, Spins: 200}
	res, err := a.qp.PostSpin(nil, send, &w, a.dst)
	require.NoError(t, err)
	require.Equal(t, SpinResult{Rounds: 200}, res, "nothing arrived, nothing sent")
	require.Zero(t, buf[a.sendOff+15], "the mark is stored only with the post")
	n, err := b.scq.PollSpin(b.dst, 1, 200)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Zero(t, buf[b.recvOff+15], "no write reached the peer")

	// The same step with nothing to wait for posts at once.
	w.Recvs = 0
	res, err = a.qp.PostSpin(nil, send, &w, a.dst)
	require.NoError(t, err)
	require.True(t, res.Done)
	require.True(t, res.Sent)
	require.NotZero(t, res.Stamp)
	require.Equal(t, byte(0xa7), buf[a.sendOff+15])
	// The peer sees the mark as the written message's last byte.
	_, _, err = b.step(nil, nil, SpinWait{CQ: b.scq, Watch: e.mr, WatchOff: b.recvOff + 15, WatchWant: 0xa7, Spins: 1 << 12})
	require.NoError(t, err)
	_, _, err = a.step(nil, nil, SpinWait{CQ: a.scq, Sends: 1, Spins: 1 << 12})
	require.NoError(t, err)

	// A mark outside the MR is refused before anything is posted.
	w.MarkOff = e.mr.Len()
	_, err = a.qp.PostSpin(nil, send, &w, a.dst)
	require.ErrorIs(t, err, syscall.EINVAL)
}

// TestPollPair: one crossing polls a send CQ and a receive CQ, each within
// its own room; the send CQ's completions come first in dst, the receive
// CQ's after them, in completion order.
func TestPollPair(t *testing.T) {
	e := newEnv(t)
	a, b := e.spinPair(t, true)
	_, _, err := b.scq.PollPair(b.scq, b.dst, 2, 2, 0)
	require.ErrorIs(t, err, syscall.EINVAL, "the same CQ twice")
	_, _, err = b.scq.PollPair(nil, b.dst, 2, 2, 0)
	require.ErrorIs(t, err, syscall.EINVAL, "no second CQ")
	const n = 3
	for i := range n {
		_, err := b.qp.PostRecv([]RecvRequest{{ID: uint64(20 + i), SG: []SGE{e.mr.SGE(b.recvOff+64*i, 64)}}})
		require.NoError(t, err)
	}
	for i := range n {
		_, err := a.qp.PostSend([]WorkRequest{{ID: uint64(30 + i), Opcode: OpSend, Flags: SendSignaled, SG: []SGE{e.mr.SGE(a.sendOff, 8)}}})
		require.NoError(t, err)
		_, err = b.qp.PostSend([]WorkRequest{{ID: uint64(10 + i), Opcode: OpRDMAWrite, Flags: SendSignaled, SG: []SGE{e.mr.SGE(b.sendOff, 8)},
			RemoteAddr: e.mr.Addr() + uint64(a.recvOff), RKey: e.mr.RKey()}})
		require.NoError(t, err)
	}
	var sends, recvs []uint64
	deadline := time.Now().Add(20 * time.Second)
	for len(sends) < n || len(recvs) < n {
		g1, g2, err := b.scq.PollPair(b.rcq, b.dst, 2, 2, 0)
		require.NoError(t, err)
		require.LessOrEqual(t, g1, 2, "the first CQ beyond its room")
		require.LessOrEqual(t, g2, 2, "the second CQ beyond its room")
		for i, wc := range b.dst[:g1+g2] {
			require.Equal(t, WCSuccess, wc.Status)
			require.Equal(t, i >= g1, wc.Opcode.IsRecv(), "completion %d of %d+%d: %+v", i, g1, g2, wc)
			if i < g1 {
				sends = append(sends, wc.ID)
			} else {
				recvs = append(recvs, wc.ID)
			}
		}
		require.False(t, time.Now().After(deadline), "completions missing after 20s: sends %v, receives %v", sends, recvs)
	}
	require.Equal(t, []uint64{10, 11, 12}, sends)
	require.Equal(t, []uint64{20, 21, 22}, recvs)
	g1, g2, err := b.scq.PollPair(b.rcq, b.dst, 2, 2, 0)
	require.NoError(t, err)
	require.Zero(t, g1+g2, "nothing beyond the six")
}
