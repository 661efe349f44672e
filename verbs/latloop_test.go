//go:build linux && cgo

package verbs

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runLat drives ll to the end of its run with crossings of at most bound
// nanoseconds, failing after 20 s; it returns the final status and how many
// crossings it took.
func runLat(ll *LatLoop, bound uint64) (LatStatus, int, error) {
	deadline := time.Now().Add(20 * time.Second)
	calls := 0
	for {
		st, err := ll.Run(bound)
		calls++
		if err != nil || st.Done {
			return st, calls, err
		}
		if !st.TimedOut {
			return st, calls, fmt.Errorf("call ended neither done nor timed out: %+v", st)
		}
		if time.Now().After(deadline) {
			return st, calls, fmt.Errorf("run not done after 20s: %+v", st)
		}
	}
}

// TestLatLoopPingPong runs perftest's send_lat and write_lat loops inside
// the shim between two QPs of one device, with a time bound short enough
// that the runs take many crossings: both sides must end with every send
// posted and every message consumed, stamps in order, and the last message
// in place.
func TestLatLoopPingPong(t *testing.T) {
	for _, write := range []bool{false, true} {
		for _, size := range []int{2, 4096} {
			t.Run(fmt.Sprintf("write=%v/%d", write, size), func(t *testing.T) {
				e := newEnv(t)
				a, b := e.spinPair(t, false)
				buf := e.mr.Bytes()
				const iters = 300
				loop := func(s, peer *spinSide, client bool) *LatLoop {
					for j := range size {
						buf[s.sendOff+j] = byte(s.sendOff>>10 + j)
					}
					c := LatLoopConfig{Write: write, Client: client, Iters: iters, CQ: s.scq,
						Send: WorkRequest{SG: []SGE{e.mr.SGE(s.sendOff, size)}}}
					if write {
						c.Send.Opcode, c.Send.RemoteAddr, c.Send.RKey = OpRDMAWrite, e.mr.Addr()+uint64(peer.recvOff), e.mr.RKey()
						c.Mark, c.MarkOff, c.Watch, c.WatchOff = e.mr, s.sendOff+size-1, e.mr, s.recvOff+size-1
					} else {
						c.Send.Opcode = OpSend
						c.Recv = RecvRequest{SG: []SGE{e.mr.SGE(s.recvOff, size)}}
						c.RxBatch, c.RxPosted, c.CQMod = 16, 32, 1
						for range 2 {
							_, err := s.qp.PostRecv([]RecvRequest{c.Recv, c.Recv, c.Recv, c.Recv, c.Recv, c.Recv, c.Recv, c.Recv,
								c.Recv, c.Recv, c.Recv, c.Recv, c.Recv, c.Recv, c.Recv, c.Recv})
							require.NoError(t, err)
						}
					}
					ll, err := s.qp.NewLatLoop(c)
					require.NoError(t, err)
					t.Cleanup(func() { require.NoError(t, ll.Close()) })
					return ll
				}
				la, lb := loop(a, b, true), loop(b, a, false)
				type out struct {
					st    LatStatus
					calls int
					err   error
				}
				done := make(chan out, 1)
				go func() {
					st, calls, err := runLat(lb, 20_000)
					done <- out{st, calls, err}
				}()
				st, calls, err := runLat(la, 20_000)
				require.NoError(t, err)
				ob := <-done
				require.NoError(t, ob.err)
				for _, r := range []struct {
					st    LatStatus
					ll    *LatLoop
					calls int
				}{{st, la, calls}, {ob.st, lb, ob.calls}} {
					require.True(t, r.st.Done)
					require.Equal(t, iters, r.st.Sends)
					require.Equal(t, iters, r.st.Recvs)
					stamps := r.ll.Stamps()[:iters]
					for i := 1; i < iters; i++ {
						require.LessOrEqual(t, stamps[i-1], stamps[i], "stamp %d", i)
					}
					require.NotZero(t, stamps[0])
					t.Logf("%d crossings for %d round trips", r.calls, iters)
				}
				for _, s := range [][2]*spinSide{{a, b}, {b, a}} {
					want := make([]byte, size)
					copy(want, buf[s[1].sendOff:s[1].sendOff+size])
					if write {
						want[size-1] = byte(iters % 256)
					}
					require.Equal(t, want, buf[s[0].recvOff:s[0].recvOff+size])
				}
				// Nothing is left on the CQs: the loops consumed every
				// completion they caused.
				requireNoWC(t, a.scq)
				requireNoWC(t, b.scq)
			})
		}
	}
}

// TestLatLoopErrorCompletion: a WRITE to a bad rkey ends the run with an
// error that is the completion's status.
func TestLatLoopErrorCompletion(t *testing.T) {
	e := newEnv(t)
	a, b := e.spinPair(t, false)
	ll, err := a.qp.NewLatLoop(LatLoopConfig{Write: true, Client: true, Iters: 10, CQ: a.scq,
		Send: WorkRequest{Opcode: OpRDMAWrite, SG: []SGE{e.mr.SGE(a.sendOff, 8)},
			RemoteAddr: e.mr.Addr() + uint64(b.recvOff), RKey: e.mr.RKey() ^ 0x5a5a00},
		Mark: e.mr, MarkOff: a.sendOff + 7, Watch: e.mr, WatchOff: a.recvOff + 7})
	require.NoError(t, err)
	defer ll.Close()
	_, _, err = runLat(ll, 1_000_000)
	require.Error(t, err)
	require.True(t, errors.Is(err, WCRemAccessErr), "%v", err)
}

// TestLatLoopBadArguments: what NewLatLoop refuses, and a closed loop.
func TestLatLoopBadArguments(t *testing.T) {
	e := newEnv(t)
	a, _ := e.spinPair(t, false)
	send := WorkRequest{Opcode: OpSend, SG: []SGE{e.mr.SGE(a.sendOff, 8)}}
	for name, c := range map[string]LatLoopConfig{
		"no iterations":    {CQ: a.scq, Send: send, RxBatch: 1},
		"no CQ":            {Iters: 1, Send: send, RxBatch: 1},
		"no receive batch": {Iters: 1, CQ: a.scq, Send: send},
		"batch too big":    {Iters: 1, CQ: a.scq, Send: send, RxBatch: 1 << 20},
		"write, no watch":  {Write: true, Iters: 1, CQ: a.scq, Send: send, Mark: e.mr},
		"mark outside MR":  {Write: true, Iters: 1, CQ: a.scq, Send: send, Mark: e.mr, MarkOff: envBuf, Watch: e.mr},
	} {
		_, err := a.qp.NewLatLoop(c)
		require.Error(t, err, name)
	}
	ll, err := a.qp.NewLatLoop(LatLoopConfig{Iters: 1, CQ: a.scq, Send: send, RxBatch: 1})
	require.NoError(t, err)
	require.NoError(t, ll.Close())
	require.NoError(t, ll.Close())
	_, err = ll.Run(0)
	require.Error(t, err)
	require.Nil(t, ll.Stamps())
}
