package msgr_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
	"weak"

	"golang.org/x/sys/unix"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/tests/msgrsuite"
)

// startMessenger starts a messenger with cfg (testConfig when nil) and
// dispatchers ds, bound on loopback when bind; it is shut down at the end
// of the test.
func startMessenger(t *testing.T, cfg *config.Config, name msgr.EntityName, bind bool, ds ...msgr.Dispatcher) *msgr.Messenger {
	t.Helper()
	if cfg == nil {
		cfg = testConfig()
	}
	m, err := msgr.New(cfg, name, msgr.WithLogger(testenv.Logger(t)))
	require.NoError(t, err)
	t.Cleanup(func() { shutdownWithin(t, m, 10*time.Second) })
	for _, d := range ds {
		m.AddDispatcherTail(d)
	}
	if bind {
		require.NoError(t, m.Bind("127.0.0.1:0"))
	}
	require.NoError(t, m.Start())
	return m
}

var (
	osd1    = msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 1}
	client2 = msgr.EntityName{Type: msgr.EntityTypeClient, Num: 2}
)

// newPair starts a server (bound on loopback) and a client messenger with
// cfg (testConfig when nil).
func newPair(t *testing.T, cfg *config.Config) (srv, cli *msgr.Messenger) {
	return startMessenger(t, cfg, osd1, true), startMessenger(t, cfg, client2, false)
}

// shutdownWithin fails the test when Shutdown does not return in time
// (a lock left held, a goroutine never ending).
func shutdownWithin(t *testing.T, m *msgr.Messenger, d time.Duration) {
	t.Helper()
	msgrsuite.ShutdownWithin(t, m, d)
}

// TestSendNilMessage: a nil message is an error, not a nil dereference that
// (recovered) left a connection lock held and Shutdown hanging.
func TestSendNilMessage(t *testing.T) {
	srv, cli := newPair(t, nil)
	addr := srv.Addr().String()
	try := func(f func() error) (err error, panicked any) {
		defer func() { panicked = recover() }()
		return f(), nil
	}
	err, p := try(func() error { return cli.SendMessage(nil, addr) })
	require.Nil(t, p, "SendMessage(nil, addr) panicked")
	require.ErrorIs(t, err, msgr.ErrNilMessage)
	require.Empty(t, cli.Connections(), "a refused message must not open a connection")

	c, err := cli.Connect(addr)
	require.NoError(t, err)
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: []byte("x")}))
	err, p = try(func() error { return c.SendMessage(nil) })
	require.Nil(t, p, "Connection.SendMessage(nil) panicked")
	require.ErrorIs(t, err, msgr.ErrNilMessage)
	var nc *msgr.Connection
	err, p = try(func() error { return nc.SendMessage(&msgr.Message{}) })
	require.Nil(t, p, "SendMessage on a nil *Connection panicked")
	require.ErrorIs(t, err, msgr.ErrNilConnection)
	// A nil dispatcher is refused where it is added, holding no lock.
	require.PanicsWithValue(t, "msgr: nil Dispatcher", func() { cli.AddDispatcherTail(nil) })
	require.PanicsWithValue(t, "msgr: nil Dispatcher", func() { cli.AddDispatcherHead(nil) })
	// The connection still works, and shuts down.
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: []byte("y")}))
	shutdownWithin(t, cli, 10*time.Second)
}

// TestSendTooLarge: the sender checks its own ms_max_frame_segment.
func TestSendTooLarge(t *testing.T) {
	cfg := testConfig()
	cfg.MaxFrameSegment = 1 << 20
	srv, cli := newPair(t, cfg)
	limit := cfg.MaxFrameSegment
	addr := srv.Addr().String()
	big := &msgr.Message{Type: 1, Data: make([]byte, limit)} // + the header: over
	err := cli.SendMessage(big, addr)
	require.ErrorIs(t, err, msgr.ErrMessageTooLarge)
	require.Contains(t, err.Error(), "ms_max_frame_segment")
	require.NotContains(t, err.Error(), "\n")
	require.Empty(t, cli.Connections())
	c, err := cli.Connect(addr)
	require.NoError(t, err)
	require.ErrorIs(t, c.SendMessage(big), msgr.ErrMessageTooLarge)
	ok := &msgr.Message{Type: 1, Front: make([]byte, 1<<10)}
	require.NoError(t, c.SendMessage(ok))
}

