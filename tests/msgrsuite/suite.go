package msgrsuite

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// Tweak, when set (before Run), adjusts every configuration the suite
// builds, e.g. the rdma test binary's device name and GID index.
var Tweak func(cfg *config.Config)

// Two-host options (the rdma suite across rxe0 and rxe1). Left at their
// zero values the suite runs everything on 127.0.0.1 with one configuration.
var (
	// ServerHost replaces 127.0.0.1 in the addresses server messengers bind
	// to ("" keeps 127.0.0.1).
	ServerHost string
	// TweakServer adjusts, after Tweak, the configuration of every messenger
	// the suite binds (servers).
	TweakServer func(cfg *config.Config)
	// TweakClient adjusts, after Tweak, the configuration of every unbound
	// messenger and raw client stack (clients).
	TweakClient func(cfg *config.Config)
)

// LargeMessageMiB is the size of the LargeMessage test's message (64 MiB;
// a suite run in an emulated VM may lower it to stay within its time budget).
var LargeMessageMiB = 64

// roleConfig returns a copy of cfg adjusted for a server or a client.
func roleConfig(cfg *config.Config, server bool) *config.Config {
	c := *cfg
	switch {
	case server && TweakServer != nil:
		TweakServer(&c)
	case !server && TweakClient != nil:
		TweakClient(&c)
	}
	return &c
}

// clientConfig is Config(stack) for a raw client stack.
func clientConfig(stack string) *config.Config { return roleConfig(Config(stack), false) }

// serverAddr moves a 127.0.0.1 bind address to ServerHost.
func serverAddr(bind string) string {
	if ServerHost == "" {
		return bind
	}
	if rest, ok := strings.CutPrefix(bind, "127.0.0.1:"); ok {
		return net.JoinHostPort(ServerHost, rest)
	}
	return bind
}

// Config returns the suite's configuration for stack: short timeouts so
// faults are detected quickly.
func Config(stack string) *config.Config {
	cfg := config.Default()
	cfg.TransportType = stack
	cfg.OpThreads = 2
	cfg.ConnectionReadyTimeout = 10 * time.Second
	cfg.KeepaliveInterval = 200 * time.Millisecond
	cfg.ConnectionIdleTimeout = 1500 * time.Millisecond
	cfg.InitialBackoff = 10 * time.Millisecond
	cfg.MaxBackoff = 200 * time.Millisecond
	cfg.MaxFrameSegment = 128 << 20
	if Tweak != nil {
		Tweak(cfg)
	}
	return cfg
}

// Run runs every messenger test over the named stack.
func Run(t *testing.T, stack string) {
	tests := []struct {
		name string
		fn   func(t *testing.T, stack string)
	}{
		{"Handshake", testHandshake},
		{"ManyConnsInOrder", testManyConnsInOrder},
		{"PrioritiesUnderBacklog", testPriorities},
		{fmt.Sprintf("LargeMessage%dMiB", LargeMessageMiB), testLargeMessage},
		{"LosslessReconnect", testLosslessReconnect},
		{"LosslessRandomCuts", testLosslessRandomCuts},
		{"LosslessSessionContinuation", testSessionContinuation},
		{"LossyFaultReported", testLossyFault},
		{"BadPeers", testBadPeers},
		{"HandshakeTimeout", testHandshakeTimeout},
		{"KeepaliveKeepsIdleConnAlive", testKeepalive},
		{"LosslessBackoffAndPeerRestart", testBackoffAndRestart},
		{"ShutdownInFlight", testShutdownInFlight},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, stack) })
	}
}

// ------------------------------------------------------------------ helpers

// recorder is a dispatcher that keeps what it sees.
type recorder struct {
	msgr.BaseDispatcher
	fast bool // take messages on the worker goroutine

	mu           sync.Mutex
	msgs         []*msgr.Message
	resets       []resetEvent
	accepts      int
	accepted     []*msgr.Connection
	remoteResets int
	onMsg        func(m *msgr.Message)
	notify       chan struct{}
}

type resetEvent struct {
	c   *msgr.Connection
	err error
}

func newRecorder(fast bool) *recorder {
	return &recorder{fast: fast, notify: make(chan struct{}, 1)}
}

func (r *recorder) poke() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) take(m *msgr.Message) {
	r.mu.Lock()
	f := r.onMsg
	if f == nil {
		r.msgs = append(r.msgs, m)
	}
	r.mu.Unlock()
	if f != nil {
		f(m)
	}
	r.poke()
}

func (r *recorder) MsDispatch(m *msgr.Message) bool    { r.take(m); return true }
func (r *recorder) CanFastDispatch(*msgr.Message) bool { return r.fast }
func (r *recorder) FastDispatch(m *msgr.Message)       { r.take(m) }
func (r *recorder) MsHandleAccept(c *msgr.Connection) {
	r.mu.Lock()
	r.accepts++
	r.accepted = append(r.accepted, c)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) acceptedList() []*msgr.Connection {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*msgr.Connection(nil), r.accepted...)
}
func (r *recorder) MsHandleRemoteReset(c *msgr.Connection) {
	r.mu.Lock()
	r.remoteResets++
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) remoteResetCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.remoteResets
}

func (r *recorder) MsHandleReset(c *msgr.Connection, err error) bool {
	r.mu.Lock()
	r.resets = append(r.resets, resetEvent{c, err})
	r.mu.Unlock()
	r.poke()
	return true
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *recorder) snapshot() []*msgr.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*msgr.Message(nil), r.msgs...)
}

