package posixfallback

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

func newStack(t testing.TB, mod func(*config.Config)) *Stack {
	t.Helper()
	cfg := config.Default()
	cfg.OpThreads = 2
	if mod != nil {
		mod(cfg)
	}
	s, err := NewStack(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { require.NoError(t, s.Stop()) })
	return s
}

// waitFD blocks until fd has one of events (POLLIN/POLLOUT); the generous
// bound only keeps a broken test from hanging.
func waitFD(t testing.TB, fd int, events int16) {
	t.Helper()
	p := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		n, err := unix.Poll(p, 30000)
		if err == unix.EINTR {
			continue
		}
		require.NoError(t, err)
		require.Equal(t, 1, n, "fd %d not ready", fd)
		return
	}
}

func accept(t testing.TB, ss netstack.ServerSocket, opts netstack.SocketOptions, w netstack.Worker) netstack.ConnectedSocket {
	t.Helper()
	var c netstack.ConnectedSocket
	whenReady(t, ss.FD(), unix.POLLIN, func() (err error) { c, err = ss.Accept(opts, w); return err })
	return c
}

// whenReady runs op until it does not fail with ErrWouldBlock, waiting for
// events on fd after each try that does; op must then have succeeded.
func whenReady(t testing.TB, fd int, events int16, op func() error) {
	t.Helper()
	for {
		err := op()
		if errors.Is(err, netstack.ErrWouldBlock) {
			waitFD(t, fd, events)
			continue
		}
		require.NoError(t, err)
		return
	}
}

// pair returns a connected (client, server) pair on s.
func pair(t testing.TB, s *Stack, laddr string, opts netstack.SocketOptions) (netstack.ConnectedSocket, netstack.ConnectedSocket, netstack.ServerSocket) {
	t.Helper()
	ss, err := s.PickWorker().Listen(laddr, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ss.Abort()) })
	cl, err := s.PickWorker().Connect(ss.Addr().String(), opts)
	require.NoError(t, err)
	sv := accept(t, ss, opts, s.PickWorker())
	t.Cleanup(func() { cl.Close(); sv.Close() })
	return cl, sv, ss
}

func sendAll(t testing.TB, c netstack.ConnectedSocket, bufs ...[]byte) {
	t.Helper()
	for {
		var n int
		whenReady(t, c.FD(), unix.POLLOUT, func() (err error) { n, err = c.Send(bufs, false); return err })
		for n > 0 && len(bufs) > 0 {
			if n >= len(bufs[0]) {
				n -= len(bufs[0])
				bufs = bufs[1:]
			} else {
				bufs[0] = bufs[0][n:]
				n = 0
			}
		}
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			return
		}
	}
}

func readFull(t testing.TB, c netstack.ConnectedSocket, n int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	buf := make([]byte, 64<<10)
	for len(out) < n {
		var m int
		whenReady(t, c.FD(), unix.POLLIN, func() (err error) { m, err = c.Read(buf[:min(len(buf), n-len(out))]); return err })
		out = append(out, buf[:m]...)
	}
	return out
}

func TestListenConnectFamilies(t *testing.T) {
	s := newStack(t, nil)
	tests := []struct {
		name  string
		laddr string
		ip    net.IP
		v6    bool
	}{
		{"ipv4 loopback port 0", "127.0.0.1:0", net.IPv4(127, 0, 0, 1), false},
		{"ipv6 loopback port 0", "[::1]:0", net.IPv6loopback, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.v6 && !hasIPv6Loopback() {
				testenv.Missing(t, "IPv6 loopback (::1) on this machine")
			}
			cl, sv, ss := pair(t, s, tc.laddr, netstack.SocketOptions{})
			la := ss.Addr().(*net.TCPAddr)
			require.NotZero(t, la.Port, "port 0 must be replaced by the bound port")
			require.True(t, la.IP.Equal(tc.ip), "bound %v", la)
			require.Equal(t, ss.Addr().String(), cl.RemoteAddr().String())
			require.Equal(t, cl.LocalAddr().String(), sv.RemoteAddr().String())
			require.Equal(t, tc.v6, cl.LocalAddr().(*net.TCPAddr).IP.To4() == nil)

			// Nothing to read yet.
			_, err := sv.Read(make([]byte, 8))
			require.ErrorIs(t, err, netstack.ErrWouldBlock)
			require.ErrorIs(t, err, unix.EAGAIN)

			sendAll(t, cl, []byte("hello"))
			require.Equal(t, []byte("hello"), readFull(t, sv, 5))
			sendAll(t, sv, []byte("world"))
			require.Equal(t, []byte("world"), readFull(t, cl, 5))

			// Half-close: the peer reads EOF, and can still answer.
			require.NoError(t, cl.Shutdown())
			waitFD(t, sv.FD(), unix.POLLIN)
			n, err := sv.Read(make([]byte, 8))
			require.Equal(t, 0, n)
			require.ErrorIs(t, err, io.EOF)
			sendAll(t, sv, []byte("bye"))
			require.Equal(t, []byte("bye"), readFull(t, cl, 3))
		})
	}
}

