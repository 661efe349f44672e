package msgrsuite

// This file is the suite's run under Ceph's fault injection (ms_inject_*):
// the lossless groups with socket operations failing every few hundred and
// received messages held back, which must still arrive exactly once and in
// order.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// InjectFaults turns on the injection RunInjected runs with: 1 in 300
// socket reads and writes fails, 1 in 10 messages from a client or an osd
// is held back up to 10 ms, and 1 in 300 session takeovers sleeps 1 ms.
func InjectFaults(cfg *config.Config) {
	cfg.InjectSocketFailures = 300
	cfg.InjectDelayType = "client osd"
	cfg.InjectDelayMax = 10 * time.Millisecond
	cfg.InjectDelayProbability = 0.1
	cfg.InjectInternalDelays = time.Millisecond
}

// InjectedMessages is how many messages each connection of the injected
// LosslessManyConnsInOrder sends each way at least (a third in -short
// mode); a run in an emulated VM may lower it to stay within its budget.
var InjectedMessages = 10_000

// RunInjected runs the lossless groups of the suite over the named stack
// with InjectFaults applied after Tweak. There an injected failure in a
// reconnect's handshake resets that half-open accepted connection (as
// LosslessRandomCuts' cuts do), so LosslessReconnect checks only that the
// session itself is never reset.
func RunInjected(t *testing.T, stack string) {
	prev := Tweak
	Tweak = func(cfg *config.Config) {
		if prev != nil {
			prev(cfg)
		}
		InjectFaults(cfg)
	}
	t.Cleanup(func() { Tweak = prev })
	runTests(t, stack, []suiteTest{
		{"LosslessManyConnsInOrder", testInjectedManyConns},
		{"LosslessReconnect", testLosslessReconnect},
		{"LosslessRandomCuts", testLosslessRandomCuts},
		{"LosslessBackoffAndPeerRestart", testBackoffAndRestart},
	}, nil)
}

// testInjectedManyConns streams from several lossless clients to one
// stateful server, which answers each message: with only the injected
// faults cutting the sockets, every stream in both directions is complete,
// in order and exactly once, no session is reset, and faults did happen.
func testInjectedManyConns(t *testing.T, stack string) {
	const conns = 4
	per := InjectedMessages
	if short() {
		per /= 3
	}
	cfg := Config(stack)
	cfg.ConnectionIdleTimeout = 30 * time.Second // -race can be slow
	atSrv := make([]orderChecker, conns)
	srvRec := newRecorder(true)
	var mu sync.Mutex
	var bad []string
	srvRec.onMsg = func(m *msgr.Message) {
		stream, idx, err := checkPayload(m.Front)
		if err != nil || stream >= conns {
			mu.Lock()
			bad = append(bad, fmt.Sprintf("bad message: stream %d: %v", stream, err))
			mu.Unlock()
			return
		}
		atSrv[stream].take(m)
		_ = m.Conn.SendMessage(&msgr.Message{Type: 2, Front: payload(stream, idx, 24+int(idx%64))})
	}
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", false, srvRec)
	srv.m.SetPolicy(msgr.EntityTypeClient, msgr.StatefulServer())
	require.NoError(t, srv.m.Start())

	atCli := make([]orderChecker, conns)
	cliRecs := make([]*recorder, conns)
	cs := make([]*msgr.Connection, conns)
	for i := range conns {
		cliRecs[i] = newRecorder(true)
		cliRecs[i].onMsg = atCli[i].take
		cli := newEndpoint(t, cfg, clientName(int64(100+i)), "", false, cliRecs[i])
		cli.m.SetPolicy(msgr.EntityTypeOSD, msgr.LosslessPeer())
		require.NoError(t, cli.m.Start())
		c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
		require.NoError(t, err)
		cs[i] = c
	}
	// send streams [from, to) on every connection, pausing every 50
	// messages so that they go out in many socket operations, not a few
	// big ones.
	send := func(from, to int) {
		var wg sync.WaitGroup
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := from; j < to; j++ {
					if err := cs[i].SendMessage(&msgr.Message{Type: 1, Front: payload(uint64(i), uint64(j), 16+(j*13)%300)}); err != nil {
						mu.Lock()
						bad = append(bad, err.Error())
						mu.Unlock()
						return
					}
					if j%50 == 49 {
						time.Sleep(time.Millisecond)
					}
				}
			}()
		}
		wg.Wait()
	}
	faults := func() (n uint64) {
		for _, c := range cs {
			n += c.Stats().Faults // a fault injected at the server breaks the client's socket too
		}
		return n
	}
	send(0, per)
	// A slow machine moves more bytes per socket operation: keep the
	// streams going (bounded) until an injected failure has cut one.
	deadline := time.Now().Add(30 * time.Second)
	for faults() == 0 && time.Now().Before(deadline) {
		send(per, per+500)
		per += 500
	}
	for i := range conns {
		waitFor(t, 60*time.Second, fmt.Sprintf("stream %d at the server", i), func() bool { return atSrv[i].count() == uint64(per) })
		waitFor(t, 60*time.Second, fmt.Sprintf("stream %d's replies", i), func() bool { return atCli[i].count() == uint64(per) })
	}
	mu.Lock()
	require.Empty(t, bad)
	mu.Unlock()
	for i := range conns {
		require.Empty(t, atSrv[i].errs, "client %d -> server", i)
		require.Empty(t, atCli[i].errs, "server -> client %d", i)
		require.Empty(t, cliRecs[i].resetList(), "a lossless session must not be reset")
		st := cs[i].Stats()
		require.Equal(t, uint64(per), atSrv[i].serverConn().Stats().MsgsRecv, "server delivered each of stream %d's messages once", i)
		require.Equal(t, uint64(per), st.MsgsRecv, "client %d delivered each reply once", i)
	}
	n := faults()
	t.Logf("%d faults over %d connections, %d messages each way on each", n, conns, per)
	require.NotZero(t, n, "ms_inject_socket_failures=%d injected no fault", cfg.InjectSocketFailures)
}