func (r *recorder) resetList() []resetEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]resetEvent(nil), r.resets...)
}

// waitFor polls cond until it holds or the deadline passes (a bound for a
// hung test, not a timing assertion).
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type endpoint struct {
	m    *msgr.Messenger
	rec  *recorder
	addr string
}

// newEndpoint builds a messenger; bind "" leaves it unbound; start=false
// leaves it for the test to start.
func newEndpoint(t testing.TB, cfg *config.Config, name msgr.EntityName, bind string, start bool, rec *recorder) *endpoint {
	t.Helper()
	cfg = roleConfig(cfg, bind != "")
	bind = serverAddr(bind)
	m, err := msgr.New(cfg, name)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Shutdown() })
	e := &endpoint{m: m, rec: rec}
	if rec != nil {
		m.AddDispatcherTail(rec)
	}
	if bind != "" {
		require.NoError(t, m.Bind(bind))
		e.addr = m.Addr().String()
	}
	if start {
		require.NoError(t, m.Start())
	}
	return e
}

func osdName(n int64) msgr.EntityName { return msgr.EntityName{Type: msgr.EntityTypeOSD, Num: n} }
func clientName(n int64) msgr.EntityName {
	return msgr.EntityName{Type: msgr.EntityTypeClient, Num: n}
}

// payload builds a message body carrying (stream, index) and filler bytes
// derived from them, so corruption and reordering are both detectable.
func payload(stream, idx uint64, size int) []byte {
	if size < 16 {
		size = 16
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint64(b, stream)
	binary.LittleEndian.PutUint64(b[8:], idx)
	for i := 16; i < size; i++ {
		b[i] = byte(stream*31 + idx*7 + uint64(i))
	}
	return b
}

func checkPayload(b []byte) (stream, idx uint64, err error) {
	if len(b) < 16 {
		return 0, 0, fmt.Errorf("payload too short: %d", len(b))
	}
	stream = binary.LittleEndian.Uint64(b)
	idx = binary.LittleEndian.Uint64(b[8:])
	for i := 16; i < len(b); i++ {
		if b[i] != byte(stream*31+idx*7+uint64(i)) {
			return stream, idx, fmt.Errorf("stream %d message %d: byte %d corrupt", stream, idx, i)
		}
	}
	return stream, idx, nil
}

// -------------------------------------------------------------------- tests

func testHandshake(t *testing.T, stack string) {
	cfg := Config(stack)
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", true, newRecorder(false))
	cli := newEndpoint(t, cfg, clientName(7), "", true, newRecorder(true))

	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 42, Front: []byte("hello"), Data: []byte("data")}))
	waitFor(t, 10*time.Second, "message at server", func() bool { return srv.rec.count() == 1 })
	m := srv.rec.snapshot()[0]
	require.Equal(t, uint16(42), m.Type)
	require.Equal(t, []byte("hello"), m.Front)
	require.Equal(t, []byte("data"), m.Data)
	require.Equal(t, uint64(1), m.Seq)
	require.Equal(t, clientName(7), m.Peer)
	require.Equal(t, osdName(1), c.PeerName())
	require.True(t, c.IsConnected())

	// reply over the accepted connection
	require.NoError(t, m.Conn.SendMessage(&msgr.Message{Type: 43, Front: []byte("pong")}))
	waitFor(t, 10*time.Second, "reply at client", func() bool { return cli.rec.count() == 1 })
	require.Equal(t, []byte("pong"), cli.rec.snapshot()[0].Front)
	st := c.Stats()
	require.Equal(t, uint64(1), st.MsgsSent)
	require.Equal(t, uint64(1), st.MsgsRecv)
	require.NotZero(t, st.BytesSent)
}