func hasIPv6Loopback() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func TestWildcardListen(t *testing.T) {
	s := newStack(t, nil)
	ss, err := s.PickWorker().Listen(":0", netstack.SocketOptions{})
	require.NoError(t, err)
	defer ss.Abort()
	port := ss.Addr().(*net.TCPAddr).Port
	require.NotZero(t, port)
	c, err := s.PickWorker().Connect(net.JoinHostPort("127.0.0.1", itoa(port)), netstack.SocketOptions{})
	require.NoError(t, err)
	defer c.Close()
	sv := accept(t, ss, netstack.SocketOptions{}, s.PickWorker())
	defer sv.Close()
}

func itoa(n int) string { return (&net.TCPAddr{Port: n}).String()[1:] }

func TestScatterGather(t *testing.T) {
	s := newStack(t, nil)
	cl, sv, _ := pair(t, s, "127.0.0.1:0", netstack.SocketOptions{})

	n, err := cl.Send([][]byte{[]byte("ab"), nil, []byte("cde"), {}, []byte("f")}, true)
	require.NoError(t, err)
	require.Equal(t, 6, n)
	require.Equal(t, []byte("abcdef"), readFull(t, sv, 6))

	n, err = cl.Send(nil, false)
	require.NoError(t, err)
	require.Zero(t, n)

	// More buffers than IOV_MAX: one Send takes at most IOV_MAX of them.
	bufs := make([][]byte, iovMax+500)
	var want []byte
	for i := range bufs {
		bufs[i] = []byte{byte(i), byte(i >> 8)}
		want = append(want, bufs[i]...)
	}
	n, err = cl.Send(bufs, false)
	require.NoError(t, err)
	require.Equal(t, 2*iovMax, n)
	sendAll(t, cl, bufs[iovMax:]...)
	require.Equal(t, want, readFull(t, sv, len(want)))
}

func TestPartialWritesSlowReader(t *testing.T) {
	s := newStack(t, nil)
	opts := netstack.SocketOptions{RcvBuf: 8 << 10}
	cl, sv, _ := pair(t, s, "127.0.0.1:0", opts)
	require.NoError(t, unix.SetsockoptInt(cl.FD(), unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<10))

	const total = 4 << 20
	data := make([]byte, total)
	for i := range data {
		data[i] = byte(i * 31 >> 3)
	}
	// The reader is slow: small reads with pauses, so the writer meets a
	// full socket buffer over and over.
	var got []byte
	var rerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 16<<10)
		for len(got) < total {
			n, err := sv.Read(buf)
			if errors.Is(err, netstack.ErrWouldBlock) {
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				rerr = err
				return
			}
			got = append(got, buf[:n]...)
		}
	}()

	partial, blocked := 0, 0
	// Offer the rest as two buffers so partial writes cut across an iovec.
	for off := 0; off < total; {
		mid := off + (total-off)/2
		n, err := cl.Send([][]byte{data[off:mid], data[mid:]}, false)
		if errors.Is(err, netstack.ErrWouldBlock) {
			require.Zero(t, n)
			blocked++
			waitFD(t, cl.FD(), unix.POLLOUT)
			continue
		}
		require.NoError(t, err)
		require.Positive(t, n)
		if n < total-off {
			partial++
		}
		off += n
	}
	wg.Wait()
	require.NoError(t, rerr)
	require.Positive(t, partial, "no partial write seen")
	require.Positive(t, blocked, "socket buffer never filled")
	require.True(t, bytes.Equal(data, got), "stream corrupted")
}