// TestChurnReleasesMemory: connections that close give everything back at
// once; their timers (the handshake deadline, the tick) used to keep each
// closed connection and its read buffers until ms_connection_ready_timeout.
func TestChurnReleasesMemory(t *testing.T) {
	srv, cli := newPair(t, nil)
	srv.SetPolicy(msgr.EntityTypeClient, msgr.StatelessServer())
	srv.AddDispatcherTail(&pong{})
	got := make(chan *msgr.Message, 1)
	cli.AddDispatcherTail(&catcher{ch: got})
	addr := srv.Addr().String()
	cycle := func(i int) {
		c, err := cli.Connect(addr)
		require.NoError(t, err)
		require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: []byte("churn")}))
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("cycle %d: no reply", i)
		}
		c.MarkDown()
		<-c.Closed()
	}
	settled := func() uint64 {
		// the server notices each close on its own; wait until it has
		testenv.WaitFor(t, 10*time.Second, "the server to drop closed sessions",
			func() bool { return len(srv.Connections()) == 0 && len(cli.Connections()) == 0 },
			func() string {
				return fmt.Sprintf("%d server, %d client connections", len(srv.Connections()), len(cli.Connections()))
			})
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for i := 0; i < 50; i++ { // warm up pools and maps
		cycle(i)
	}
	before := settled()
	const n = 1000
	for i := 0; i < n; i++ {
		cycle(i)
	}
	after := settled()
	t.Logf("heap %.1f MiB before %d cycles, %.1f MiB right after", float64(before)/(1<<20), n, float64(after)/(1<<20))
	// Each cycle held two 64 KiB read buffers (client and server) and two
	// connections until their handshake timers fired: over 128 MiB here.
	// What remains must not grow with the number of cycles.
	require.Less(t, int64(after)-int64(before), int64(4<<20), "closed connections are still held")
}

// events records the optional dispatcher events.
type events struct {
	msgr.BaseDispatcher
	mu       sync.Mutex
	refusals []time.Time
	faults   []error
}

func (e *events) MsHandleRefused(*msgr.Connection) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refusals = append(e.refusals, time.Now())
	return true
}

func (e *events) MsHandleFault(_ *msgr.Connection, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, err)
}

func (e *events) counts() (refusals, faults int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.refusals), len(e.faults)
}

func (e *events) lastFault() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.faults) == 0 {
		return nil
	}
	return e.faults[len(e.faults)-1]
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestRefusedReported: a lossless client to a closed port retried forever
// with no callback; now each refusal reaches MsHandleRefused, retries back
// off, and MarkDown stops them.
func TestRefusedReported(t *testing.T) {
	cfg := testConfig()
	cfg.InitialBackoff = 50 * time.Millisecond
	cfg.MaxBackoff = 200 * time.Millisecond
	ev := &events{}
	cli := startMessenger(t, cfg, client2, false, ev)
	cli.SetDefaultPolicy(msgr.LosslessClient())
	start := time.Now()
	c, err := cli.Connect(closedPort(t))
	require.NoError(t, err)
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: []byte("anyone?")}))
	testenv.WaitFor(t, 20*time.Second, "three refusals reported", func() bool { r, _ := ev.counts(); return r >= 3 },
		func() string { r, f := ev.counts(); return fmt.Sprintf("%d refusals, %d faults", r, f) })
	r, f := ev.counts()
	elapsed := time.Since(start)
	require.Zero(t, f, "a refusal is reported as such, not as a fault")
	// Attempts are at least ms_initial_backoff apart, whatever the speed.
	require.LessOrEqual(t, r, 1+int(elapsed/cfg.InitialBackoff), "refused connects retried without backing off")
	require.ErrorIs(t, c.Err(), syscall.ECONNREFUSED)
	select {
	case <-c.Closed():
		t.Fatal("a lossless connection gave up by itself")
	default:
	}
	c.MarkDown()
	<-c.Closed()
	r1, _ := ev.counts()
	time.Sleep(3 * cfg.MaxBackoff)
	r2, _ := ev.counts()
	require.LessOrEqual(t, r2, r1+1, "retries went on after MarkDown") // one may have been queued
}

