package netconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// Conn is a net.Conn over a netstack.ConnectedSocket. Read and Write may be
// called concurrently (calls of the same kind are serialized); Close
// unblocks both.
type Conn struct {
	sock   netstack.ConnectedSocket
	center *netstack.EventCenter
	fd     int
	rmask  netstack.EventMask // waited on before Read
	wmask  netstack.EventMask // waited on before Send

	readMu  sync.Mutex
	writeMu sync.Mutex
	wbuf    [1][]byte // Send argument, guarded by writeMu

	readReady  chan struct{} // capacity 1: the centre saw rmask
	writeReady chan struct{} // capacity 1: the centre saw wmask
	closing    chan struct{} // closed by Close
	closeOnce  sync.Once
	closeErr   error
	rd, wd     deadline

	// Owner-goroutine state (only touched on c.center's goroutine).
	wantRead, wantWrite bool
	registered          netstack.EventMask
	dead                bool
	armReadFn           func()
	armWriteFn          func()
	onReadyFn           netstack.FileHandler
}

var _ net.Conn = (*Conn)(nil)

// NewConn wraps sock, which is served by center (its worker's event centre).
// The Conn owns sock from now on: Close closes it.
func NewConn(sock netstack.ConnectedSocket, center *netstack.EventCenter) *Conn {
	c := &Conn{
		sock:       sock,
		center:     center,
		fd:         sock.FD(),
		readReady:  make(chan struct{}, 1),
		writeReady: make(chan struct{}, 1),
		closing:    make(chan struct{}),
	}
	c.rmask, c.wmask = netstack.ReadinessMasks(sock)
	c.rd.init()
	c.wd.init()
	c.armReadFn = c.armRead
	c.armWriteFn = c.armWrite
	c.onReadyFn = c.onReady
	return c
}

// Dial connects to addr ("host:port") on the least-loaded worker of stack,
// which must be started (else the error wraps netstack.ErrStackNotStarted),
// with the transport's default socket options. Once the stack stops, Read
// and Write fail with an error matching net.ErrClosed.
func Dial(stack netstack.Stack, addr string) (*Conn, error) {
	return DialOptions(stack, addr, netstack.SocketOptions{})
}

// DialOptions is Dial with explicit socket options.
func DialOptions(stack netstack.Stack, addr string, opts netstack.SocketOptions) (*Conn, error) {
	w := stack.PickWorker()
	if !w.Center().Started() {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: netstack.AddrOrNil(addr), Err: netstack.ErrStackNotStarted}
	}
	sock, err := w.Connect(addr, opts)
	if err != nil {
		return nil, err
	}
	return NewConn(sock, w.Center()), nil
}

// Socket returns the wrapped socket.
func (c *Conn) Socket() netstack.ConnectedSocket { return c.sock }

func (c *Conn) opErr(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return err
	}
	return &net.OpError{Op: op, Net: c.network(), Source: c.sock.LocalAddr(), Addr: c.sock.RemoteAddr(), Err: err}
}

func (c *Conn) network() string {
	if a := c.sock.LocalAddr(); a != nil {
		return a.Network()
	}
	return "tcp"
}

func (c *Conn) isClosing() bool { return isClosed(c.closing) }

// Read reads up to len(b) bytes, blocking until some are available, the
// stream ends (io.EOF), the read deadline passes, or Close.
func (c *Conn) Read(b []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if c.isClosing() {
			return 0, c.opErr("read", net.ErrClosed)
		}
		if c.center.Stopped() {
			return 0, c.opErr("read", netstack.ErrStackStopped)
		}
		if c.rd.expired() {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		drain(c.readReady)
		n, err := c.sock.Read(b)
		if n > 0 {
			return n, nil
		}
		switch {
		case err == nil:
			return 0, nil // len(b) == 0
		case err == io.EOF:
			return 0, io.EOF
		case !errors.Is(err, netstack.ErrWouldBlock):
			if c.isClosing() {
				return 0, c.opErr("read", net.ErrClosed)
			}
			return 0, c.opErr("read", err)
		}
		if err := c.center.DispatchExternal(c.armReadFn); err != nil {
			return 0, c.opErr("read", err)
		}
		select {
		case <-c.readReady:
		case <-c.closing:
		case <-c.rd.wait():
		case <-c.center.Done():
		}
	}
}

