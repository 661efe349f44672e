package msgr_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	_ "github.com/asyncmsgr/asyncmsgr/posixfallback" // registers "posix"
)

func testConfig() *config.Config {
	cfg := config.Default()
	cfg.OpThreads = 1
	return cfg
}

func TestMessengerLifecycleErrors(t *testing.T) {
	m, err := msgr.New(testConfig(), msgr.EntityName{Type: msgr.EntityTypeClient, Num: 1})
	require.NoError(t, err)
	_, err = m.Connect("127.0.0.1:1")
	require.ErrorIs(t, err, msgr.ErrNotStarted)
	require.Nil(t, m.Addr())
	require.NoError(t, m.Bind("127.0.0.1:0"))
	require.Error(t, m.Bind("127.0.0.1:0"), "second bind")
	require.NotNil(t, m.Addr())
	require.NoError(t, m.Start())
	require.Error(t, m.Start(), "second start")
	require.NoError(t, m.Shutdown())
	require.NoError(t, m.Shutdown(), "idempotent")
	m.Wait()
	_, err = m.Connect("127.0.0.1:1")
	require.ErrorIs(t, err, net.ErrClosed)
	require.ErrorIs(t, m.Start(), net.ErrClosed)
}

func TestMessengerUnknownStack(t *testing.T) {
	cfg := testConfig()
	cfg.TransportType = "no-such-stack"
	_, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeClient})
	require.Error(t, err)
}

func TestBindIPv6(t *testing.T) {
	m, err := msgr.New(testConfig(), msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 3})
	require.NoError(t, err)
	defer m.Shutdown()
	if err := m.Bind("[::1]:0"); err != nil {
		testenv.Missing(t, "IPv6 loopback: %v", err)
	}
	require.NoError(t, m.Start())
	srv := &pong{}
	m.AddDispatcherTail(srv)
	cli, err := msgr.New(testConfig(), msgr.EntityName{Type: msgr.EntityTypeClient, Num: 4})
	require.NoError(t, err)
	defer cli.Shutdown()
	got := make(chan *msgr.Message, 1)
	cli.AddDispatcherTail(&catcher{ch: got})
	require.NoError(t, cli.Start())
	require.NoError(t, cli.SendMessage(&msgr.Message{Type: 1, Front: []byte("ping6")}, m.Addr().String()))
	select {
	case r := <-got:
		require.Equal(t, "pong:ping6", string(r.Front))
	case <-time.After(10 * time.Second):
		t.Fatal("no reply over IPv6")
	}
}

// pong answers every message on its connection, from the worker goroutine.
type pong struct{ msgr.BaseDispatcher }

func (*pong) CanFastDispatch(*msgr.Message) bool { return true }
func (*pong) FastDispatch(m *msgr.Message) {
	_ = m.Conn.SendMessage(&msgr.Message{Type: m.Type + 1, Front: append([]byte("pong:"), m.Front...)})
}

// catcher hands messages to a channel from the dispatch queue goroutine.
type catcher struct {
	msgr.BaseDispatcher
	ch chan *msgr.Message
}

func (c *catcher) MsDispatch(m *msgr.Message) bool { c.ch <- m; return true }

// Example shows a server answering a client over the posix stack.
func Example() {
	cfg := config.Default() // ms_async_transport_type = posix
	server, _ := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 0})
	server.AddDispatcherTail(&pong{})
	_ = server.Bind("127.0.0.1:0")
	_ = server.Start()
	defer server.Shutdown()

	client, _ := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: 1})
	replies := make(chan *msgr.Message, 1)
	client.AddDispatcherTail(&catcher{ch: replies})
	_ = client.Start()
	defer client.Shutdown()

	conn, _ := client.ConnectTo(msgr.EntityTypeOSD, server.Addr().String())
	_ = conn.SendMessage(&msgr.Message{Type: 1, Front: []byte("ping")})
	r := <-replies
	fmt.Println(string(r.Front), r.Type, r.Peer)
	// Output: pong:ping 2 osd.0
}

// gated holds the dispatch queue on its first message until released.
type gated struct {
	msgr.BaseDispatcher
	gate chan struct{}
	held chan struct{}
	got  chan *msgr.Message
	once bool
}

func (g *gated) MsDispatch(m *msgr.Message) bool {
	if !g.once {
		g.once = true
		close(g.held)
		<-g.gate
	}
	g.got <- m
	return true
}

func TestPriorityDispatchEndToEnd(t *testing.T) {
	srv, err := msgr.New(testConfig(), msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 1}, msgr.WithPriorityDispatch())
	require.NoError(t, err)
	defer srv.Shutdown()
	g := &gated{gate: make(chan struct{}), held: make(chan struct{}), got: make(chan *msgr.Message, 64)}
	srv.AddDispatcherTail(g)
	require.NoError(t, srv.Bind("127.0.0.1:0"))
	require.NoError(t, srv.Start())
	cli, err := msgr.New(testConfig(), msgr.EntityName{Type: msgr.EntityTypeClient, Num: 2})
	require.NoError(t, err)
	defer cli.Shutdown()
	require.NoError(t, cli.Start())
	c, err := cli.ConnectTo(msgr.EntityTypeOSD, srv.Addr().String())
	require.NoError(t, err)

	prios := []uint16{msgr.PrioLow, msgr.PrioHigh, msgr.PrioDefault, msgr.PrioHigh, msgr.PrioLow}
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Tid: 100})) // holds the queue
	select {
	case <-g.held:
	case <-time.After(10 * time.Second):
		t.Fatal("first message not dispatched")
	}
	// one at a time, so that they cross the wire (and reach the queue) in
	// this order and only the dispatch queue can reorder them
	for i, p := range prios {
		require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Priority: p, Tid: uint64(i)}))
		deadline := time.Now().Add(10 * time.Second)
		for srv.DispatchQueue().Len() < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("queue holds %d of %d", srv.DispatchQueue().Len(), i+1)
			}
			time.Sleep(time.Millisecond)
		}
	}
	close(g.gate)
	var tids []uint64
	for len(tids) < len(prios)+1 {
		select {
		case m := <-g.got:
			tids = append(tids, m.Tid)
		case <-time.After(10 * time.Second):
			t.Fatalf("got %v", tids)
		}
	}
	// the held one, then high (FIFO), default, low (FIFO)
	require.Equal(t, []uint64{100, 1, 3, 2, 0, 4}, tids)
}
