package rdmafault

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/netstack/netconn"
	"github.com/asyncmsgr/asyncmsgr/rdmastack"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

// TestBadHandshakeMeta offers the rdma listener's TCP side channel a
// garbage meta of the right length, a short one, an over-long one and a
// peer that connects and says nothing. Each is refused with a clear error
// (a handshake error counted, the fault logged naming the meta problem, the
// bad peer's TCP connection closed), and after each one the listener still
// serves: a good messenger session completes a message round trip.
func TestBadHandshakeMeta(t *testing.T) {
	devA := rdmatest.DeviceA(t)
	srvCfg := rdmatest.Config(devA)
	srvCfg.ConnectionReadyTimeout = 3 * time.Second // the silent peer's handshake deadline
	echo := &sink{}
	echo.onMsg = func(m *msgr.Message) { _ = m.Conn.SendMessage(&msgr.Message{Type: typeEcho, Front: m.Front}) }
	srv := newEndpoint(t, srvCfg, osdName(1), devA.Addr(0), echo)
	replies := make(chan *msgr.Message, 16)
	cli := newEndpoint(t, rdmatest.Config(devA), clientName(1), "", &sink{onMsg: func(m *msgr.Message) { replies <- m }})
	goodSession := func(t *testing.T, id uint64) {
		t.Helper()
		c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
		require.NoError(t, err)
		require.NoError(t, c.SendMessage(&msgr.Message{Type: typeData, Front: payload(id, 100)}))
		select {
		case m := <-replies:
			got, err := checkPayload(m.Front)
			require.NoError(t, err)
			require.Equal(t, id, got)
		case <-time.After(60 * time.Second):
			t.Fatalf("no echo on a good session after a bad peer: conn %+v err %v; server rdma %s", c.Stats(), c.Err(), rdmaSummary(srv.rs))
		}
		cli.m.MarkDown(srv.addr)
	}
	goodSession(t, 0)

	garbage := bytes.Repeat([]byte("z"), rdmastack.MetaLen-1)
	garbage = append(garbage, 0)
	tests := []struct {
		name    string
		send    []byte   // nil: say nothing
		wantLog []string // the server's fault log line contains one of these
		// msgrTimer: the messenger's handshake timer may close the socket
		// before the stack's meta read times out; the stack then counts
		// no handshake error (a local close is not one), and the
		// messenger's timeout line stands for the count.
		msgrTimer bool
	}{
		{"garbage_65_bytes", garbage, []string{rdmastack.ErrBadMeta.Error()}, false},
		{"short_10_bytes", []byte("0001:00000"), []string{rdmastack.ErrBadMeta.Error()}, false},
		{"overlong_200_bytes", bytes.Repeat([]byte("0"), 200), []string{rdmastack.ErrBadMeta.Error()}, false},
		// the stack's meta read deadline and the messenger's handshake
		// timer are both ms_connection_ready_timeout: either may fire first
		{"silent_peer", nil, []string{"reading client meta", msgrTimeout}, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errsBefore := srv.rs.Stats().HandshakeErrors
			logsBefore := len(srv.log.grep(tc.wantLog...))
			timeoutsBefore := len(srv.log.grep(msgrTimeout))
			refused := func() bool {
				if srv.rs.Stats().HandshakeErrors > errsBefore {
					return true
				}
				return tc.msgrTimer && len(srv.log.grep(msgrTimeout)) > timeoutsBefore
			}
			raw, err := net.DialTimeout("tcp", srv.addr, 10*time.Second)
			require.NoError(t, err)
			defer raw.Close()
			if tc.send != nil {
				_, err = raw.Write(tc.send)
				require.NoError(t, err)
			} else {
				// while the silent peer hangs on, the listener serves others
				goodSession(t, uint64(100+i))
			}
			// the server drops the bad peer: EOF or reset on its TCP side
			_ = raw.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, err := io.Copy(io.Discard, raw)
			require.False(t, isTimeout(err), "the server kept a bad peer's connection open (read %d bytes)", n)
			rdmatest.WaitFor(t, 20*time.Second, "the handshake error to be counted and logged", func() bool {
				return refused() && len(srv.log.grep(tc.wantLog...)) > logsBefore
			}, func() string {
				return fmt.Sprintf("handshake errors %d (before %d); server log:\n%s", srv.rs.Stats().HandshakeErrors, errsBefore, srv.log)
			})
			lines := srv.log.grep(tc.wantLog...)
			t.Logf("server: %s", lines[len(lines)-1])
			goodSession(t, uint64(10+i))
		})
	}
	require.Zero(t, cli.rs.Stats().HandshakeErrors, "good sessions had handshake errors")
}

