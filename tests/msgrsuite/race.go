package msgrsuite

// This file is the connection-race check both stacks run (msgr's
// TestConnectionRace over posix, tests/rdmasuite's over rdma): two
// LosslessPeer messengers dial each other at the same moment and send at
// once; one session must be left, carrying every message exactly once, in
// order, both ways.

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// SeqLog records the sequence numbers (SeqMessage's) of the messages that
// reach it and the remote resets it hears.
type SeqLog struct {
	msgr.BaseDispatcher
	mu     sync.Mutex
	got    []uint32
	resets int
}

func (l *SeqLog) MsDispatch(m *msgr.Message) bool {
	l.mu.Lock()
	l.got = append(l.got, binary.LittleEndian.Uint32(m.Front))
	l.mu.Unlock()
	return true
}

func (l *SeqLog) MsHandleRemoteReset(*msgr.Connection) {
	l.mu.Lock()
	l.resets++
	l.mu.Unlock()
}

// Snapshot is what the log holds: the sequence numbers, the resets.
func (l *SeqLog) Snapshot() ([]uint32, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uint32(nil), l.got...), l.resets
}

// SeqMessage is message n of a numbered stream (its Front).
func SeqMessage(n int) *msgr.Message {
	return &msgr.Message{Type: 1, Front: binary.LittleEndian.AppendUint32(nil, uint32(n))}
}

// Seqs is the stream 0..n-1.
func Seqs(n int) []uint32 {
	s := make([]uint32, n)
	for i := range s {
		s[i] = uint32(i)
	}
	return s
}

// PeerMessenger starts a messenger bound on loopback (ServerHost there
// applies) with cfg, default policy p and dispatcher log, logging to t
// unless cfg has a logger; the caller owns its shutdown (ShutdownWithin).
func PeerMessenger(t testing.TB, cfg *config.Config, num int64, log *SeqLog, p msgr.Policy) *msgr.Messenger {
	t.Helper()
	var opts []msgr.Option
	if cfg.Logger == nil {
		opts = append(opts, msgr.WithLogger(testenv.Logger(t)))
	}
	m, err := msgr.New(cfg, osdName(num), opts...)
	require.NoError(t, err)
	m.SetDefaultPolicy(p)
	m.AddDispatcherTail(log)
	require.NoError(t, m.Bind(serverAddr("127.0.0.1:0")))
	require.NoError(t, m.Start())
	return m
}

// ShutdownWithin fails the test when Shutdown does not return in time (a
// lock left held, a goroutine never ending).
func ShutdownWithin(t testing.TB, m *msgr.Messenger, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- m.Shutdown() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(d):
		t.Fatalf("Shutdown did not return within %v", d)
	}
}

// raceLanes is how many races run at once. A race spends most of its time
// waiting (two stack starts, a handshake, a shutdown), so two lanes finish
// the thousand in CI nearly twice as fast; each race still has its own
// messengers, addresses and verdict.
const raceLanes = 2

// ConnectionRace runs iters connection races (RaceOnce), each between two
// fresh messengers on newCfg's configurations, raceLanes at a time (one
// parallel subtest per lane; newCfg must be safe to call concurrently), and
// reports how long they took (every hundred too); a lane stops at its first
// failure.
func ConnectionRace(t *testing.T, newCfg func() *config.Config, iters, perSide int) {
	start := time.Now()
	var done atomic.Int64
	t.Run("lanes", func(t *testing.T) {
		for lane := range raceLanes {
			t.Run(fmt.Sprint(lane), func(t *testing.T) {
				t.Parallel()
				for i := lane; i < iters; i += raceLanes {
					RaceOnce(t, newCfg, i, perSide)
					if t.Failed() {
						return
					}
					if n := done.Add(1); n%100 == 0 && int(n) < iters {
						t.Logf("%d races in %v", n, time.Since(start))
					}
				}
			})
		}
	})
	t.Logf("%d races in %v", done.Load(), time.Since(start))
	if !t.Failed() {
		require.EqualValues(t, iters, done.Load(), "races run")
	}
}

// RaceOnce is one connection race: two LosslessPeer messengers (newCfg's
// configurations) dial each other at the same moment and send perSide
// messages each at once; ProtocolV2's race resolution must leave one
// session (one connection on each side, the one each Connect returned),
// and every message arrives exactly once, in order, with no remote reset.
func RaceOnce(t *testing.T, newCfg func() *config.Config, iter, perSide int) {
	t.Helper()
	logs := [2]*SeqLog{{}, {}}
	ms := [2]*msgr.Messenger{PeerMessenger(t, newCfg(), 1, logs[0], msgr.LosslessPeer()),
		PeerMessenger(t, newCfg(), 2, logs[1], msgr.LosslessPeer())}
	defer func() {
		for _, m := range ms {
			ShutdownWithin(t, m, 10*time.Second)
		}
	}()
	var conns [2]*msgr.Connection
	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make([]error, 2)
	for side := range 2 {
		wg.Go(func() {
			<-gate
			c, err := ms[side].Connect(ms[1-side].Addr().String())
			if err != nil {
				errs[side] = err
				return
			}
			conns[side] = c
			for n := range perSide {
				if err := c.SendMessage(SeqMessage(n)); err != nil {
					errs[side] = err
					return
				}
			}
		})
	}
	close(gate)
	wg.Wait()
	require.NoError(t, errs[0], "iteration %d", iter)
	require.NoError(t, errs[1], "iteration %d", iter)
	live := func(side int) int { return len(ms[side].Connections()) }
	describe := func() string {
		g0, r0 := logs[0].Snapshot()
		g1, r1 := logs[1].Snapshot()
		return fmt.Sprintf("iteration %d: side 0 got %v (%d resets, %d conns), side 1 got %v (%d resets, %d conns)",
			iter, g0, r0, live(0), g1, r1, live(1))
	}
	done := func() bool {
		for side := range 2 {
			if got, _ := logs[side].Snapshot(); len(got) < perSide || live(side) != 1 {
				return false
			}
		}
		return true
	}
	// The bound catches a hang, not slowness.
	testenv.WaitFor(t, time.Minute, "every message and one session a side", done, describe)
	for side := range 2 {
		got, resets := logs[side].Snapshot()
		require.Equal(t, Seqs(perSide), got, "side %d, iteration %d: exactly once, in order", side, iter)
		require.Zero(t, resets, "side %d, iteration %d: no remote reset", side, iter)
	}
	// Both Connect calls name the one session: replies on it reach the peer.
	for side := range 2 {
		require.Equal(t, ms[side].Connections()[0], conns[side], "side %d, iteration %d: Connect's connection is the session", side, iter)
	}
}
