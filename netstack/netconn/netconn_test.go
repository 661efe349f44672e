package netconn

import (
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	_ "github.com/asyncmsgr/asyncmsgr/posixfallback"
)

func newPosix(t testing.TB) netstack.Stack {
	t.Helper()
	cfg := config.Default()
	cfg.TransportType = "posix"
	cfg.OpThreads = 2
	s, err := netstack.New(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { require.NoError(t, s.Stop()) })
	return s
}

// pipe returns a connected pair over stack through Listen/Accept/Dial.
func pipe(t testing.TB, s netstack.Stack, addr string) (*Conn, *Conn) {
	t.Helper()
	l, err := Listen(s, addr)
	require.NoError(t, err)
	defer l.Close()
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.AcceptConn()
		ch <- res{c, err}
	}()
	c1, err := Dial(s, l.Addr().String())
	require.NoError(t, err)
	r := <-ch
	require.NoError(t, r.err)
	return c1, r.c
}

func TestNettestConn(t *testing.T) {
	s := newPosix(t)
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		c1, c2 := pipe(t, s, "127.0.0.1:0")
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

func TestNettestConnIPv6(t *testing.T) {
	if !nettest.SupportsIPv6() {
		testenv.Missing(t, "IPv6 loopback (::1)")
	}
	s := newPosix(t)
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		c1, c2 := pipe(t, s, "[::1]:0")
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

func TestCloseUnblocks(t *testing.T) {
	s := newPosix(t)
	tests := []struct {
		name string
		op   func(c *Conn) error
	}{
		{"read", func(c *Conn) error { _, err := c.Read(make([]byte, 10)); return err }},
		{"write", func(c *Conn) error {
			buf := make([]byte, 1<<20)
			for {
				if _, err := c.Write(buf); err != nil {
					return err
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c1, c2 := pipe(t, s, "127.0.0.1:0")
			defer c2.Close()
			errc := make(chan error, 1)
			go func() { errc <- tc.op(c1) }()
			// Let the op reach its wait (a retry would also be correct: the
			// op must fail with ErrClosed either way).
			time.Sleep(20 * time.Millisecond)
			require.NoError(t, c1.Close())
			err := <-errc
			require.ErrorIs(t, err, net.ErrClosed)
			var oe *net.OpError
			require.ErrorAs(t, err, &oe)
			require.NoError(t, c1.Close())
			require.ErrorIs(t, tc.op(c1), net.ErrClosed)
			require.ErrorIs(t, c1.SetDeadline(time.Now()), net.ErrClosed)
		})
	}
	var nilConn *Conn
	require.NoError(t, nilConn.Close())
	var nilL *Listener
	require.NoError(t, nilL.Close())
}

func TestDeadlineErrors(t *testing.T) {
	s := newPosix(t)
	c1, c2 := pipe(t, s, "127.0.0.1:0")
	defer c1.Close()
	defer c2.Close()
	require.NoError(t, c1.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
	_, err := c1.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())

	// Clearing the deadline lets a later Read succeed.
	require.NoError(t, c1.SetReadDeadline(time.Time{}))
	_, err = c2.Write([]byte("x"))
	require.NoError(t, err)
	n, err := c1.Read(make([]byte, 1))
	require.NoError(t, err)
	require.Equal(t, 1, n)

	// Write timing out against a peer that does not read returns the
	// bytes already written.
	require.NoError(t, c1.SetWriteDeadline(time.Now().Add(50*time.Millisecond)))
	total := 0
	for {
		n, err := c1.Write(make([]byte, 256<<10))
		total += n
		if err != nil {
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
			break
		}
	}
	require.Positive(t, total)

	// EOF after CloseWrite.
	require.NoError(t, c2.CloseWrite())
	require.NoError(t, c1.SetReadDeadline(time.Time{}))
	_, err = io.Copy(io.Discard, c1)
	require.NoError(t, err) // io.Copy swallows io.EOF: the stream ended
}

func TestListenerClose(t *testing.T) {
	s := newPosix(t)
	l, err := Listen(s, "127.0.0.1:0")
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, l.Close())
	err = <-errc
	require.ErrorIs(t, err, net.ErrClosed)
	require.NoError(t, l.Close())
	_, err = l.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = Dial(s, l.Addr().String())
	require.Error(t, err)
}

func TestConcurrentAccept(t *testing.T) {
	s := newPosix(t)
	l, err := Listen(s, "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	const n = 8
	var wg sync.WaitGroup
	accepted := make(chan *Conn, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := l.AcceptConn()
			if err == nil {
				accepted <- c
			}
		}()
	}
	var dialed []*Conn
	for i := 0; i < n; i++ {
		c, err := Dial(s, l.Addr().String())
		require.NoError(t, err)
		dialed = append(dialed, c)
	}
	wg.Wait()
	close(accepted)
	count := 0
	for c := range accepted {
		count++
		c.Close()
	}
	require.Equal(t, n, count)
	for _, c := range dialed {
		c.Close()
	}
	// Sockets are spread over the workers and given back on Close.
	for _, w := range s.Workers() {
		require.Equal(t, 0, w.Load())
	}
}

func TestStackStopped(t *testing.T) {
	s := startedStack(t)
	c1, c2 := pipe(t, s, "127.0.0.1:0")
	require.NoError(t, s.Stop())
	_, err := c1.Read(make([]byte, 1))
	require.ErrorIs(t, err, net.ErrClosed)
	// The kernel socket would still take these bytes; nobody serves it.
	_, err = c1.Write([]byte("after stop"))
	require.ErrorIs(t, err, net.ErrClosed)
	require.ErrorIs(t, err, netstack.ErrStackStopped)
	require.NotContains(t, err.Error(), "\n")
	require.Contains(t, err.Error(), "netstack: stack stopped")
	require.NoError(t, c1.Close())
	require.NoError(t, c2.Close())
}

// maskedSock asks the adapter to wait on "readable" for both directions,
// as the rdma stack's eventfd does; writes must still complete, because a
// wake-up is only a hint and the adapter retries.
type maskedSock struct {
	netstack.ConnectedSocket
}

func (m *maskedSock) ReadinessMasks() (netstack.EventMask, netstack.EventMask) {
	return netstack.EventReadable, netstack.EventReadable
}

func TestReadinessMasker(t *testing.T) {
	s := newPosix(t)
	c1, c2 := pipe(t, s, "127.0.0.1:0")
	defer c2.Close()
	// Re-wrap c1's socket so both directions wait on "readable".
	ms := &maskedSock{ConnectedSocket: c1.Socket()}
	mc := NewConn(ms, c1.center)
	defer mc.Close()
	r, wm := netstack.ReadinessMasks(ms)
	require.Equal(t, netstack.EventReadable, r)
	require.Equal(t, netstack.EventReadable, wm)
	go func() {
		time.Sleep(10 * time.Millisecond)
		c2.Write([]byte("hi"))
	}()
	buf := make([]byte, 2)
	_, err := io.ReadFull(mc, buf)
	require.NoError(t, err)
	require.Equal(t, "hi", string(buf))
	_, err = mc.Write([]byte("ok"))
	require.NoError(t, err)
	_, err = io.ReadFull(c2, buf)
	require.NoError(t, err)
	require.Equal(t, "ok", string(buf))
}

func pingPong(b *testing.B, c1, c2 net.Conn) {
	go func() {
		buf := make([]byte, 2)
		for {
			if _, err := io.ReadFull(c2, buf); err != nil {
				return
			}
			if _, err := c2.Write(buf); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c1.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c1, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

// BenchmarkNetconnPingPong is a 2-byte round trip over netconn on the posix
// stack; compare with BenchmarkNetPingPong.
func BenchmarkNetconnPingPong(b *testing.B) {
	s := newPosix(b)
	c1, c2 := pipe(b, s, "127.0.0.1:0")
	defer c1.Close()
	defer c2.Close()
	pingPong(b, c1, c2)
}

// BenchmarkNetPingPong is the same round trip over the standard library's
// TCP net.Conn.
func BenchmarkNetPingPong(b *testing.B) {
	c1, c2 := testenv.TCPPair(b)
	pingPong(b, c1, c2)
}

// TestStackNotStarted: Listen and Dial on a stack whose Start was never
// called fail at once, instead of returning sockets nothing will serve
// (whose Read never saw data and whose Close blocked forever).
func TestStackNotStarted(t *testing.T) {
	cfg := config.Default()
	cfg.OpThreads = 1
	s, err := netstack.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Stop()) })

	l, err := Listen(s, "127.0.0.1:0")
	require.ErrorIs(t, err, netstack.ErrStackNotStarted)
	require.Contains(t, err.Error(), "netstack: stack not started")
	require.Nil(t, l)

	other := newPosix(t)
	ol, err := Listen(other, "127.0.0.1:0")
	require.NoError(t, err)
	defer ol.Close()
	c, err := Dial(s, ol.Addr().String())
	require.ErrorIs(t, err, netstack.ErrStackNotStarted)
	require.Nil(t, c)
}