// msgrTimeout starts the messenger's fault line for a handshake that did
// not finish within ms_connection_ready_timeout.
const msgrTimeout = "handshake not finished within"

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestConnectCloseNoLeaks runs 500 connect / one byte each way / close
// cycles over the rdma stack (through netstack/netconn) and checks that no QP,
// CQ, MR, PD, SRQ, eventfd or other file descriptor is left behind
// (`rdma resource show` filtered to this pid and /proc/self/fd), then that
// stopping the stacks releases everything they held.
func TestConnectCloseNoLeaks(t *testing.T) { connectCloseNoLeaks(t, 500, 0) }

// TestConnectCloseNoLeaksWriteMode is TestConnectCloseNoLeaks with RDMA
// WRITE of large payloads on (ms_async_rdma_send_msg_size): every cycle
// also writes a payload above the threshold into a buffer the peer
// advertised and closes with it unread, so each connection closes with
// registered, advertised receive buffers outstanding on both sides; their
// MRs must all be gone.
func TestConnectCloseNoLeaksWriteMode(t *testing.T) { connectCloseNoLeaks(t, 200, 4096) }

func connectCloseNoLeaks(t *testing.T, cycles, sendMsgSize int) {
	devA := rdmatest.DeviceA(t)
	// the stack reports server-side handshake failures at debug level
	var dbg logBuf
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&dbg, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() {
		slog.SetDefault(prev)
		if lines := dbg.grep("handshake"); len(lines) > 0 {
			t.Logf("stack debug log (handshake):\n%s", strings.Join(lines, "\n"))
		}
	})
	start := rdmatest.Resources(t)
	t.Logf("before the stacks: %v", start)

	cfg := rdmatest.Config(devA)
	cfg.RDMASendBuffers = 64
	cfg.RDMAReceiveBuffers = 256
	cfg.RDMAReceiveQueueLen = 64
	cfg.RDMASendMsgSize = sendMsgSize
	srvCfg, cliCfg := *cfg, *cfg
	srvStack := newStack(t, &srvCfg)
	cliStack := newStack(t, &cliCfg)
	l, err := netconn.Listen(srvStack, devA.Addr(0))
	require.NoError(t, err)
	addr := l.Addr().String()
	cycle := func(i int, whileOpen func()) {
		type acc struct {
			c   net.Conn
			err error
		}
		accepted := make(chan acc, 1)
		go func() {
			c, err := l.Accept()
			accepted <- acc{c, err}
		}()
		c, err := netconn.Dial(cliStack, addr)
		require.NoError(t, err, "cycle %d: dial", i)
		var a acc
		select {
		case a = <-accepted:
		case <-time.After(30 * time.Second):
			t.Fatalf("cycle %d: accept did not return", i)
		}
		require.NoError(t, a.err, "cycle %d: accept", i)
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		_ = a.c.SetDeadline(time.Now().Add(30 * time.Second))
		b := []byte{byte(i)}
		_, err = c.Write(b)
		require.NoError(t, err, "cycle %d", i)
		_, err = io.ReadFull(a.c, b)
		require.NoError(t, err, "cycle %d", i)
		_, err = a.c.Write(b)
		require.NoError(t, err, "cycle %d", i)
		_, err = io.ReadFull(c, b)
		require.NoError(t, err, "cycle %d", i)
		require.Equal(t, byte(i), b[0])
		if sendMsgSize > 0 {
			// above the threshold: by RDMA WRITE, left unread at close
			_, err = c.Write(bytes.Repeat([]byte{byte(i)}, 2*sendMsgSize))
			require.NoError(t, err, "cycle %d", i)
			_, err = a.c.Write(bytes.Repeat([]byte{byte(i)}, 3*sendMsgSize))
			require.NoError(t, err, "cycle %d", i)
		}
		if whileOpen != nil {
			whileOpen()
		}
		require.NoError(t, c.Close())
		require.NoError(t, a.c.Close())
	}
	for i := 0; i < 5; i++ { // warm up lazily grown pools
		cycle(i, nil)
	}
	rdmatest.WaitResources(t, rdmatest.Counts{"qp": 0}, 20*time.Second)
	// a connection's WRITE buffers are deregistered just after its QP is
	// destroyed, and its side-channel sockets close after that: the
	// baseline is a snapshot that has stopped changing
	base := rdmatest.SettledResources(t, 10*time.Second)
	basePools := poolMRs(srvStack, cliStack)
	t.Logf("stacks up, after warm-up: %v (pool MRs %d)", base, basePools)
	require.Zero(t, base["qp"], "QPs of closed connections still exist after warm-up")
	// the counters see this process's objects (else the check below is void)
	for _, kind := range []string{"cq", "pd", "mr", "ctx", "fd:eventfd", "fd:uverbs"} {
		require.Positive(t, base[kind], "no %s counted for two running rdma stacks: %v", kind, base)
	}
	for i := 0; i < cycles; i++ {
		var open func()
		if i == 0 {
			open = func() {
				during := rdmatest.Resources(t)
				t.Logf("one connection open: %v", during)
				require.Equal(t, base["qp"]+2, during["qp"], "one connection open: a QP on each side")
				if sendMsgSize > 0 {
					require.Equal(t, base["mr"]+2, during["mr"], "one connection open: its WRITE receive buffers registered on each side")
				}
			}
		}
		cycle(i, open)
	}
	// The RX pool may have grown by a block (an MR) when closing
	// connections' receive queues and new ones' overlapped on a loaded
	// host; it keeps its blocks until Stop, which the last check covers.
	// Pools grow only under traffic, so once every QP is gone their count
	// is final.
	rdmatest.WaitResources(t, rdmatest.Counts{"qp": base["qp"]}, 30*time.Second)
	grown := poolMRs(srvStack, cliStack) - basePools
	want := maps.Clone(base)
	want["mr"] += grown
	after := rdmatest.WaitResources(t, want, 30*time.Second)
	t.Logf("after %d cycles: %v (diff %v, pool blocks grown %d); server rdma %s; client rdma %s", cycles, after,
		rdmatest.Diff(base, after), grown, stackSummary(srvStack), stackSummary(cliStack))
	require.Empty(t, rdmatest.Diff(want, after), "resources left behind by %d connect/close cycles (pool blocks grown %d)", cycles, grown)
	if sendMsgSize > 0 {
		for _, s := range []*rdmastack.Stack{srvStack, cliStack} {
			st := s.Stats()
			t.Logf("WRITE WRs %d, WRITE bytes %d, adverts sent %d received %d, fallbacks %d", st.WriteWRs, st.WriteBytes, st.AdvertsSent, st.AdvertsRecv, st.WriteFallbacks)
			require.NotZero(t, st.WriteWRs, "payloads went by RDMA WRITE")
		}
		// a client has the server's buffers before Connect returns
		require.GreaterOrEqual(t, cliStack.Stats().WriteWRs, uint64(cycles), "every cycle's client wrote by RDMA WRITE")
	}
	require.NoError(t, l.Close())
	require.NoError(t, srvStack.Stop())
	require.NoError(t, cliStack.Stop())
	end := rdmatest.WaitResources(t, start, 20*time.Second)
	require.Empty(t, rdmatest.Diff(start, end), "resources left after the stacks stopped: %v", end)
}

func newStack(t *testing.T, cfg *config.Config) *rdmastack.Stack {
	t.Helper()
	s, err := rdmastack.NewStack(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// poolMRs is the stacks' registered pool blocks, one MR each.
func poolMRs(stacks ...*rdmastack.Stack) int {
	n := 0
	for _, s := range stacks {
		st := s.Stats()
		n += st.RXBlocks + st.TXBlocks
	}
	return n
}

func stackSummary(s *rdmastack.Stack) string {
	st := s.Stats()
	return strings.TrimSpace(fmt.Sprintf("qp created/destroyed %d/%d active %d, handshake errors %d, wc errors %v",
		st.QPsCreated, st.QPsDestroyed, st.QPsActive, st.HandshakeErrors, st.WCErrors))
}