// TestRefusedLossy: a lossy connection reports the refusal, then the reset.
func TestRefusedLossy(t *testing.T) {
	ev := &events{}
	resets := make(chan error, 4)
	cli := startMessenger(t, nil, client2, false, ev, &resetter{ch: resets})
	cli.SetDefaultPolicy(msgr.LossyClient())
	c, err := cli.Connect(closedPort(t))
	require.NoError(t, err)
	select {
	case err := <-resets:
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
	case <-time.After(10 * time.Second):
		t.Fatal("no reset")
	}
	<-c.Closed()
	r, _ := ev.counts()
	require.Equal(t, 1, r)
}

type resetter struct {
	msgr.BaseDispatcher
	ch chan error
}

func (r *resetter) MsHandleReset(_ *msgr.Connection, err error) bool { r.ch <- err; return true }

// TestOversizedFrameBacksOff: a peer refusing a frame over its
// ms_max_frame_segment made a lossless client reconnect and resend it
// hundreds of times a second, telling nobody. Now the reconnects back off,
// the client's FaultHandler hears ErrSessionStalled, and the server's hears
// why it dropped the session.
func TestOversizedFrameBacksOff(t *testing.T) {
	scfg := testConfig()
	scfg.MaxFrameSegment = 64 << 10
	sev := &events{}
	srv := startMessenger(t, scfg, osd1, true, sev)

	ccfg := testConfig()
	ccfg.InitialBackoff = 100 * time.Millisecond
	ccfg.MaxBackoff = 400 * time.Millisecond
	cev := &events{}
	cli := startMessenger(t, ccfg, client2, false, cev)
	c, err := cli.ConnectTo(msgr.EntityTypeOSD, srv.Addr().String())
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 7, Data: make([]byte, 1<<20)}))
	testenv.WaitFor(t, 20*time.Second, "the client to hear its session stalled",
		func() bool { return errors.Is(cev.lastFault(), msgr.ErrSessionStalled) },
		func() string { return fmt.Sprint(cev.lastFault()) })
	time.Sleep(time.Second)
	elapsed := time.Since(start)
	st := c.Stats()
	t.Logf("after %v: %d reconnects, %d bytes sent; client fault: %v", elapsed, st.Reconnects, st.BytesSent, cev.lastFault())
	// Reconnects after the first (at once) are ms_initial_backoff apart at
	// least, whatever the speed.
	require.LessOrEqual(t, st.Reconnects, uint64(2+elapsed/ccfg.InitialBackoff), "reconnect storm")
	require.Contains(t, cev.lastFault().Error(), "1048576 bytes")
	require.NotContains(t, cev.lastFault().Error(), "\n")
	_, sf := sev.counts()
	require.NotZero(t, sf, "the server's dispatcher was not told")
	require.Contains(t, sev.lastFault().Error(), "exceeds")
	select {
	case <-c.Closed():
		t.Fatal("the lossless session gave up by itself")
	default:
	}
}

// unanswered returns the address of a listener whose accept queue is full,
// so that the kernel drops further SYNs: a dial there hangs until its
// timeout.
func unanswered(t *testing.T) string {
	_, sa := testenv.LoopbackListener(t, 0, 0)
	for i := 0; i < 2; i++ { // fill the queue (backlog 0 holds one)
		_ = unix.Connect(testenv.TCPSocket(t, unix.SOCK_NONBLOCK), sa)
	}
	time.Sleep(50 * time.Millisecond)
	return fmt.Sprintf("127.0.0.1:%d", sa.Port)
}

