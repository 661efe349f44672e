package rdmastack

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

func TestNoDeviceIsUnavailable(t *testing.T) {
	cfg := config.Default()
	cfg.TransportType = Name
	cfg.RDMADeviceName = "no-such-device0"
	_, err := NewStack(cfg)
	require.ErrorIs(t, err, netstack.ErrUnavailable)
	if !verbs.Supported {
		require.ErrorIs(t, err, verbs.ErrNotSupported)
	} else {
		require.ErrorIs(t, err, verbs.ErrNoDevice)
	}
	require.Contains(t, netstack.Names(), Name)
}

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	dev := testenv.RequireRDMA(t)
	if !verbs.Supported {
		testenv.Missing(t, "verbs built with cgo")
	}
	cfg := config.Default()
	cfg.TransportType = Name
	cfg.OpThreads = 1
	cfg.RDMADeviceName = dev.Name
	cfg.RDMAGIDIdx = dev.GIDIdx
	cfg.RDMABufferSize = 8 << 10
	cfg.RDMASendBuffers = 64
	cfg.RDMAReceiveQueueLen = 64
	cfg.RDMAReceiveBuffers = 256
	cfg.ConnectionReadyTimeout = 2 * time.Second
	if m := os.Getenv("ASYNCMSGR_RDMA_POLLING_MODE"); m != "" {
		cfg.RDMAPollingMode = m // worker or dispatcher: CI runs the tests in both
	}
	return cfg
}

func startStack(t *testing.T, cfg *config.Config) *Stack {
	t.Helper()
	s, err := NewStack(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { require.NoError(t, s.Stop()) })
	return s
}

func accept(t *testing.T, ss netstack.ServerSocket, w netstack.Worker) netstack.ConnectedSocket {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := ss.Accept(netstack.SocketOptions{}, w)
		if err == nil {
			return c
		}
		require.ErrorIs(t, err, netstack.ErrWouldBlock)
		require.True(t, time.Now().Before(deadline), "accept timed out")
		time.Sleep(2 * time.Millisecond)
	}
}

// readUntil reads from s until want bytes arrived, an error, or the bound.
func readUntil(t *testing.T, s netstack.ConnectedSocket, want int, within time.Duration) ([]byte, error) {
	t.Helper()
	var got []byte
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(within)
	for len(got) < want || want == 0 {
		n, err := s.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil && !errors.Is(err, netstack.ErrWouldBlock) {
			return got, err
		}
		if time.Now().After(deadline) {
			t.Fatalf("read: %d of %d bytes after %v", len(got), want, within)
		}
		if n == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return got, nil
}

// requireExchangeFIN sends msg from cc to sc (read back within the wait)
// and reply from sc to cc, then shuts sc down: cc reads the reply and then
// EOF (the FIN after the data).
func requireExchangeFIN(t *testing.T, cc, sc netstack.ConnectedSocket, msg, reply []byte, within time.Duration) {
	t.Helper()
	sendAll(t, cc, msg)
	got, err := readUntil(t, sc, len(msg), within)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	sendAll(t, sc, reply)
	require.NoError(t, sc.Shutdown())
	got, err = readUntil(t, cc, 0, 10*time.Second)
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, reply, got)
}

func sendAll(t *testing.T, s netstack.ConnectedSocket, b []byte) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(b) > 0 {
		n, err := s.Send([][]byte{b}, false)
		b = b[n:]
		if err != nil {
			require.ErrorIs(t, err, netstack.ErrWouldBlock)
			require.True(t, time.Now().Before(deadline), "send stuck")
			time.Sleep(time.Millisecond)
		}
	}
}

