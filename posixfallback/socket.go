package posixfallback

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// iovMax is the kernel's IOV_MAX: one sendmsg takes at most this many
// buffers.
const iovMax = 1024

// serverSocket is a non-blocking listening TCP socket.
type serverSocket struct {
	*netstack.TCPListener
	worker *Worker
}

var _ netstack.ServerSocket = (*serverSocket)(nil)

// Accept returns one pending connection without blocking, or
// netstack.ErrWouldBlock. The accepted socket is charged to w.
func (s *serverSocket) Accept(opts netstack.SocketOptions, w netstack.Worker) (netstack.ConnectedSocket, error) {
	nfd, err := s.TCPListener.Accept()
	if err != nil {
		return nil, err
	}
	if err := s.worker.applyOpts(nfd, opts, s.worker.noDelay(opts)); err != nil {
		unix.Close(nfd)
		return nil, s.OpError("accept", err)
	}
	return newConn(nfd, w), nil
}

// Abort closes the listening socket; idempotent and nil-safe.
func (s *serverSocket) Abort() error {
	if s == nil {
		return nil
	}
	return s.Close()
}

// conn is a connected non-blocking TCP socket. Read and Send may run
// concurrently with each other and with Close; each must not run
// concurrently with itself (Send reuses an iovec array).
type conn struct {
	mu     sync.RWMutex // read: a syscall on fd in progress; write: Close
	fd     int
	closed atomic.Bool
	laddr  net.Addr
	raddr  net.Addr
	load   netstack.LoadAdder // charged +1 at creation, -1 at Close; may be nil
	leak   runtime.Cleanup    // closes fd if the socket is dropped unclosed

	iov []unix.Iovec // reused by Send, grows up to iovMax
	msg unix.Msghdr
}

var (
	_ netstack.ConnectedSocket    = (*conn)(nil)
	_ netstack.AnyGoroutineSender = (*conn)(nil)
)

func newConn(fd int, w netstack.Worker) *conn {
	c := &conn{fd: fd}
	if sa, err := unix.Getsockname(fd); err == nil {
		if a := netstack.TCPAddrOf(sa); a != nil {
			c.laddr = a
		}
	}
	if sa, err := unix.Getpeername(fd); err == nil {
		if a := netstack.TCPAddrOf(sa); a != nil {
			c.raddr = a
		}
	}
	if la, ok := w.(netstack.LoadAdder); ok {
		c.load = la
		la.AddLoad(1)
	}
	c.leak = runtime.AddCleanup(c, closeLeaked, fd)
	return c
}

// newServerSocket wraps a listening fd.
func newServerSocket(fd int, addr *net.TCPAddr, w *Worker) *serverSocket {
	return &serverSocket{TCPListener: netstack.NewTCPListener(fd, addr, "tcp"), worker: w}
}

// closeLeaked is the backstop for a socket garbage-collected without Close
// (a bug in the caller); the worker's load count is not corrected.
func closeLeaked(fd int) { unix.Close(fd) }

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: err}
}

// Read copies available bytes into p without blocking: ErrWouldBlock when
// none are available, 0, io.EOF at the end of the stream.
func (c *conn) Read(p []byte) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(c.fd, p)
		switch {
		case err == nil && n > 0:
			return n, nil
		case err == nil:
			return 0, io.EOF
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, netstack.ErrWouldBlock
		default:
			return 0, c.opErr("read", os.NewSyscallError("read", err))
		}
	}
}

// Send writes as much of bufs as the socket buffer takes in one sendmsg
// (at most IOV_MAX buffers) and returns the byte count; ErrWouldBlock when
// the buffer is full. more sets MSG_MORE.
func (c *conn) Send(bufs [][]byte, more bool) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	niov := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if niov == iovMax {
			more = true // the caller will come back with the rest
			break
		}
		if niov == len(c.iov) {
			c.iov = append(c.iov, unix.Iovec{})
		}
		c.iov[niov].Base = &b[0]
		c.iov[niov].SetLen(len(b))
		niov++
	}
	if niov == 0 {
		return 0, nil
	}
	flags := unix.MSG_NOSIGNAL | unix.MSG_DONTWAIT
	if more {
		flags |= unix.MSG_MORE
	}
	c.msg = unix.Msghdr{Iov: &c.iov[0]}
	c.msg.SetIovlen(niov)
	var n uintptr
	var errno unix.Errno
	for {
		n, _, errno = unix.Syscall(unix.SYS_SENDMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&c.msg)), uintptr(flags))
		if errno != unix.EINTR {
			break
		}
	}
	// Do not keep the caller's buffers reachable.
	for i := 0; i < niov; i++ {
		c.iov[i] = unix.Iovec{}
	}
	c.msg.Iov = nil
	switch errno {
	case 0:
		return int(n), nil
	case unix.EAGAIN:
		return 0, netstack.ErrWouldBlock
	default:
		return 0, c.opErr("write", os.NewSyscallError("sendmsg", errno))
	}
}

// Shutdown half-closes the sending side.
func (c *conn) Shutdown() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return c.opErr("shutdown", net.ErrClosed)
	}
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		return c.opErr("shutdown", os.NewSyscallError("shutdown", err))
	}
	return nil
}

// Close closes the socket; idempotent and nil-safe. It waits for a Read or
// Send in progress (they never block) so the fd number is not reused under
// them.
func (c *conn) Close() error {
	if c == nil || !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leak.Stop()
	if c.load != nil {
		c.load.AddLoad(-1)
	}
	if err := unix.Close(c.fd); err != nil {
		return c.opErr("close", os.NewSyscallError("close", err))
	}
	return nil
}

// FD is the socket itself.
func (c *conn) FD() int { return c.fd }

// SendFromAnyGoroutine is true: Send is one non-blocking sendmsg that never
// touches the worker's event centre, so it may run on any goroutine (calls
// must still not overlap).
func (c *conn) SendFromAnyGoroutine() bool { return true }

// LocalAddr is the local TCP address.
func (c *conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr is the peer's TCP address.
func (c *conn) RemoteAddr() net.Addr { return c.raddr }
