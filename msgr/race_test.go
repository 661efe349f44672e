package msgr_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/tests/msgrsuite"
)

// racePeer starts a bound LosslessPeer messenger whose shutdown the caller
// owns (one pair per iteration).
func racePeer(t *testing.T, num int64, log *msgrsuite.SeqLog, socketFailures int) *msgr.Messenger {
	t.Helper()
	return msgrsuite.PeerMessenger(t, raceConfig(socketFailures), num, log, msgr.LosslessPeer())
}

// raceConfig is the configuration of a race's messengers.
func raceConfig(socketFailures int) *config.Config {
	cfg := testConfig()
	cfg.InjectSocketFailures = socketFailures
	if socketFailures > 0 {
		// Injected failures also hit reconnect attempts, and Ceph's backoff
		// (0.2 s doubling to 15 s) then outgrows any fixed wait on a loaded
		// machine. A short cap keeps the test about ordering, not patience.
		cfg.InitialBackoff, cfg.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	}
	return cfg
}

// liveConns counts a messenger's connections that are not closed.
func liveConns(m *msgr.Messenger) int { return len(m.Connections()) }

// TestConnectionRace: two LosslessPeer messengers dial each other at the
// same moment and send at once; ProtocolV2's race resolution leaves one
// session (one connection on each side) and every message arrives exactly
// once, in order, on both sides (msgrsuite.RaceOnce, which
// tests/rdmasuite runs over rdma).
func TestConnectionRace(t *testing.T) {
	iters := 1000
	if testing.Short() {
		iters = 100
	}
	msgrsuite.ConnectionRace(t, func() *config.Config { return raceConfig(0) }, iters, 20)
}

// TestConnectionRaceFaults: the raced session survives socket failures
// (ms_inject_socket_failures): both sides reconnect, the reconnect races
// resolve, nothing is lost or repeated.
func TestConnectionRaceFaults(t *testing.T) {
	iters := 50
	if testing.Short() {
		iters = 10
	}
	msgrsuite.ConnectionRace(t, func() *config.Config { return raceConfig(50) }, iters, 200)
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
		logs := [2]*msgrsuite.SeqLog{{}, {}}
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
				require.NoError(t, c.SendMessage(msgrsuite.SeqMessage(0)))
			})
		}
		close(gate)
		wg.Wait()
		testenv.WaitFor(t, 10*time.Second, "one session a side with its message", func() bool {
			for side := range 2 {
				if got, _ := logs[side].Snapshot(); len(got) != 1 || liveConns(ms[side]) != 1 {
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
			msgrsuite.ShutdownWithin(t, m, 10*time.Second)
		}
	}
	t.Logf("%d of %d iterations took over the peer's session", took, iters)
	require.NotZero(t, took, "no takeover happened: the getters were not read during one")
}
