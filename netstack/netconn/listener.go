package netconn

import (
	"errors"
	"net"
	"sync"

	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// Listener is a net.Listener over a netstack.ServerSocket. Accepted
// connections go to the stack's least-loaded worker.
type Listener struct {
	stack  netstack.Stack
	ss     netstack.ServerSocket
	center *netstack.EventCenter
	fd     int
	opts   netstack.SocketOptions

	acceptMu  sync.Mutex // one waiter at a time, so one wake-up suffices
	ready     chan struct{}
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error

	// Owner-goroutine state.
	armed     bool
	dead      bool
	armFn     func()
	onReadyFn netstack.FileHandler
}

var _ net.Listener = (*Listener)(nil)

// Listen listens on addr ("host:port", port 0 picks one) on the least-loaded
// worker of stack, which must be started (else the error wraps
// netstack.ErrStackNotStarted).
func Listen(stack netstack.Stack, addr string) (*Listener, error) {
	return ListenOptions(stack, addr, netstack.SocketOptions{})
}

// ListenOptions is Listen with explicit options for the listening and the
// accepted sockets.
func ListenOptions(stack netstack.Stack, addr string, opts netstack.SocketOptions) (*Listener, error) {
	w := stack.PickWorker()
	if !w.Center().Started() {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: netstack.AddrOrNil(addr), Err: netstack.ErrStackNotStarted}
	}
	ss, err := w.Listen(addr, opts)
	if err != nil {
		return nil, err
	}
	l := &Listener{
		stack:   stack,
		ss:      ss,
		center:  w.Center(),
		fd:      ss.FD(),
		opts:    opts,
		ready:   make(chan struct{}, 1),
		closing: make(chan struct{}),
	}
	l.armFn = l.arm
	l.onReadyFn = l.onReady
	return l, nil
}

func (l *Listener) opErr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return err
	}
	return &net.OpError{Op: "accept", Net: l.ss.Addr().Network(), Addr: l.ss.Addr(), Err: err}
}

// Accept waits for and returns the next connection, as a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	return l.AcceptConn()
}

// AcceptConn is Accept returning the concrete type.
func (l *Listener) AcceptConn() (*Conn, error) {
	l.acceptMu.Lock()
	defer l.acceptMu.Unlock()
	for {
		if isClosed(l.closing) {
			return nil, l.opErr(net.ErrClosed)
		}
		if l.center.Stopped() {
			return nil, l.opErr(netstack.ErrStackStopped)
		}
		drain(l.ready)
		w := l.stack.PickWorker()
		sock, err := l.ss.Accept(l.opts, w)
		if err == nil {
			return NewConn(sock, w.Center()), nil
		}
		if !errors.Is(err, netstack.ErrWouldBlock) {
			if isClosed(l.closing) {
				return nil, l.opErr(net.ErrClosed)
			}
			return nil, l.opErr(err)
		}
		if err := l.center.DispatchExternal(l.armFn); err != nil {
			return nil, l.opErr(err)
		}
		select {
		case <-l.ready:
		case <-l.closing:
		case <-l.center.Done():
		}
	}
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.ss.Addr() }

// Close stops listening and unblocks Accept; idempotent and nil-safe.
// Connections already accepted stay open. It waits (Submit) for the
// listener's event centre to unregister the fd, so a callback of that
// centre uses CloseOnLoop instead.
func (l *Listener) Close() error {
	return l.close(false)
}

// CloseOnLoop is Close for code running on the loop goroutine of the
// listener's event centre.
func (l *Listener) CloseOnLoop() error {
	return l.close(true)
}

func (l *Listener) close(onLoop bool) error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() {
		close(l.closing)
		release := func() {
			l.dead = true
			if l.armed {
				_ = l.center.DeleteFileEvent(l.fd, netstack.EventReadable)
				l.armed = false
			}
			l.closeErr = l.ss.Abort()
		}
		releaseOn(l.center, onLoop, release, func() { l.closeErr = l.ss.Abort() })
	})
	return l.closeErr
}

func (l *Listener) arm() {
	if l.dead || l.armed {
		return
	}
	if err := l.center.CreateFileEvent(l.fd, netstack.EventReadable, l.onReadyFn); err != nil {
		notify(l.ready) // the retried Accept reports the error
		return
	}
	l.armed = true
}

func (l *Listener) onReady(fd int, _ netstack.EventMask) {
	l.armed = false
	_ = l.center.DeleteFileEvent(fd, netstack.EventReadable)
	notify(l.ready)
}
