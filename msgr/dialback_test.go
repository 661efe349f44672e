package msgr_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/msgrhook"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/tests/msgrsuite"
)

// standbyPeer is Ceph's lossless_peer: a LosslessPeer that waits in
// standby after a fault while it has nothing to send.
func standbyPeer() msgr.Policy {
	p := msgr.LosslessPeer()
	p.Standby = true
	return p
}

// sendSeqs sends messages from..to-1 of a numbered stream on c.
func sendSeqs(t *testing.T, c *msgr.Connection, from, to int) {
	t.Helper()
	for n := from; n < to; n++ {
		require.NoError(t, c.SendMessage(msgrsuite.SeqMessage(n)))
	}
}

// dialBackPair starts two standby lossless peers, connects the first to
// the second and returns both ends of the session once it carried a
// message each way (so that the dialler has nothing unacknowledged).
func dialBackPair(t *testing.T, fastBackoff bool) (ms [2]*msgr.Messenger, logs [2]*msgrsuite.SeqLog, conns [2]*msgr.Connection) {
	t.Helper()
	logs = [2]*msgrsuite.SeqLog{{}, {}}
	for i := range ms {
		cfg := testConfig()
		if fastBackoff {
			// a loser of a reconnect race waits ms_max_backoff unless the
			// winner's reconnect takes its session over first
			cfg.InitialBackoff, cfg.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
		}
		ms[i] = msgrsuite.PeerMessenger(t, cfg, int64(i+1), logs[i], standbyPeer())
	}
	t.Cleanup(func() {
		for _, m := range ms {
			shutdownWithin(t, m, 10*time.Second)
		}
	})
	a, err := ms[0].Connect(ms[1].Addr().String())
	require.NoError(t, err)
	sendSeqs(t, a, 0, 1)
	testenv.WaitFor(t, time.Minute, "the first message and the accepted session", func() bool {
		got, _ := logs[1].Snapshot()
		return len(got) == 1 && liveConns(ms[1]) == 1
	}, nil)
	b := ms[1].Connections()[0]
	require.False(t, b.Outgoing(), "the second messenger's end is the accepted one")
	// B's reply carries the ack of A's message
	sendSeqs(t, b, 0, 1)
	testenv.WaitFor(t, time.Minute, "the reply", func() bool {
		got, _ := logs[0].Snapshot()
		return len(got) == 1
	}, nil)
	return ms, logs, [2]*msgr.Connection{a, b}
}

// requireDelivered waits until logs[side] holds want messages and each
// messenger one connection, then checks exactly once, in order, no reset.
func requireDelivered(t *testing.T, ms [2]*msgr.Messenger, logs [2]*msgrsuite.SeqLog, want [2]int, what string) {
	t.Helper()
	describe := func() string {
		g0, r0 := logs[0].Snapshot()
		g1, r1 := logs[1].Snapshot()
		return fmt.Sprintf("%s: side 0 got %v (%d resets, %d conns), side 1 got %v (%d resets, %d conns)",
			what, g0, r0, liveConns(ms[0]), g1, r1, liveConns(ms[1]))
	}
	// The bound catches a hang, not slowness.
	testenv.WaitFor(t, time.Minute, "every message and one session a side", func() bool {
		for side := range 2 {
			if got, _ := logs[side].Snapshot(); len(got) < want[side] || liveConns(ms[side]) != 1 {
				return false
			}
		}
		return true
	}, describe)
	for side := range 2 {
		got, resets := logs[side].Snapshot()
		require.Equal(t, msgrsuite.Seqs(want[side]), got, "side %d, %s: exactly once, in order", side, what)
		require.Zero(t, resets, "side %d, %s: no remote reset", side, what)
	}
}

// waitFaulted waits until c has seen a fault.
func waitFaulted(t *testing.T, c *msgr.Connection, what string) {
	t.Helper()
	testenv.WaitFor(t, time.Minute, what+" to see the fault", func() bool { return c.Stats().Faults > 0 }, nil)
}

// TestAcceptedSessionDialsBack: a lossless session the peer dialled
// reconnects by itself when it has messages to send after a fault, as
// Ceph's lossless peers do: the dialler, in standby with nothing to send,
// sends nothing new, and still gets every message of the accepting side
// (those sent before the fault and after it) exactly once, in order.
func TestAcceptedSessionDialsBack(t *testing.T) {
	ms, logs, conns := dialBackPair(t, false)
	a, b := conns[0], conns[1]
	sendSeqs(t, b, 1, 50) // some of them unacked, or unsent, at the fault
	msgrhook.FaultConn(b)
	waitFaulted(t, b, "the accepted end")
	waitFaulted(t, a, "the dialling end")
	sendSeqs(t, b, 50, 100)
	requireDelivered(t, ms, logs, [2]int{100, 1}, "after the fault")
	require.True(t, b.IsConnected(), "the accepted end reconnected")
	require.False(t, b.Outgoing(), "the session is still the one the peer initiated")
}

// TestDialBackBothFault: both ends of a lossless session fault at once
// while both send, and both reconnect (the accepting end dials back): the
// reconnect race (equal connect_seq) leaves one session, the lower
// address's, and every message arrives exactly once, in order, both ways.
func TestDialBackBothFault(t *testing.T) {
	iters, perSide := 100, 40
	if testing.Short() {
		iters = 20
	}
	for i := range iters {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			ms, logs, conns := dialBackPair(t, true)
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for side := range 2 {
				wg.Go(func() {
					<-gate
					sendSeqs(t, conns[side], 1, perSide/2)
				})
			}
			close(gate)
			msgrhook.FaultConn(conns[0])
			msgrhook.FaultConn(conns[1])
			wg.Wait()
			waitFaulted(t, conns[0], "the dialling end")
			waitFaulted(t, conns[1], "the accepted end")
			for side := range 2 {
				wg.Go(func() { sendSeqs(t, conns[side], perSide/2, perSide) })
			}
			wg.Wait()
			requireDelivered(t, ms, logs, [2]int{perSide, perSide}, fmt.Sprintf("iteration %d", i))
		})
		if t.Failed() {
			return
		}
	}
}
