package msgr_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/tests/msgrsuite"
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

// eventLog records in dispatch order the numbered messages
// (msgrsuite.SeqMessage) it gets and, as -1, each remote reset.
type eventLog struct {
	msgr.BaseDispatcher
	mu sync.Mutex
	ev []int
}

func (l *eventLog) add(e int) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
}

func (l *eventLog) MsDispatch(m *msgr.Message) bool {
	l.add(int(binary.LittleEndian.Uint32(m.Front)))
	return true
}

func (l *eventLog) MsHandleRemoteReset(*msgr.Connection) { l.add(-1) }

func (l *eventLog) snapshot() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.ev...)
}

// TestRemoteResetDiscardsDelayed: received messages held back by
// ms_inject_delay_* belong to their session: when the peer restarted and
// resets it (SESSION_RESET), they go with it (Ceph's reset_session discards
// the DelayedDelivery) instead of being dispatched after the reset. The
// delay queue is FIFO, so the new session's message, dispatched, shows
// that nothing of the old one is left behind it.
func TestRemoteResetDiscardsDelayed(t *testing.T) {
	const old, fresh = 30, 1000
	server := func(addr string) *msgr.Messenger {
		m, err := msgr.New(testConfig(), osd1, msgr.WithLogger(testenv.Logger(t)))
		require.NoError(t, err)
		t.Cleanup(func() { shutdownWithin(t, m, 10*time.Second) })
		m.SetPolicy(msgr.EntityTypeClient, msgr.StatefulServer())
		require.NoError(t, m.Bind(addr))
		require.NoError(t, m.Start())
		return m
	}
	session := func(m *msgr.Messenger) *msgr.Connection {
		t.Helper()
		testenv.WaitFor(t, time.Minute, "the server's session", func() bool {
			cs := m.Connections()
			return len(cs) == 1 && cs[0].IsConnected()
		}, nil)
		return m.Connections()[0]
	}
	srv1 := server("127.0.0.1:0")
	addr := srv1.Addr().String()
	cfg := testConfig()
	cfg.InjectDelayType = "osd"
	cfg.InjectDelayMax = 5 * time.Second // held at the reset: all 30 due within ~1 s has odds 5^-30
	cfg.InjectDelayProbability = 1
	cfg.InitialBackoff, cfg.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	log := &eventLog{}
	cli := startMessenger(t, cfg, client2, false, log)
	cli.SetPolicy(msgr.EntityTypeOSD, msgr.LosslessClient())
	c, err := cli.ConnectTo(msgr.EntityTypeOSD, addr)
	require.NoError(t, err)
	require.NoError(t, c.SendMessage(msgrsuite.SeqMessage(0)))
	sc := session(srv1)
	for n := range old {
		require.NoError(t, sc.SendMessage(msgrsuite.SeqMessage(n)))
	}
	testenv.WaitFor(t, time.Minute, "the old session's messages received", func() bool { return c.Stats().MsgsRecv == old }, nil)
	shutdownWithin(t, srv1, 10*time.Second)
	srv2 := server(addr) // the peer restarted: the reconnect is answered with SESSION_RESET
	require.NoError(t, session(srv2).SendMessage(msgrsuite.SeqMessage(fresh)))
	testenv.WaitFor(t, time.Minute, "the new session's message", func() bool { return slices.Contains(log.snapshot(), fresh) },
		func() string { return fmt.Sprint(log.snapshot()) })
	ev := log.snapshot()
	i := slices.Index(ev, -1)
	require.GreaterOrEqual(t, i, 0, "remote reset reported: %v", ev)
	require.Less(t, i, old, "some of the old session's messages were still held at the reset: %v", ev)
	require.Equal(t, []int{fresh}, ev[i+1:], "after the reset, only the new session's message: %v", ev)
}