func TestHandshakeErrorsListenerKeepsServing(t *testing.T) {
	cfg := testConfig(t)
	s := startStack(t, cfg)
	w := s.PickWorker()
	ss, err := w.Listen("127.0.0.1:0", netstack.SocketOptions{})
	require.NoError(t, err)
	defer ss.Abort()
	good := Meta{QPN: 0x1234, PSN: 5}.Marshal()
	cases := []struct {
		name  string
		bytes []byte
		want  string
	}{
		{"garbage", bytes.Repeat([]byte("this is not ceph "), 4)[:MetaLen], "malformed handshake meta"},
		{"short", good[:20], "read of 20 bytes"},
		{"over-long", append(append([]byte(nil), good[:]...), good[:10]...), "read of 75 bytes"},
		{"disconnect", nil, "disconnected"},
		{"silent", []byte{}, "timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", ss.Addr().String())
			require.NoError(t, err)
			defer raw.Close()
			if len(tc.bytes) > 0 {
				_, err = raw.Write(tc.bytes)
				require.NoError(t, err)
			} else if tc.bytes == nil {
				require.NoError(t, raw.(*net.TCPConn).CloseWrite())
			}
			c := accept(t, ss, w)
			defer c.Close()
			_, err = readUntil(t, c, 0, 3*cfg.ConnectionReadyTimeout+5*time.Second)
			require.Error(t, err)
			require.ErrorContains(t, err, tc.want)
			require.ErrorIs(t, err, net.ErrClosed)
			_, err = c.Send([][]byte{[]byte("x")}, false)
			require.Error(t, err, "a failed handshake fails sends too")
		})
	}
	require.GreaterOrEqual(t, s.Stats().HandshakeErrors, uint64(len(cases)))

	// The listener still serves a real client.
	cli := startStack(t, cfg)
	sc, cc := connectPair(t, ss, w, cli.PickWorker())
	requireExchangeFIN(t, cc, sc, bytes.Repeat([]byte("0123456789abcdef"), 5000), []byte("bye"), 20*time.Second) // several chunks
}

// A silent server: the client's Connect fails within the ready timeout.
func TestConnectToSilentServer(t *testing.T) {
	cfg := testConfig(t)
	cfg.ConnectionReadyTimeout = 500 * time.Millisecond
	s := startStack(t, cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(3 * time.Second)
		}
	}()
	_, err = s.PickWorker().Connect(l.Addr().String(), netstack.SocketOptions{})
	require.Error(t, err)
	var te interface{ Timeout() bool }
	require.ErrorAs(t, err, &te)
	require.True(t, te.Timeout(), "%v", err)
	require.NotZero(t, s.Stats().HandshakeErrors)
}

// TX backpressure: with a tiny TX pool Send accepts what fits, says
// ErrWouldBlock for the rest, and everything arrives.
func TestSendBackpressure(t *testing.T) {
	cfg := testConfig(t)
	cfg.RDMASendBuffers = 4
	s := startStack(t, cfg)
	sc, cc := pairOn(t, s, s)
	msg := make([]byte, 1<<20)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	go sendAll(t, cc, msg)
	got, err := readUntil(t, sc, len(msg), 60*time.Second)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	st := s.Stats()
	require.NotZero(t, st.TxNoMem+st.TxPartialMem, "the pool ran dry")
	t.Logf("stats: %+v", st)
}

// Zero copy: a whole TX chunk handed to Send is posted without a copy and
// comes back to the pool at completion.
func TestZeroCopySend(t *testing.T) {
	cfg := testConfig(t)
	s := startStack(t, cfg)
	sc, cc := pairOn(t, s, s)
	require.True(t, SetZeroCopy(cc, true))
	pool := s.TXPool()
	var idx [1]uint32
	require.Equal(t, 1, pool.Get(idx[:], false))
	chunk := pool.Bytes(idx[0])
	copy(chunk, "zero-copy payload")
	before := s.Stats().TXBytes
	n, err := cc.Send([][]byte{chunk[:17]}, false)
	require.NoError(t, err)
	require.Equal(t, 17, n)
	got, err := readUntil(t, sc, 17, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, "zero-copy payload", string(got))
	require.Equal(t, before+17, s.Stats().TXBytes)
	deadline := time.Now().Add(10 * time.Second)
	for pool.Stats().InUse != 0 {
		require.True(t, time.Now().Before(deadline), "chunk returned to the pool")
		time.Sleep(time.Millisecond)
	}
}

