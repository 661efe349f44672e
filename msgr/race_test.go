package msgr_test

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// seqLog records the sequence numbers (the Front) of the messages that
// reach it and the remote resets it hears.
type seqLog struct {
	msgr.BaseDispatcher
	mu     sync.Mutex
	got    []uint32
	resets int
}

func (l *seqLog) MsDispatch(m *msgr.Message) bool {
	l.mu.Lock()
	l.got = append(l.got, binary.LittleEndian.Uint32(m.Front))
	l.mu.Unlock()
	return true
}

func (l *seqLog) MsHandleRemoteReset(*msgr.Connection) {
	l.mu.Lock()
	l.resets++
	l.mu.Unlock()
}

func (l *seqLog) snapshot() ([]uint32, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uint32(nil), l.got...), l.resets
}

// racePeer starts a bound LosslessPeer messenger whose shutdown the caller
// owns (one pair per iteration).
func racePeer(t *testing.T, num int64, log *seqLog, socketFailures int) *msgr.Messenger {
	t.Helper()
	cfg := testConfig()
	cfg.InjectSocketFailures = socketFailures
	if socketFailures > 0 {
		// Injected failures also hit reconnect attempts, and Ceph's backoff
		// (0.2 s doubling to 15 s) then outgrows any fixed wait on a loaded
		// machine. A short cap keeps the test about ordering, not patience.
		cfg.InitialBackoff, cfg.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	}
	return peerMessenger(t, cfg, num, log, msgr.LosslessPeer())
}

// peerMessenger starts a bound messenger with cfg whose default policy is
// p; the caller owns its shutdown.
func peerMessenger(t *testing.T, cfg *config.Config, num int64, log *seqLog, p msgr.Policy) *msgr.Messenger {
	t.Helper()
	m, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: num}, msgr.WithLogger(testenv.Logger(t)))
	require.NoError(t, err)
	m.SetDefaultPolicy(p)
	m.AddDispatcherTail(log)
	require.NoError(t, m.Bind("127.0.0.1:0"))
	require.NoError(t, m.Start())
	return m
}

// liveConns counts a messenger's connections that are not closed.
func liveConns(m *msgr.Messenger) int { return len(m.Connections()) }

// TestConnectionRace: two LosslessPeer messengers dial each other at the
// same moment and send at once; ProtocolV2's race resolution leaves one
// session (one connection on each side) and every message arrives exactly
// once, in order, on both sides.
func TestConnectionRace(t *testing.T) {
	iters, perSide := 1000, 20
	if testing.Short() {
		iters = 100
	}
	start := time.Now()
	for i := range iters {
		raceOnce(t, i, perSide, 0)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d races in %v", iters, time.Since(start))
}

// TestConnectionRaceFaults: the raced session survives socket failures
// (ms_inject_socket_failures): the lower address's dial reconnects, the
// other side's session takes the socket back, nothing is lost or repeated.
func TestConnectionRaceFaults(t *testing.T) {
	iters := 50
	if testing.Short() {
		iters = 10
	}
	for i := range iters {
		raceOnce(t, i, 200, 50)
		if t.Failed() {
			return
		}
	}
}

func raceOnce(t *testing.T, iter, perSide, socketFailures int) {
	t.Helper()
	logs := [2]*seqLog{{}, {}}
	ms := [2]*msgr.Messenger{racePeer(t, 1, logs[0], socketFailures), racePeer(t, 2, logs[1], socketFailures)}
	defer func() {
		for _, m := range ms {
			shutdownWithin(t, m, 10*time.Second)
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
				front := binary.LittleEndian.AppendUint32(nil, uint32(n))
				if err := c.SendMessage(&msgr.Message{Type: 1, Front: front}); err != nil {
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
	describe := func() string {
		g0, r0 := logs[0].snapshot()
		g1, r1 := logs[1].snapshot()
		return fmt.Sprintf("iteration %d: side 0 got %v (%d resets, %d conns), side 1 got %v (%d resets, %d conns)",
			iter, g0, r0, liveConns(ms[0]), g1, r1, liveConns(ms[1]))
	}
	done := func() bool {
		for side := range 2 {
			if got, _ := logs[side].snapshot(); len(got) < perSide || liveConns(ms[side]) != 1 {
				return false
			}
		}
		return true
	}
	// The bound catches a hang, not slowness.
	testenv.WaitFor(t, time.Minute, "every message and one session a side", done, describe)
	for side := range 2 {
		got, resets := logs[side].snapshot()
		want := make([]uint32, perSide)
		for n := range want {
			want[n] = uint32(n)
		}
		require.Equal(t, want, got, "side %d, iteration %d: exactly once, in order", side, iter)
		require.Zero(t, resets, "side %d, iteration %d: no remote reset", side, iter)
	}
	// Both Connect calls name the one session: replies on it reach the peer.
	for side := range 2 {
		require.Equal(t, ms[side].Connections()[0], conns[side], "side %d, iteration %d: Connect's connection is the session", side, iter)
	}
}

// TestConnectionRaceGettersDuringTakeover: Outgoing and String may be
// called from any goroutine, also while a connection race hands the peer's
// session to our dialling Connection (race.go), which changes which side
// the Connection is of that session. Under -race a read of the role
// without the owner's lock fails this test.
func TestConnectionRaceGettersDuringTakeover(t *testing.T) {
	iters := 100
	if testing.Short() {
		iters = 30
	}
	took := 0
	for i := range iters {
		logs := [2]*seqLog{{}, {}}
		ms := [2]*msgr.Messenger{racePeer(t, 1, logs[0], 0), racePeer(t, 2, logs[1], 0)}
		var conns [2]*msgr.Connection
		var wg sync.WaitGroup
		gate := make(chan struct{})
		stop := make(chan struct{})
		var readers sync.WaitGroup
		for side := range 2 {
			wg.Go(func() {
				<-gate
				c, err := ms[side].Connect(ms[1-side].Addr().String())
				require.NoError(t, err)
				conns[side] = c
				readers.Go(func() {
					for {
						_ = c.Outgoing()
						require.NotEmpty(t, c.String())
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Microsecond):
						}
					}
				})
				front := binary.LittleEndian.AppendUint32(nil, 0)
				require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: front}))
			})
		}
		close(gate)
		wg.Wait()
		testenv.WaitFor(t, 10*time.Second, "one session a side with its message", func() bool {
			for side := range 2 {
				if got, _ := logs[side].snapshot(); len(got) != 1 || liveConns(ms[side]) != 1 {
					return false
				}
			}
			return true
		}, func() string { return fmt.Sprintf("iteration %d", i) })
		close(stop)
		readers.Wait()
		// exactly one side's Connection took over the peer's dial
		out := 0
		for side := range 2 {
			if conns[side].Outgoing() {
				out++
			}
		}
		require.Equal(t, 1, out, "iteration %d: one side initiated the session", i)
		for side := range 2 {
			if c := conns[side]; c.Target() != "" && !c.Outgoing() {
				took++ // our dial took over the peer's session
			}
		}
		for _, m := range ms {
			shutdownWithin(t, m, 10*time.Second)
		}
	}
	t.Logf("%d of %d iterations took over the peer's session", took, iters)
	require.NotZero(t, took, "no takeover happened: the getters were not read during one")
}