// Write writes all of b unless the write deadline passes or Close happens
// first; it then returns how much was written with the error.
func (c *Conn) Write(b []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	nn := 0
	for {
		if c.isClosing() {
			return nn, c.opErr("write", net.ErrClosed)
		}
		if c.center.Stopped() {
			// The socket itself may still take bytes, but nothing serves
			// it any more: report it as closed, as Read does.
			return nn, c.opErr("write", netstack.ErrStackStopped)
		}
		if c.wd.expired() {
			return nn, c.opErr("write", os.ErrDeadlineExceeded)
		}
		if nn == len(b) && nn > 0 {
			return nn, nil
		}
		drain(c.writeReady)
		c.wbuf[0] = b[nn:]
		n, err := c.sock.Send(c.wbuf[:], false)
		c.wbuf[0] = nil
		nn += n
		if err == nil {
			if nn == len(b) {
				return nn, nil
			}
			if n > 0 {
				continue // partial: the retry most likely reports ErrWouldBlock
			}
		} else if !errors.Is(err, netstack.ErrWouldBlock) {
			if c.isClosing() {
				return nn, c.opErr("write", net.ErrClosed)
			}
			return nn, c.opErr("write", err)
		}
		if err := c.center.DispatchExternal(c.armWriteFn); err != nil {
			return nn, c.opErr("write", err)
		}
		select {
		case <-c.writeReady:
		case <-c.closing:
		case <-c.wd.wait():
		case <-c.center.Done():
		}
	}
}

// CloseWrite shuts down the sending side; the peer reads io.EOF.
func (c *Conn) CloseWrite() error {
	if c.isClosing() {
		return c.opErr("close", net.ErrClosed)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.sock.Shutdown(); err != nil {
		return c.opErr("close", err)
	}
	return nil
}

// Close unblocks pending Read and Write calls, unregisters the socket from
// its event centre and closes it. It waits (Submit) for that centre to
// unregister the fd, so it must not be called on that centre's own loop
// goroutine: a callback of the centre uses CloseOnLoop instead. Called from
// a different centre's callback it stalls that centre briefly. It is
// idempotent (later calls, of either, return nil) and nil-safe.
func (c *Conn) Close() error {
	return c.close(false)
}

// CloseOnLoop is Close for code running on the loop goroutine of the
// socket's event centre (one of its callbacks): it unregisters and closes
// the socket right there instead of waiting for the loop.
func (c *Conn) CloseOnLoop() error {
	return c.close(true)
}

func (c *Conn) close(onLoop bool) error {
	if c == nil {
		return nil
	}
	c.closeOnce.Do(func() {
		close(c.closing)
		release := func() {
			c.dead = true
			if c.registered != 0 {
				_ = c.center.DeleteFileEvent(c.fd, c.registered)
				c.registered = 0
			}
			c.closeErr = c.sock.Close()
		}
		releaseOn(c.center, onLoop, release, func() { c.closeErr = c.sock.Close() })
		if c.closeErr != nil {
			c.closeErr = c.opErr("close", c.closeErr)
		}
	})
	return c.closeErr
}

// releaseOn runs release on center's loop goroutine: right here when the
// caller is on it (onLoop), else through Submit, waiting. When the centre
// has stopped, its epoll set is gone and stopped closes what is left.
func releaseOn(center *netstack.EventCenter, onLoop bool, release, stopped func()) {
	if onLoop {
		release()
	} else if err := center.Submit(release); err != nil {
		stopped()
	}
}

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.sock.LocalAddr() }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.sock.RemoteAddr() }

// SetDeadline sets both the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.isClosing() {
		return c.opErr("set", net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline sets the read deadline; a passed deadline fails Read with
// an error matching os.ErrDeadlineExceeded (Timeout() is true).
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.isClosing() {
		return c.opErr("set", net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.isClosing() {
		return c.opErr("set", net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}

// Owner-goroutine side: interest is registered only while a Read or Write
// waits, and dropped when it fires (level-triggered epoll would otherwise
// spin on a readable socket nobody reads).

func (c *Conn) armRead() {
	if c.dead {
		return
	}
	c.wantRead = true
	c.updateInterest()
}

func (c *Conn) armWrite() {
	if c.dead {
		return
	}
	c.wantWrite = true
	c.updateInterest()
}

func (c *Conn) onReady(_ int, mask netstack.EventMask) {
	if c.wantRead && mask&c.rmask != 0 {
		c.wantRead = false
		notify(c.readReady)
	}
	if c.wantWrite && mask&c.wmask != 0 {
		c.wantWrite = false
		notify(c.writeReady)
	}
	c.updateInterest()
}

func (c *Conn) updateInterest() {
	if c.dead {
		return
	}
	var want netstack.EventMask
	if c.wantRead {
		want |= c.rmask
	}
	if c.wantWrite {
		want |= c.wmask
	}
	if add := want &^ c.registered; add != 0 {
		if err := c.center.CreateFileEvent(c.fd, add, c.onReadyFn); err != nil {
			// Cannot wait on this fd: wake the waiters, whose retry of the
			// operation reports the socket's own error.
			c.wantRead, c.wantWrite = false, false
			notify(c.readReady)
			notify(c.writeReady)
			want = 0
		}
	}
	if del := c.registered &^ want; del != 0 {
		_ = c.center.DeleteFileEvent(c.fd, del)
	}
	c.registered = want
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func drain(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}