// TestRDMACM connects through rdma_cm (ms_async_rdma_cm=true): the same
// data path, FIN, then every QP is reaped.
func TestRDMACM(t *testing.T) {
	cfg := testConfig(t)
	cfg.RDMACM = true
	host := testenv.RequireRDMA(t).Host
	srv := startStack(t, cfg)
	ccfg := *cfg
	if os.Getenv(testenv.EnvTwoHost) != "" {
		ccfg.RDMADeviceName = os.Getenv(testenv.EnvDevB) // host B reaches host A through its own device
	}
	cli := startStack(t, &ccfg)
	w := srv.PickWorker()
	ss, err := w.Listen(net.JoinHostPort(host, "0"), netstack.SocketOptions{})
	require.NoError(t, err)
	defer ss.Abort()
	sc, cc := connectPair(t, ss, w, cli.PickWorker())
	requireExchangeFIN(t, cc, sc, bytes.Repeat([]byte("rdma_cm "), 20000), []byte("reply"), 30*time.Second)
	require.NoError(t, cc.Close())
	require.NoError(t, sc.Close())
	for _, s := range []*Stack{srv, cli} {
		deadline := time.Now().Add(20 * time.Second)
		for s.Stats().QPsActive != 0 {
			require.True(t, time.Now().Before(deadline), "QPs reaped")
			time.Sleep(5 * time.Millisecond)
		}
	}

	// A connect to a port nobody listens on is refused.
	_, err = cli.PickWorker().Connect(net.JoinHostPort(host, "1"), netstack.SocketOptions{})
	require.Error(t, err)
	t.Logf("refused: %v", err)
}

// TestAdaptiveMerging: many flushes while sends are in flight enter merge
// mode (ms_async_rdma_submit_time_trigger, count trigger 2): small messages
// coalesce into the chunk being filled (far fewer doorbells than flushes),
// chunk-sized ones go out several WRs per post; the byte stream is intact.
func TestAdaptiveMerging(t *testing.T) {
	cfg := testConfig(t)
	cfg.RDMASubmitTimeTrigger = true
	cfg.RDMACountTrigger = 2
	cfg.RDMASendBuffers = 256
	cfg.RDMAReceiveQueueLen = 256
	cfg.RDMAReceiveBuffers = 4096
	s := startStack(t, cfg)
	sc, cc := pairOn(t, s, s)
	phases := []struct {
		name string
		msgs int
		size int // 0: short decimal strings
	}{
		{"small", 3000, 0},
		{"chunk-sized", 300, cfg.RDMABufferSize},
	}
	for _, ph := range phases {
		before := s.Stats()
		var want []byte
		for i := 0; i < ph.msgs; i++ {
			m := []byte(strconv.Itoa(i) + ";")
			if ph.size > 0 {
				m = bytes.Repeat([]byte{byte(i)}, ph.size)
			}
			want = append(want, m...)
			sendAll(t, cc, m) // one flush each
		}
		got, err := readUntil(t, sc, len(want), 60*time.Second)
		require.NoError(t, err)
		require.Equal(t, want, got)
		st := s.Stats()
		posts, wrs := st.Posts-before.Posts, st.PostedWRs-before.PostedWRs
		t.Logf("%s: %d flushes -> %d posts, %d WRs (%.2f WRs per doorbell); merge mode entered %d times, %d flushes deferred",
			ph.name, ph.msgs, posts, wrs, float64(wrs)/float64(posts), st.MergeEnter-before.MergeEnter, st.MergeDeferred-before.MergeDeferred)
		require.NotZero(t, st.MergeEnter-before.MergeEnter)
		require.Less(t, posts, uint64(ph.msgs), "fewer doorbells than flushes")
		if ph.size > 0 {
			require.Greater(t, wrs, posts, "merged posts carry several WRs")
		}
	}
}