// TestClosedConnectionUnreachable: once closed, a connection is garbage,
// whatever was pending: the dial goroutine and the handshake timer of one
// closed while dialling a peer that does not answer, the timers of one
// closed when ready.
func TestClosedConnectionUnreachable(t *testing.T) {
	cfg := testConfig()
	cfg.ConnectionReadyTimeout = 3 * time.Second // how long the dial hangs
	srv, cli := newPair(t, cfg)
	collected := func(c *msgr.Connection) func() bool {
		wp := weak.Make(c)
		return func() bool { runtime.GC(); return wp.Value() == nil }
	}
	c, err := cli.Connect(unanswered(t))
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond) // the dial is under way
	c.MarkDown()
	<-c.Closed()
	gone := collected(c)
	c = nil
	testenv.WaitFor(t, 5*time.Second, "the connection closed while dialling to be collected", gone, func() string { return "" })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err = cli.ConnectContext(ctx, srv.Addr().String())
	require.NoError(t, err)
	c.MarkDown()
	<-c.Closed()
	gone = collected(c)
	c = nil
	testenv.WaitFor(t, 5*time.Second, "the connection closed when ready to be collected", gone, func() string { return "" })
}

// TestKeepaliveOneEnd: on an idle session with keepalives on at both ends
// only the end that initiated it sends KEEPALIVE2s (about one per
// interval), the other just answers them; an accepting end whose peer
// sends none (keepalives off there) sends its own, every second interval,
// and gets them answered.
func TestKeepaliveOneEnd(t *testing.T) {
	const interval = 100 * time.Millisecond
	const window = 1500 * time.Millisecond
	for _, tc := range []struct {
		name      string
		clientKA  time.Duration
		minClient uint64 // KEEPALIVE2s the client sends in the window, at least
		minServer uint64 // and the server, at least
		maxServer uint64 // and at most
	}{
		// (a late tick of the client, on a loaded host, may let the
		// server send one or two; sending every interval, it sent 15)
		{"both on", interval, 5, 0, 2},
		{"client off", 0, 0, 3, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := func(ka time.Duration) *config.Config {
				c := testConfig()
				c.KeepaliveInterval = ka
				c.ConnectionIdleTimeout = 10 * time.Second
				return c
			}
			srv := startMessenger(t, cfg(interval), osd1, true)
			cli := startMessenger(t, cfg(tc.clientKA), client2, false)
			c, err := cli.ConnectTo(msgr.EntityTypeOSD, srv.Addr().String())
			require.NoError(t, err)
			var s *msgr.Connection
			testenv.WaitFor(t, 10*time.Second, "the session at both ends", func() bool {
				if cs := srv.Connections(); len(cs) == 1 && cs[0].IsConnected() && c.IsConnected() {
					s = cs[0]
				}
				return s != nil
			}, func() string { return fmt.Sprintf("client error %v", c.Err()) })
			c0, s0 := c.Stats(), s.Stats()
			time.Sleep(window)
			c1, s1 := c.Stats(), s.Stats()
			sent, srvSent := c1.KeepalivesSent-c0.KeepalivesSent, s1.KeepalivesSent-s0.KeepalivesSent
			t.Logf("in %v: client sent %d keepalives (%d acks), server %d (%d acks)", window, sent,
				c1.KeepaliveAcks-c0.KeepaliveAcks, srvSent, s1.KeepaliveAcks-s0.KeepaliveAcks)
			require.GreaterOrEqual(t, sent, tc.minClient, "client keepalives")
			require.GreaterOrEqual(t, c1.KeepaliveAcks-c0.KeepaliveAcks+1, tc.minClient, "client keepalive acks")
			require.LessOrEqual(t, srvSent, tc.maxServer, "server keepalives")
			require.GreaterOrEqual(t, srvSent, tc.minServer, "server keepalives")
			require.GreaterOrEqual(t, s1.KeepaliveAcks-s0.KeepaliveAcks+1, tc.minServer, "server keepalive acks")
			if tc.clientKA == 0 {
				require.Zero(t, sent, "a client with keepalives off sent some")
			}
			require.True(t, c.IsConnected() && s.IsConnected())
		})
	}
}