func testManyConnsInOrder(t *testing.T, stack string) {
	const conns = 8
	total := 100_000
	if testing.Short() {
		total = 10_000
	}
	per := total / conns
	cfg := Config(stack)
	cfg.ConnectionIdleTimeout = 30 * time.Second // -race can be slow
	srvRec := newRecorder(false)
	type streamState struct {
		next uint64
		seq  uint64
		err  error
	}
	var mu sync.Mutex
	states := map[uint64]*streamState{}
	var got atomic.Int64
	srvRec.onMsg = func(m *msgr.Message) {
		stream, idx, err := checkPayload(m.Front)
		mu.Lock()
		st := states[stream]
		if st == nil {
			st = &streamState{}
			states[stream] = st
		}
		if st.err == nil {
			switch {
			case err != nil:
				st.err = err
			case idx != st.next:
				st.err = fmt.Errorf("stream %d: got message %d, want %d", stream, idx, st.next)
			case m.Seq != st.seq+1:
				st.err = fmt.Errorf("stream %d: got seq %d after %d", stream, m.Seq, st.seq)
			}
		}
		st.next = idx + 1
		st.seq = m.Seq
		mu.Unlock()
		got.Add(1)
	}
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", true, srvRec)

	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		cli := newEndpoint(t, cfg, clientName(int64(100+i)), "", true, nil)
		wg.Add(1)
		go func(stream uint64) {
			defer wg.Done()
			c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
			if err != nil {
				errs <- err
				return
			}
			for j := 0; j < per; j++ {
				size := 16 + (j*13)%200
				if err := c.SendMessage(&msgr.Message{Type: 1, Front: payload(stream, uint64(j), size)}); err != nil {
					errs <- err
					return
				}
			}
		}(uint64(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	waitFor(t, 120*time.Second, "all messages", func() bool { return got.Load() == int64(per*conns) })
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, states, conns)
	for s, st := range states {
		require.NoError(t, st.err, "stream %d", s)
		require.Equal(t, uint64(per), st.next, "stream %d count", s)
	}
}

func testPriorities(t *testing.T, stack string) {
	cfg := Config(stack)
	srvRec := newRecorder(true)
	// The server is bound but not started: the client's TCP connection sits
	// in the listen backlog, its handshake cannot finish, and everything it
	// is asked to send piles up in the out queues.
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", false, srvRec)
	cli := newEndpoint(t, cfg, clientName(1), "", true, nil)
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	prios := []uint16{msgr.PrioLow, msgr.PrioDefault, msgr.PrioHigh, msgr.PrioHighest}
	const n = 200
	for i := 0; i < n; i++ {
		p := prios[(i*7)%len(prios)]
		require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Priority: p, Front: payload(uint64(p), uint64(i), 16)}))
	}
	require.False(t, c.IsConnected())
	require.NoError(t, srv.m.Start())
	waitFor(t, 20*time.Second, "all messages", func() bool { return srvRec.count() == n })
	msgs := srvRec.snapshot()
	lastPrio := uint16(65535)
	lastIdx := map[uint16]int64{}
	for i, m := range msgs {
		stream, idx, err := checkPayload(m.Front)
		require.NoError(t, err)
		require.Equal(t, uint64(m.Priority), stream)
		require.LessOrEqual(t, m.Priority, lastPrio, "message %d: priority %d after %d", i, m.Priority, lastPrio)
		lastPrio = m.Priority
		if prev, ok := lastIdx[m.Priority]; ok {
			require.Greater(t, int64(idx), prev, "FIFO within priority %d", m.Priority)
		}
		lastIdx[m.Priority] = int64(idx)
	}
	require.Len(t, lastIdx, len(prios))
}

func testLargeMessage(t *testing.T, stack string) {
	cfg := Config(stack)
	cfg.ConnectionIdleTimeout = 60 * time.Second
	srvRec := newRecorder(true)
	srvRec.onMsg = func(m *msgr.Message) { // echo
		_ = m.Conn.SendMessage(&msgr.Message{Type: m.Type + 1, Front: m.Front, Data: m.Data})
	}
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", true, srvRec)
	cliRec := newRecorder(true)
	cli := newEndpoint(t, cfg, clientName(1), "", true, cliRec)

	data := make([]byte, LargeMessageMiB<<20)
	for i := range data {
		data[i] = byte(i*2654435761>>13) ^ byte(i>>20)
	}
	// A copy, not a hash: sha256 is most of this test's CPU in the TCG VM
	// (AVX2 is emulated), and the copy still catches a sender buffer the
	// messenger scribbled on.
	want := bytes.Clone(data)
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 10, Front: []byte("big"), Data: data}))
	// Generous: 64 MiB through rxe under qemu TCG on a loaded host took
	// up to 2 minutes.
	waitFor(t, 300*time.Second, "echo", func() bool { return cliRec.count() == 1 })
	m := cliRec.snapshot()[0]
	require.Equal(t, uint16(11), m.Type)
	require.Equal(t, []byte("big"), m.Front)
	require.Len(t, m.Data, len(data))
	require.True(t, bytes.Equal(want, m.Data), "echoed data differs from what was sent")
	require.True(t, bytes.Equal(want, data), "the sender's buffer changed while the messenger held it")
}

// orderChecker verifies that a stream of payload() messages arrives complete,
// in order and exactly once.
type orderChecker struct {
	mu   sync.Mutex
	next uint64
	errs []string
	conn *msgr.Connection
}

func (o *orderChecker) take(m *msgr.Message) {
	_, idx, err := checkPayload(m.Front)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn == nil {
		o.conn = m.Conn
	}
	switch {
	case err != nil:
		o.errs = append(o.errs, err.Error())
	case idx < o.next:
		o.errs = append(o.errs, fmt.Sprintf("duplicate message %d (next expected %d)", idx, o.next))
	case idx > o.next:
		o.errs = append(o.errs, fmt.Sprintf("missing messages %d..%d", o.next, idx-1))
		o.next = idx + 1
	default:
		o.next++
	}
}

func (o *orderChecker) count() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.next
}

func (o *orderChecker) serverConn() *msgr.Connection {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.conn
}

