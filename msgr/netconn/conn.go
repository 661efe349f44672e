package netconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
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

	readMu  sync.Mutex
	writeMu sync.Mutex
	wbuf    [1][]byte // Send argument, guarded by writeMu

	rw, ww    waiter        // readers and writers waiting for readiness
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
	rd, wd    deadline

	// Owner-goroutine state (only touched on c.center's goroutine).
	registered netstack.EventMask
	dead       bool
	updateFn   func()
	onReadyFn  netstack.FileHandler
}

// Waiter states. A direction's interest stays registered with the event
// centre after it fired (idle), so a Read or Write that comes back to wait
// only flips idle to waiting, with no work for the centre; the centre drops
// the interest when it fires while nobody waits (so a socket nobody reads
// does not keep the level-triggered loop busy).
//
//	waiter goroutine: off -> waiting (then asks the centre to register),
//	                  idle -> waiting
//	owner goroutine:  waiting -> idle (fired: wake the waiter),
//	                  idle -> off (fired with no waiter: unregister),
//	                  waiting -> off (cannot register: wake the waiter)
const (
	stOff int32 = iota
	stIdle
	stWaiting
)

type waiter struct {
	st    atomic.Int32
	mask  netstack.EventMask // waited on before the operation
	ready chan struct{}      // capacity 1: the centre saw mask
}

var _ net.Conn = (*Conn)(nil)

// NewConn wraps sock, which is served by center (its worker's event centre).
// The Conn owns sock from now on: Close closes it.
func NewConn(sock netstack.ConnectedSocket, center *netstack.EventCenter) *Conn {
	c := &Conn{
		sock:    sock,
		center:  center,
		fd:      sock.FD(),
		closing: make(chan struct{}),
	}
	c.rw.mask, c.ww.mask = netstack.ReadinessMasks(sock)
	c.rw.ready = make(chan struct{}, 1)
	c.ww.ready = make(chan struct{}, 1)
	c.rd.init()
	c.wd.init()
	c.updateFn = c.updateInterest
	c.onReadyFn = c.onReady
	return c
}

// Dial connects to addr ("host:port") on the least-loaded worker of stack,
// which must be started, with the transport's default socket options.
func Dial(stack netstack.Stack, addr string) (*Conn, error) {
	return DialOptions(stack, addr, netstack.SocketOptions{})
}

// DialOptions is Dial with explicit socket options.
func DialOptions(stack netstack.Stack, addr string, opts netstack.SocketOptions) (*Conn, error) {
	w := stack.PickWorker()
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
		if c.rd.expired() {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		drain(c.rw.ready)
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
		if err := c.wait(&c.rw, &c.rd); err != nil {
			return 0, c.opErr("read", err)
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
		if c.wd.expired() {
			return nn, c.opErr("write", os.ErrDeadlineExceeded)
		}
		if nn == len(b) && nn > 0 {
			return nn, nil
		}
		drain(c.ww.ready)
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
		if err := c.wait(&c.ww, &c.wd); err != nil {
			return nn, c.opErr("write", err)
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
// its event centre and closes it. It is idempotent (later calls return nil)
// and nil-safe.
func (c *Conn) Close() error {
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
		switch {
		case c.center.IsOwner():
			release()
		default:
			if err := c.center.Submit(release); err != nil {
				// The centre has stopped: its epoll set is gone, only the
				// socket is left to close.
				c.closeErr = c.sock.Close()
			}
		}
		if c.closeErr != nil {
			c.closeErr = c.opErr("close", c.closeErr)
		}
	})
	return c.closeErr
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

// wait parks the caller until w's readiness fires, the deadline passes or
// Close; the caller then retries its operation (readiness is a hint).
func (c *Conn) wait(w *waiter, dl *deadline) error {
	for {
		st := w.st.Load()
		if st == stWaiting {
			break // an earlier wait's registration still stands
		}
		if st == stIdle && w.st.CompareAndSwap(stIdle, stWaiting) {
			break // still registered: the centre wakes us, no dispatch needed
		}
		if st == stOff && w.st.CompareAndSwap(stOff, stWaiting) {
			if err := c.center.DispatchExternal(c.updateFn); err != nil {
				return err
			}
			break
		}
	}
	select {
	case <-w.ready:
	case <-c.closing:
	case <-dl.wait():
	}
	return nil
}

// Owner-goroutine side.

func (c *Conn) onReady(_ int, mask netstack.EventMask) {
	for _, w := range [2]*waiter{&c.rw, &c.ww} {
		if mask&w.mask == 0 {
			continue
		}
		if w.st.CompareAndSwap(stWaiting, stIdle) {
			notify(w.ready)
		} else {
			w.st.CompareAndSwap(stIdle, stOff)
		}
	}
	c.updateInterest()
}

// updateInterest makes the centre's interest in fd the union of the masks
// of the directions that are not off.
func (c *Conn) updateInterest() {
	if c.dead {
		return
	}
	var want netstack.EventMask
	for _, w := range [2]*waiter{&c.rw, &c.ww} {
		if w.st.Load() != stOff {
			want |= w.mask
		}
	}
	if add := want &^ c.registered; add != 0 {
		if err := c.center.CreateFileEvent(c.fd, add, c.onReadyFn); err != nil {
			// Cannot wait on this fd: wake the waiters, whose retry of the
			// operation reports the socket's own error.
			for _, w := range [2]*waiter{&c.rw, &c.ww} {
				if w.st.CompareAndSwap(stWaiting, stOff) {
					notify(w.ready)
				} else {
					w.st.CompareAndSwap(stIdle, stOff)
				}
			}
			want = c.registered
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