func TestSocketOptions(t *testing.T) {
	s := newStack(t, func(c *config.Config) { c.TCPNoDelay = false })
	tests := []struct {
		name    string
		opts    netstack.SocketOptions
		nodelay bool
	}{
		{"defaults", netstack.SocketOptions{}, false},
		{"nodelay rcvbuf priority", netstack.SocketOptions{NoDelay: true, RcvBuf: 64 << 10, Priority: 3, Backlog: 4}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl, sv, _ := pair(t, s, "127.0.0.1:0", tc.opts)
			for _, c := range []netstack.ConnectedSocket{cl, sv} {
				nd, err := unix.GetsockoptInt(c.FD(), unix.IPPROTO_TCP, unix.TCP_NODELAY)
				require.NoError(t, err)
				require.Equal(t, tc.nodelay, nd != 0)
				if tc.opts.RcvBuf > 0 {
					rb, err := unix.GetsockoptInt(c.FD(), unix.SOL_SOCKET, unix.SO_RCVBUF)
					require.NoError(t, err)
					require.GreaterOrEqual(t, rb, tc.opts.RcvBuf) // the kernel doubles it
				}
				pr, err := unix.GetsockoptInt(c.FD(), unix.SOL_SOCKET, unix.SO_PRIORITY)
				require.NoError(t, err)
				require.Equal(t, tc.opts.Priority, pr)
			}
		})
	}
	// The config default (ms_tcp_nodelay = true) applies without opts.
	s2 := newStack(t, nil)
	cl, _, _ := pair(t, s2, "127.0.0.1:0", netstack.SocketOptions{})
	nd, err := unix.GetsockoptInt(cl.FD(), unix.IPPROTO_TCP, unix.TCP_NODELAY)
	require.NoError(t, err)
	require.Equal(t, 1, nd)
}

func TestBindBeforeConnect(t *testing.T) {
	s := newStack(t, nil)
	ss, err := s.PickWorker().Listen("127.0.0.1:0", netstack.SocketOptions{})
	require.NoError(t, err)
	defer ss.Abort()
	bind := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	c, err := s.PickWorker().Connect(ss.Addr().String(), netstack.SocketOptions{ConnectBindAddr: bind})
	require.NoError(t, err)
	defer c.Close()
	require.True(t, c.LocalAddr().(*net.TCPAddr).IP.Equal(bind.IP), "local %v", c.LocalAddr())
	sv := accept(t, ss, netstack.SocketOptions{}, s.PickWorker())
	defer sv.Close()
	require.Equal(t, c.LocalAddr().String(), sv.RemoteAddr().String())

	_, err = s.PickWorker().Connect(ss.Addr().String(), netstack.SocketOptions{ConnectBindAddr: &net.TCPAddr{IP: net.IPv6loopback}})
	require.Error(t, err)
}

func TestConnectErrors(t *testing.T) {
	s := newStack(t, func(c *config.Config) { c.ConnectionReadyTimeout = 300 * time.Millisecond })
	w := s.PickWorker()

	// Refused: a port that was just released.
	ss, err := w.Listen("127.0.0.1:0", netstack.SocketOptions{})
	require.NoError(t, err)
	addr := ss.Addr().String()
	require.NoError(t, ss.Abort())
	require.NoError(t, ss.Abort())
	_, err = w.Connect(addr, netstack.SocketOptions{})
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	require.Equal(t, "dial", oe.Op)
	require.ErrorIs(t, err, unix.ECONNREFUSED)

	_, err = w.Connect("no-such-host.invalid:1", netstack.SocketOptions{})
	require.Error(t, err)

	// Timeout: a listener that never accepts and whose backlog is full
	// drops further SYNs, so a connect eventually times out.
	full, err := w.Listen("127.0.0.1:0", netstack.SocketOptions{Backlog: 1})
	require.NoError(t, err)
	defer full.Abort()
	var timedOut error
	for i := 0; i < 16 && timedOut == nil; i++ {
		c, err := w.Connect(full.Addr().String(), netstack.SocketOptions{})
		if err != nil {
			timedOut = err
			break
		}
		defer c.Close()
	}
	require.Error(t, timedOut)
	var ne net.Error
	require.ErrorAs(t, timedOut, &ne)
	require.True(t, ne.Timeout())
	require.ErrorIs(t, timedOut, os.ErrDeadlineExceeded)

}