func testLosslessReconnect(t *testing.T, stack string) {
	cfg := Config(stack)
	var atSrv, atCli orderChecker
	srvRec := newRecorder(true)
	srvRec.onMsg = func(m *msgr.Message) {
		atSrv.take(m)
		// answer every message: the server's queue must survive the cuts too
		_, idx, _ := checkPayload(m.Front)
		_ = m.Conn.SendMessage(&msgr.Message{Type: 2, Front: payload(1, idx, 32+int(idx%100))})
	}
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", false, srvRec)
	srv.m.SetPolicy(msgr.EntityTypeClient, msgr.StatefulServer())
	require.NoError(t, srv.m.Start())
	cliRec := newRecorder(true)
	cliRec.onMsg = atCli.take
	cli := newEndpoint(t, cfg, clientName(1), "", false, cliRec)
	cli.m.SetPolicy(msgr.EntityTypeOSD, msgr.LosslessPeer())
	require.NoError(t, cli.m.Start())

	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	const n = 6000
	cuts := 0
	for i := 0; i < n; i++ {
		require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: payload(0, uint64(i), 64+i%512)}))
		if i%1000 == 500 {
			// Cut the socket underneath while messages are in flight, on
			// the client's side and on the server's side in turn.
			waitFor(t, 20*time.Second, "connection ready before cut", c.IsConnected)
			if cuts%2 == 0 {
				c.FaultForTest()
			} else {
				sc := atSrv.serverConn()
				require.NotNil(t, sc)
				sc.FaultForTest()
			}
			cuts++
			waitFor(t, 20*time.Second, "fault noticed", func() bool { return c.Stats().Faults >= uint64(cuts) })
		}
	}
	waitFor(t, 60*time.Second, "all messages after reconnects", func() bool { return atSrv.count() == n })
	waitFor(t, 60*time.Second, "all replies after reconnects", func() bool { return atCli.count() == n })
	require.Empty(t, atSrv.errs, "client -> server stream")
	require.Empty(t, atCli.errs, "server -> client stream")
	st := c.Stats()
	require.GreaterOrEqual(t, st.Reconnects, uint64(cuts))
	require.GreaterOrEqual(t, st.Faults, uint64(cuts))
	require.Empty(t, srvRec.resetList(), "a lossless session must not be reset")
	require.Empty(t, cliRec.resetList(), "a lossless session must not be reset")
	require.False(t, c.IsLossy())
	sst := atSrv.serverConn().Stats()
	t.Logf("client: %+v", st)
	t.Logf("server: %+v", sst)
	require.Equal(t, uint64(n), sst.MsgsRecv, "server delivered each message once")
}

// testLosslessRandomCuts cuts the socket every 150 messages without waiting
// for the session to be ready again, so cuts also land in handshakes and in
// reconnects being adopted; both directions must still be exactly-once and
// in order, and the client must never see a reset.
func testLosslessRandomCuts(t *testing.T, stack string) {
	cfg := Config(stack)
	var atSrv, atCli orderChecker
	srvRec := newRecorder(true)
	srvRec.onMsg = func(m *msgr.Message) {
		atSrv.take(m)
		_, idx, _ := checkPayload(m.Front)
		_ = m.Conn.SendMessage(&msgr.Message{Type: 2, Front: payload(1, idx, 32+int(idx%100))})
	}
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", false, srvRec)
	srv.m.SetPolicy(msgr.EntityTypeClient, msgr.StatefulServer())
	require.NoError(t, srv.m.Start())
	cliRec := newRecorder(true)
	cliRec.onMsg = atCli.take
	cli := newEndpoint(t, cfg, clientName(1), "", false, cliRec)
	cli.m.SetPolicy(msgr.EntityTypeOSD, msgr.LosslessPeer())
	require.NoError(t, cli.m.Start())
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	n := 9000
	if testing.Short() {
		n = 3000
	}
	for i := 0; i < n; i++ {
		require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: payload(0, uint64(i), 64+i%2048)}))
		if i%150 == 7 {
			if (i/150)%2 == 0 {
				c.FaultForTest()
			} else if sc := atSrv.serverConn(); sc != nil {
				sc.FaultForTest()
			}
			time.Sleep(time.Duration(i%3) * time.Millisecond)
		}
	}
	waitFor(t, 120*time.Second, "all messages", func() bool { return atSrv.count() == uint64(n) })
	waitFor(t, 120*time.Second, "all replies", func() bool { return atCli.count() == uint64(n) })
	require.Empty(t, atSrv.errs, "client -> server stream")
	require.Empty(t, atCli.errs, "server -> client stream")
	require.Empty(t, cliRec.resetList())
	require.NotZero(t, c.Stats().Reconnects)
	// (server-side resets are reported for reconnect attempts cut during
	// their handshake, before they joined the session: expected)
}

func testLossyFault(t *testing.T, stack string) {
	cfg := Config(stack)
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", false, newRecorder(true))
	srv.m.SetPolicy(msgr.EntityTypeClient, msgr.StatelessServer())
	require.NoError(t, srv.m.Start())
	cliRec := newRecorder(true)
	cli := newEndpoint(t, cfg, clientName(1), "", false, cliRec)
	cli.m.SetPolicy(msgr.EntityTypeOSD, msgr.LossyClient())
	require.NoError(t, cli.m.Start())

	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: []byte("x")}))
	waitFor(t, 10*time.Second, "message", func() bool { return srv.rec.count() == 1 })
	require.True(t, c.IsLossy())
	c.FaultForTest()
	waitFor(t, 10*time.Second, "reset reported", func() bool { return len(cliRec.resetList()) == 1 })
	ev := cliRec.resetList()[0]
	require.Same(t, c, ev.c)
	require.Error(t, ev.err)
	require.Contains(t, ev.err.Error(), "closed")
	<-c.Closed()
	require.Error(t, c.SendMessage(&msgr.Message{Type: 1}))
	// the server side of a lossy session reports its reset too
	waitFor(t, 10*time.Second, "server reset", func() bool { return len(srv.rec.resetList()) == 1 })
	// a new connection to the same address works
	c2, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	require.NotSame(t, c, c2)
	require.NoError(t, c2.SendMessage(&msgr.Message{Type: 1, Front: []byte("y")}))
	waitFor(t, 10*time.Second, "second message", func() bool { return srv.rec.count() == 2 })
}

