package msgr_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// injectPair is a stateful server with cfg's injection, a catcher for what
// it dispatches, and a lossless client connected to it with cliCfg.
func injectPair(t *testing.T, srvCfg, cliCfg *config.Config) (*msgr.Connection, chan *msgr.Message, chan time.Duration) {
	t.Helper()
	got := make(chan *msgr.Message, 10_000)
	held := make(chan time.Duration, 10_000)
	srv, err := msgr.New(srvCfg, osd1)
	require.NoError(t, err)
	t.Cleanup(func() { shutdownWithin(t, srv, 10*time.Second) })
	srv.SetPolicy(msgr.EntityTypeClient, msgr.StatefulServer())
	srv.AddDispatcherTail(&dispatchFunc{f: func(m *msgr.Message) {
		held <- time.Since(m.RecvStamp)
		got <- m
	}})
	require.NoError(t, srv.Bind("127.0.0.1:0"))
	require.NoError(t, srv.Start())
	cli := startMessenger(t, cliCfg, client2, false)
	cli.SetPolicy(msgr.EntityTypeOSD, msgr.LosslessPeer())
	c, err := cli.ConnectTo(msgr.EntityTypeOSD, srv.Addr().String())
	require.NoError(t, err)
	return c, got, held
}

// dispatchFunc dispatches every message to f from the dispatch queue.
type dispatchFunc struct {
	msgr.BaseDispatcher
	f func(m *msgr.Message)
}

func (d *dispatchFunc) MsDispatch(m *msgr.Message) bool { d.f(m); return true }

func indexed(i int) *msgr.Message {
	return &msgr.Message{Type: 1, Front: binary.LittleEndian.AppendUint64(make([]byte, 0, 64), uint64(i))[:64]}
}

// requireInOrder takes n messages from got and checks they are 0..n-1.
func requireInOrder(t *testing.T, got chan *msgr.Message, n int) {
	t.Helper()
	for i := range n {
		select {
		case m := <-got:
			require.Equal(t, uint64(i), binary.LittleEndian.Uint64(m.Front), "message %d", i)
		case <-time.After(30 * time.Second):
			t.Fatalf("message %d of %d not delivered", i, n)
		}
	}
	select {
	case m := <-got:
		t.Fatalf("message %d delivered again", binary.LittleEndian.Uint64(m.Front))
	case <-time.After(100 * time.Millisecond):
	}
}

// TestInjectDelay: with every message from a client held back up to 30 ms,
// they are still dispatched in order, once each, and some are held.
func TestInjectDelay(t *testing.T) {
	srvCfg := testConfig()
	srvCfg.InjectDelayType = "client"
	srvCfg.InjectDelayMax = 30 * time.Millisecond
	srvCfg.InjectDelayProbability = 1
	c, got, held := injectPair(t, srvCfg, testConfig())
	const n = 40
	for i := range n {
		require.NoError(t, c.SendMessage(indexed(i)))
	}
	requireInOrder(t, got, n)
	var longest time.Duration
	for range n {
		longest = max(longest, <-held)
	}
	// Each hold is uniform in 0..30 ms: all 40 under 5 ms has probability 6^-40.
	require.Greater(t, longest, 5*time.Millisecond, "no message was held back")
}

// TestInjectSocketFailures: with 1 in 10 socket operations failing on both
// sides, a lossless session faults and reconnects, and every message is
// dispatched exactly once, in order.
func TestInjectSocketFailures(t *testing.T) {
	cfg := testConfig()
	cfg.InjectSocketFailures = 10
	cfg.InitialBackoff = time.Millisecond
	cfg.MaxBackoff = 20 * time.Millisecond
	c, got, _ := injectPair(t, cfg, cfg)
	const n = 2000
	for i := range n {
		require.NoError(t, c.SendMessage(indexed(i)))
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // let the socket operations interleave with the sends
		}
	}
	requireInOrder(t, got, n)
	require.NotZero(t, c.Stats().Faults, "no failure was injected")
}