func TestCloseAndLoad(t *testing.T) {
	s := newStack(t, nil)
	w0 := s.Workers()[0]
	ss, err := w0.Listen("127.0.0.1:0", netstack.SocketOptions{})
	require.NoError(t, err)
	defer ss.Abort()
	require.Equal(t, 0, w0.Load())
	cl, err := w0.Connect(ss.Addr().String(), netstack.SocketOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, w0.Load())
	require.Equal(t, 1, s.PickWorker().ID(), "least loaded")
	sv := accept(t, ss, netstack.SocketOptions{}, s.Workers()[1])
	require.Equal(t, 1, s.Workers()[1].Load())

	require.NoError(t, cl.Close())
	require.NoError(t, cl.Close())
	require.Equal(t, 0, w0.Load())
	for _, op := range []func() error{
		func() error { _, err := cl.Read(make([]byte, 1)); return err },
		func() error { _, err := cl.Send([][]byte{[]byte("x")}, false); return err },
		cl.Shutdown,
	} {
		err := op()
		require.ErrorIs(t, err, net.ErrClosed)
		var oe *net.OpError
		require.ErrorAs(t, err, &oe)
	}
	// The peer sees EOF.
	waitFD(t, sv.FD(), unix.POLLIN)
	_, err = sv.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, sv.Close())
	require.Equal(t, 0, s.Workers()[1].Load())

	require.NoError(t, ss.Abort())
	_, err = ss.Accept(netstack.SocketOptions{}, w0)
	require.ErrorIs(t, err, net.ErrClosed)

	var nilConn *conn
	require.NoError(t, nilConn.Close())
	var nilSS *serverSocket
	require.NoError(t, nilSS.Abort())
}

func TestRegisteredAndConfig(t *testing.T) {
	require.Contains(t, netstack.Names(), Name)
	cfg := config.Default()
	cfg.OpThreads = 3
	st, err := netstack.New(cfg)
	require.NoError(t, err)
	require.Equal(t, Name, st.Name())
	require.Len(t, st.Workers(), 3)
	require.NoError(t, st.Stop())
	require.NoError(t, st.Stop())
	_, err = st.PickWorker().Listen("127.0.0.1:0", netstack.SocketOptions{})
	require.ErrorIs(t, err, netstack.ErrStackStopped)
	_, err = st.PickWorker().Connect("127.0.0.1:1", netstack.SocketOptions{})
	require.ErrorIs(t, err, netstack.ErrStackStopped)
	require.ErrorIs(t, err, net.ErrClosed)

	for _, n := range []int{0, 25} {
		cfg.OpThreads = n
		_, err := NewStack(cfg)
		require.Error(t, err)
	}
}

// TestLeakBackstop: a socket dropped without Close has its fd closed by the
// garbage collector's cleanup (a safety net, not the mechanism).
func TestLeakBackstop(t *testing.T) {
	s := newStack(t, nil)
	w := s.PickWorker()
	leak := func() int {
		ss, err := w.Listen("127.0.0.1:0", netstack.SocketOptions{})
		require.NoError(t, err)
		return ss.FD()
	}
	fd := leak()
	closed := false
	for i := 0; i < 50 && !closed; i++ {
		runtime.GC()
		time.Sleep(time.Millisecond) // cleanups run on their own goroutine
		_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		closed = errors.Is(err, unix.EBADF)
	}
	require.True(t, closed, "fd %d of an unreachable server socket is still open", fd)
}