// rawPeer is a socket of the suite's own stack that writes raw bytes. Its
// Send/Read/Close run on its worker's event centre (through Submit), as the
// netstack contract asks, so the same code drives posix and rdma sockets.
type rawPeer struct {
	s netstack.ConnectedSocket
	w netstack.Worker
}

func dialRaw(t *testing.T, st netstack.Stack, addr string) *rawPeer {
	t.Helper()
	w := st.PickWorker()
	s, err := w.Connect(addr, netstack.SocketOptions{NoDelay: true})
	require.NoError(t, err)
	p := &rawPeer{s: s, w: w}
	t.Cleanup(func() {
		if err := w.Center().Submit(func() { _ = s.Close() }); err != nil {
			_ = s.Close()
		}
	})
	return p
}

func (p *rawPeer) send(b []byte) (n int, err error) {
	if serr := p.w.Center().Submit(func() { n, err = p.s.Send([][]byte{b}, false) }); serr != nil {
		return 0, serr
	}
	return n, err
}

func (p *rawPeer) read(b []byte) (n int, err error) {
	if serr := p.w.Center().Submit(func() { n, err = p.s.Read(b) }); serr != nil {
		return 0, serr
	}
	return n, err
}

func (p *rawPeer) write(t *testing.T, b []byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(b) > 0 {
		n, err := p.send(b)
		b = b[n:]
		if err != nil && !errors.Is(err, netstack.ErrWouldBlock) {
			t.Fatalf("raw send: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("raw send stuck")
		}
		if len(b) > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// waitClosed reads (and discards) until the server closes the socket.
func (p *rawPeer) waitClosed(t *testing.T, within time.Duration) {
	t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(within)
	for {
		_, err := p.read(buf)
		if err != nil && !errors.Is(err, netstack.ErrWouldBlock) {
			if !errors.Is(err, io.EOF) {
				t.Logf("raw peer read ended with %v", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not close the raw connection within %v", within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// silentClient is everything a client sends to open a session (banner,
// HELLO, AUTH_REQUEST for auth none, AUTH_SIGNATURE, CLIENT_IDENT), sent at
// once; the raw peer then never reads nor writes again.
func silentClient() []byte {
	b := msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0)
	b = msgr2.AppendControlFrame(b, &msgr2.Hello{EntityType: msgr.EntityTypeMDS})
	auth := []byte{1, byte(msgr.EntityTypeMDS), 0, 0, 0, 1, 0, 0, 0, 'x'}
	auth = binary.LittleEndian.AppendUint64(auth, 0)
	b = msgr2.AppendControlFrame(b, &msgr2.AuthRequest{Method: msgr2.AuthMethodNone,
		PreferredModes: []uint32{msgr2.ConModeCRC}, AuthPayload: auth})
	b = msgr2.AppendControlFrame(b, &msgr2.AuthSignature{})
	b = msgr2.AppendControlFrame(b, &msgr2.ClientIdent{
		Addrs: msgr2.AddrVec{{Type: msgr2.AddrTypeAny, Nonce: 99}}, GID: 5, GlobalSeq: 1,
		SupportedFeatures: msgr.DefaultFeatures, Flags: 1})
	return b
}

// clientHandshake is what a client sends to open a session of the given
// entity type with the given cookie (0: lossy), all at once.
func clientHandshake(entityType uint8, nonce uint32, cookie uint64) []byte {
	b := msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0)
	b = msgr2.AppendControlFrame(b, &msgr2.Hello{EntityType: entityType})
	auth := []byte{1, entityType, 0, 0, 0, 1, 0, 0, 0, 'x'}
	auth = binary.LittleEndian.AppendUint64(auth, 0)
	b = msgr2.AppendControlFrame(b, &msgr2.AuthRequest{Method: msgr2.AuthMethodNone,
		PreferredModes: []uint32{msgr2.ConModeCRC}, AuthPayload: auth})
	b = msgr2.AppendControlFrame(b, &msgr2.AuthSignature{})
	var flags uint64
	if cookie == 0 {
		flags = msgr2.IdentFlagLossy
	}
	return msgr2.AppendControlFrame(b, &msgr2.ClientIdent{
		Addrs: msgr2.AddrVec{{Type: msgr2.AddrTypeAny, Nonce: nonce}}, GID: 5, GlobalSeq: 1,
		SupportedFeatures: msgr.DefaultFeatures, Flags: flags, Cookie: cookie})
}

// readFrames reads the server's banner and frames until done(frames) holds.
func (p *rawPeer) readFrames(t *testing.T, within time.Duration, done func(tags []msgr2.Tag) bool) (tags []msgr2.Tag, segs [][msgr2.MaxSegments][]byte) {
	t.Helper()
	var buf []byte
	tmp := make([]byte, 64<<10)
	banner := false
	deadline := time.Now().Add(within)
	for !done(tags) {
		n, err := p.read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil && !errors.Is(err, netstack.ErrWouldBlock) {
			t.Fatalf("raw read after %v: %v", tags, err)
		}
		if !banner && len(buf) >= msgr2.BannerLen {
			_, _, err := msgr2.ParseBanner(buf[:msgr2.BannerLen])
			require.NoError(t, err)
			buf, banner = buf[msgr2.BannerLen:], true
		}
		for banner && len(buf) >= msgr2.PreambleLen {
			pre, fsegs, used, err := msgr2.ParseFrame(buf, 0)
			if err != nil {
				break // incomplete
			}
			tags = append(tags, pre.Tag)
			var own [msgr2.MaxSegments][]byte
			for i := range fsegs {
				own[i] = append([]byte(nil), fsegs[i]...)
			}
			segs = append(segs, own)
			buf = buf[used:]
		}
		if time.Now().After(deadline) {
			t.Fatalf("raw peer: got %v so far", tags)
		}
		if n == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	return tags, segs
}

// testSessionContinuation: a lossless client whose connection broke before
// it got SERVER_IDENT comes back with CLIENT_IDENT and the same cookie; the
// server continues the same session, so what the application queued on it
// in between is delivered, and nothing is reset.
func testSessionContinuation(t *testing.T, stack string) {
	cfg := Config(stack)
	cfg.ConnectionIdleTimeout = 30 * time.Second // the raw peer sends no keepalives
	srvRec := newRecorder(true)
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", false, srvRec)
	srv.m.SetPolicy(msgr.EntityTypeMgr, msgr.StatefulServer())
	require.NoError(t, srv.m.Start())
	rawStack, err := netstack.New(clientConfig(stack))
	require.NoError(t, err)
	require.NoError(t, rawStack.Start())
	t.Cleanup(func() { _ = rawStack.Stop() })

	hs := clientHandshake(msgr.EntityTypeMgr, 4242, 777)
	p1 := dialRaw(t, rawStack, srv.addr)
	p1.write(t, hs)
	waitFor(t, 10*time.Second, "session accepted", func() bool { return len(srvRec.acceptedList()) == 1 })
	sess := srvRec.acceptedList()[0]
	for i := 0; i < 3; i++ {
		require.NoError(t, sess.SendMessage(&msgr.Message{Type: 9, Front: []byte{byte('a' + i)}}))
	}
	// the first socket dies before the client read anything
	require.NoError(t, p1.w.Center().Submit(func() { _ = p1.s.Close() }))
	waitFor(t, 10*time.Second, "fault noticed", func() bool { return sess.Stats().Faults == 1 })

	p2 := dialRaw(t, rawStack, srv.addr)
	p2.write(t, hs)
	msgs := 0
	tags, segs := p2.readFrames(t, 10*time.Second, func(tags []msgr2.Tag) bool {
		n := 0
		for _, tg := range tags {
			if tg == msgr2.TagMessage {
				n++
			}
		}
		msgs = n
		return n == 3
	})
	require.Equal(t, 3, msgs)
	require.Contains(t, tags, msgr2.TagServerIdent)
	var fronts []string
	for i, tg := range tags {
		if tg == msgr2.TagMessage {
			h, front, _, _, err := msgr2.ParseMessage(segs[i])
			require.NoError(t, err)
			require.Equal(t, uint16(9), h.Type)
			fronts = append(fronts, string(front))
		}
	}
	require.Equal(t, []string{"a", "b", "c"}, fronts)
	require.Zero(t, srvRec.remoteResetCount())
	// MsHandleAccept goes through the dispatch queue: it may come after the
	// frames reached the peer.
	waitFor(t, 10*time.Second, "second accept reported", func() bool { return len(srvRec.acceptedList()) >= 2 })
	require.Len(t, srvRec.acceptedList(), 2)
	require.Same(t, sess, srvRec.acceptedList()[1], "the same session continued")
	require.True(t, sess.IsConnected())
}

func helloFrame() []byte {
	h := msgr2.Hello{EntityType: msgr.EntityTypeClient}
	return msgr2.AppendFrame(nil, msgr2.TagHello, h.Marshal(nil))
}

func testBadPeers(t *testing.T, stack string) {
	cfg := Config(stack)
	srvRec := newRecorder(true)
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", true, srvRec)
	srv.m.SetPolicy(msgr.EntityTypeMDS, msgr.StatelessServer())

	// A healthy client keeps talking while the bad peers are handled.
	cli := newEndpoint(t, cfg, clientName(1), "", true, nil)
	good, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	stop := make(chan struct{})
	var sent atomic.Int64
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if good.SendMessage(&msgr.Message{Type: 1, Front: payload(9, uint64(i), 32)}) != nil {
				return
			}
			sent.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()

	rawCfg := clientConfig(stack)
	rawStack, err := netstack.New(rawCfg)
	require.NoError(t, err)
	require.NoError(t, rawStack.Start())
	t.Cleanup(func() { _ = rawStack.Stop() })

	banner := msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0)
	badCRC := helloFrame()
	badCRC[28] ^= 0xff
	oversized := helloFrame()
	binary.LittleEndian.PutUint32(oversized[2:], 1<<30)
	binary.LittleEndian.PutUint32(oversized[28:], msgr2.CRC32C(0, oversized[:28]))
	cases := []struct {
		name  string
		bytes []byte
		want  string
	}{
		{"garbage", bytes.Repeat([]byte("this is not ceph "), 4), "banner"},
		{"wrong crc", append(append([]byte{}, banner...), badCRC...), "crc mismatch"},
		{"oversized segment", append(append([]byte{}, banner...), oversized[:32]...), "exceeds limit"},
		{"half frame then silence", append(append([]byte{}, banner...), helloFrame()[:20]...), "no incoming bytes"},
		{"half preamble after hello", append(append(append([]byte{}, banner...), helloFrame()...), helloFrame()[:40]...), "no incoming bytes"},
		// a whole client handshake (as an MDS, which this server treats as
		// lossy), then silence: the ready session times out
		{"silent after handshake", silentClient(), fmt.Sprintf("(idle timeout %v) in state ready", cfg.ConnectionIdleTimeout)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(srvRec.resetList())
			p := dialRaw(t, rawStack, srv.addr)
			p.write(t, tc.bytes)
			bound := 3 * (cfg.ConnectionIdleTimeout + cfg.KeepaliveInterval)
			p.waitClosed(t, bound)
			waitFor(t, bound, "reset reported", func() bool { return len(srvRec.resetList()) > before })
			ev := srvRec.resetList()[before]
			require.Error(t, ev.err)
			require.Contains(t, ev.err.Error(), tc.want)
			t.Logf("server closed the bad peer: %v", ev.err)
		})
	}
	close(stop)
	sender.Wait()
	waitFor(t, 20*time.Second, "healthy client's messages", func() bool { return int64(srvRec.count()) == sent.Load() })
	require.True(t, good.IsConnected())
	require.Zero(t, good.Stats().Faults)
}

// testHandshakeTimeout: a peer that keeps trickling bytes (so it is never
// idle) but never finishes the handshake is cut at ConnectionReadyTimeout.
func testHandshakeTimeout(t *testing.T, stack string) {
	cfg := Config(stack)
	cfg.ConnectionReadyTimeout = 400 * time.Millisecond
	cfg.ConnectionIdleTimeout = 5 * time.Second
	srvRec := newRecorder(true)
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", true, srvRec)
	rawStack, err := netstack.New(clientConfig(stack))
	require.NoError(t, err)
	require.NoError(t, rawStack.Start())
	t.Cleanup(func() { _ = rawStack.Stop() })
	p := dialRaw(t, rawStack, srv.addr)
	p.write(t, msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0))
	hello := helloFrame()
	for i := 0; i < len(hello)-1 && len(srvRec.resetList()) == 0; i++ {
		p.write(t, hello[i:i+1])
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, 10*time.Second, "reset reported", func() bool { return len(srvRec.resetList()) == 1 })
	err = srvRec.resetList()[0].err
	require.ErrorContains(t, err, "handshake not finished within 400ms")
	var te interface{ Timeout() bool }
	require.ErrorAs(t, err, &te)
	require.True(t, te.Timeout())
	p.waitClosed(t, 10*time.Second)
}

// testKeepalive: an idle session exchanges KEEPALIVE2/KEEPALIVE2_ACK and
// outlives several idle timeouts.
func testKeepalive(t *testing.T, stack string) {
	cfg := Config(stack)
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", true, newRecorder(true))
	cliRec := newRecorder(true)
	cli := newEndpoint(t, cfg, clientName(1), "", true, cliRec)
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 1}))
	waitFor(t, 10*time.Second, "message", func() bool { return srv.rec.count() == 1 })
	// enough keepalive round trips to span more than two idle timeouts
	acks := uint64(2*cfg.ConnectionIdleTimeout/cfg.KeepaliveInterval) + 1
	waitFor(t, 30*time.Second, "keepalive acks", func() bool { return c.Stats().KeepaliveAcks >= acks })
	st := c.Stats()
	require.GreaterOrEqual(t, st.KeepalivesSent, st.KeepaliveAcks)
	require.Zero(t, st.Faults)
	require.True(t, c.IsConnected())
	require.Empty(t, cliRec.resetList())
	require.Empty(t, srv.rec.resetList())
}

// testBackoffAndRestart: a lossless client keeps retrying (with backoff)
// while its peer is down and delivers what it queued once the peer is up;
// when the peer restarts and lost the session, the client is told
// (MsHandleRemoteReset) and starts a new session.
func testBackoffAndRestart(t *testing.T, stack string) {
	cfg := Config(stack)
	// find a free port, then leave it closed
	probe := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", true, nil)
	addr := probe.addr
	require.NoError(t, probe.m.Shutdown())

	cliRec := newRecorder(true)
	cli := newEndpoint(t, cfg, clientName(1), "", false, cliRec)
	cli.m.SetPolicy(msgr.EntityTypeOSD, msgr.LosslessPeer())
	require.NoError(t, cli.m.Start())
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, addr)
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: payload(0, uint64(i), 16)}))
	}
	waitFor(t, 10*time.Second, "a few refused attempts", func() bool { return c.Stats().Faults >= 3 })
	require.False(t, c.IsConnected())

	var first orderChecker
	rec1 := newRecorder(true)
	rec1.onMsg = first.take
	srv1 := newEndpoint(t, cfg, osdName(1), addr, false, rec1)
	srv1.m.SetPolicy(msgr.EntityTypeClient, msgr.StatefulServer())
	require.NoError(t, srv1.m.Start())
	waitFor(t, 20*time.Second, "queued messages after the peer came up", func() bool { return first.count() == 10 })
	require.Empty(t, first.errs)
	require.NotZero(t, c.Stats().Reconnects)
	require.Empty(t, cliRec.resetList())

	// restart the peer: the session is gone on its side
	require.NoError(t, srv1.m.Shutdown())
	var second orderChecker
	rec2 := newRecorder(true)
	rec2.onMsg = second.take
	srv2 := newEndpoint(t, cfg, osdName(1), addr, false, rec2)
	srv2.m.SetPolicy(msgr.EntityTypeClient, msgr.StatefulServer())
	require.NoError(t, srv2.m.Start())
	waitFor(t, 20*time.Second, "remote reset reported", func() bool { return cliRec.remoteResetCount() == 1 })
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: payload(0, 0, 16)}))
	waitFor(t, 20*time.Second, "message on the new session", func() bool { return second.count() == 1 })
	require.Empty(t, second.errs)
	require.True(t, c.IsConnected())
}

