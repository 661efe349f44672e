package netconn

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// memSock is an in-memory ConnectedSocket whose FD is an eventfd, like the
// rdma stack's: readable while Read can progress or while Send can progress
// after it returned ErrWouldBlock (the netstack.ReadinessMasker contract).
// It proves the adapter does not rely on the FD being a real socket.
type memSock struct {
	mu        *sync.Mutex // shared by both ends
	in, out   *memBuf
	peer      *memSock
	efd       int
	efdSet    bool
	txBlocked bool
	closed    bool
}

type memBuf struct {
	data  []byte
	limit int
	wDone bool // writer shut down or closed: reader gets EOF once empty
	rGone bool // reader closed: writes fail
}

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

func newMemPair(t testing.TB, limit int) (*memSock, *memSock) {
	mu := new(sync.Mutex)
	ab, ba := &memBuf{limit: limit}, &memBuf{limit: limit}
	mk := func(in, out *memBuf) *memSock {
		fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		require.NoError(t, err)
		return &memSock{mu: mu, in: in, out: out, efd: fd}
	}
	a, b := mk(ba, ab), mk(ab, ba)
	a.peer, b.peer = b, a
	return a, b
}

// syncLocked makes the eventfd's readability match the socket's state.
func (s *memSock) syncLocked() {
	if s.closed {
		return
	}
	want := len(s.in.data) > 0 || s.in.wDone || s.out.rGone ||
		(s.txBlocked && len(s.out.data) < s.out.limit)
	var b [8]byte
	switch {
	case want && !s.efdSet:
		b[0] = 1
		_, err := unix.Write(s.efd, b[:])
		if err != nil {
			panic(err)
		}
		s.efdSet = true
	case !want && s.efdSet:
		_, err := unix.Read(s.efd, b[:])
		if err != nil {
			panic(err)
		}
		s.efdSet = false
	}
}

func (s *memSock) syncBoth() { s.syncLocked(); s.peer.syncLocked() }

func (s *memSock) ReadinessMasks() (netstack.EventMask, netstack.EventMask) {
	return netstack.EventReadable, netstack.EventReadable
}

func (s *memSock) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.syncBoth()
	switch {
	case s.closed:
		return 0, net.ErrClosed
	case len(p) == 0:
		return 0, nil
	case len(s.in.data) > 0:
		n := copy(p, s.in.data)
		s.in.data = s.in.data[n:]
		return n, nil
	case s.in.wDone:
		return 0, io.EOF
	}
	return 0, netstack.ErrWouldBlock
}

func (s *memSock) Send(bufs [][]byte, _ bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.syncBoth()
	if s.closed {
		return 0, net.ErrClosed
	}
	if s.out.rGone || s.out.wDone {
		return 0, unix.EPIPE
	}
	total := 0
	for _, b := range bufs {
		room := s.out.limit - len(s.out.data)
		n := min(room, len(b))
		s.out.data = append(s.out.data, b[:n]...)
		total += n
		if n < len(b) {
			break
		}
	}
	if total == 0 {
		for _, b := range bufs {
			if len(b) > 0 {
				s.txBlocked = true
				return 0, netstack.ErrWouldBlock
			}
		}
	}
	s.txBlocked = false
	return total, nil
}

func (s *memSock) Shutdown() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.syncBoth()
	s.out.wDone = true
	return nil
}

func (s *memSock) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.out.wDone = true
	s.in.rGone = true
	s.in.data = nil
	s.peer.syncLocked()
	s.closed = true
	return unix.Close(s.efd)
}

func (s *memSock) FD() int              { return s.efd }
func (s *memSock) LocalAddr() net.Addr  { return memAddr("local") }
func (s *memSock) RemoteAddr() net.Addr { return memAddr("remote") }

// TestNettestConnEventfdSocket runs nettest.TestConn over sockets whose FD is
// an eventfd shared by both directions, with a small buffer so writers block.
func TestNettestConnEventfdSocket(t *testing.T) {
	var centers []*netstack.EventCenter
	for i := 0; i < 2; i++ {
		c, err := netstack.NewEventCenter("mem")
		require.NoError(t, err)
		c.Start()
		centers = append(centers, c)
	}
	defer func() {
		for _, c := range centers {
			require.NoError(t, c.Stop())
		}
	}()
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		a, b := newMemPair(t, 4096)
		c1, c2 := NewConn(a, centers[0]), NewConn(b, centers[1])
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}