func testShutdownInFlight(t *testing.T, stack string) {
	runtime.GC()
	base := runtime.NumGoroutine()
	func() {
		cfg := Config(stack)
		srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", true, newRecorder(false))
		srv.m.SetPolicy(msgr.EntityTypeClient, msgr.StatefulServer())
		var stopped sync.WaitGroup
		var clis []*endpoint
		for i := 0; i < 3; i++ {
			cli := newEndpoint(t, cfg, clientName(int64(i)), "", true, newRecorder(true))
			clis = append(clis, cli)
			c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
			require.NoError(t, err)
			stopped.Add(1)
			go func() {
				defer stopped.Done()
				for j := 0; ; j++ {
					if c.SendMessage(&msgr.Message{Type: 1, Front: payload(1, uint64(j), 4096)}) != nil {
						return
					}
					if j%64 == 0 {
						runtime.Gosched()
					}
				}
			}()
		}
		waitFor(t, 20*time.Second, "traffic flowing", func() bool { return srv.rec.count() > 100 })
		done := make(chan struct{})
		go func() {
			_ = srv.m.Shutdown()
			for _, c := range clis {
				_ = c.m.Shutdown()
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Shutdown did not return")
		}
		stopped.Wait()
		srv.m.Wait()
	}()
	waitFor(t, 10*time.Second, "goroutines to settle", func() bool {
		n := runtime.NumGoroutine()
		return n <= base
	})
}

// ------------------------------------------------------------- benchmarks

// BenchLatency measures a round trip of a size-byte message between two
// messengers (client sends, server echoes from its fast dispatcher).
func BenchLatency(b *testing.B, stack string, size int) {
	cfg := Config(stack)
	if v := os.Getenv("MSGRSUITE_OP_THREADS"); v != "" {
		cfg.OpThreads, _ = strconv.Atoi(v)
	}
	cfg.ConnectionIdleTimeout = 0
	cfg.KeepaliveInterval = 0
	srv := pongServer(b, cfg)
	cliRec := newRecorder(true)
	got := make(chan struct{}, 1)
	cliRec.onMsg = func(*msgr.Message) { got <- struct{}{} }
	cli := newEndpoint(b, cfg, clientName(1), "", true, cliRec)
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(b, err)
	p := make([]byte, size)
	for i := 0; i < 100; i++ { // warm up
		require.NoError(b, c.SendMessage(&msgr.Message{Type: 1, Front: p}))
		<-got
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.SendMessage(&msgr.Message{Type: 1, Front: p}); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}

// pongServer is the latency benchmarks' server: it answers every message
// with a type-2 message carrying the same front, from fast dispatch.
func pongServer(b *testing.B, cfg *config.Config) *endpoint {
	srvRec := newRecorder(true)
	srvRec.onMsg = func(m *msgr.Message) { _ = m.Conn.SendMessage(&msgr.Message{Type: 2, Front: m.Front}) }
	return newEndpoint(b, cfg, osdName(1), "127.0.0.1:0", true, srvRec)
}

// BenchLatencyInLoop is BenchLatency with the client sending each next
// ping from its fast-dispatch callback, on the messenger's event loop,
// instead of from a goroutine woken per reply: it measures the messenger's
// round trip without the application's goroutine hand-off.
func BenchLatencyInLoop(b *testing.B, stack string, size int) {
	cfg := Config(stack)
	cfg.ConnectionIdleTimeout = 0
	cfg.KeepaliveInterval = 0
	srv := pongServer(b, cfg)
	p := make([]byte, size)
	var left atomic.Int64
	done := make(chan error, 1)
	cliRec := newRecorder(true)
	cliRec.onMsg = func(m *msgr.Message) {
		if left.Add(-1) > 0 {
			if err := m.Conn.SendMessage(&msgr.Message{Type: 1, Front: p}); err != nil {
				done <- err
			}
			return
		}
		done <- nil
	}
	cli := newEndpoint(b, cfg, clientName(1), "", true, cliRec)
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(b, err)
	run := func(n int) {
		left.Store(int64(n))
		require.NoError(b, c.SendMessage(&msgr.Message{Type: 1, Front: p}))
		require.NoError(b, <-done)
	}
	run(100) // warm up
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	run(b.N)
}

// BenchThroughput streams size-byte messages from a client to a server with
// at most a window of them outstanding (released as the server receives).
func BenchThroughput(b *testing.B, stack string, size int) {
	cfg := Config(stack)
	cfg.ConnectionIdleTimeout = 0
	cfg.KeepaliveInterval = 0
	const window = 64
	sem := make(chan struct{}, window)
	srvRec := newRecorder(true)
	srvRec.onMsg = func(*msgr.Message) { <-sem }
	srv := newEndpoint(b, cfg, osdName(1), "127.0.0.1:0", true, srvRec)
	cli := newEndpoint(b, cfg, clientName(1), "", true, nil)
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(b, err)
	p := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sem <- struct{}{}
		if err := c.SendMessage(&msgr.Message{Type: 1, Data: p}); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < window; i++ { // wait for the tail
		sem <- struct{}{}
	}
}
