package posixfallback

import (
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// Name is the registry name of this stack.
const Name = "posix"

func init() { netstack.RegisterNew(Name, NewStack) }

// Stack is the posix network stack: cfg.OpThreads workers, each with its own
// event centre.
type Stack struct {
	*netstack.WorkerSet
	cfg config.Config
}

var _ netstack.Stack = (*Stack)(nil)

// NewStack builds a posix stack from cfg (config.Default() when nil). The
// stack is not started.
func NewStack(cfg *config.Config) (*Stack, error) {
	if cfg == nil {
		cfg = config.Default()
	}
	n := cfg.OpThreads
	if n < 1 || n > config.MaxOpThreads {
		return nil, fmt.Errorf("posixfallback: ms_async_op_threads = %d, want 1..%d", n, config.MaxOpThreads)
	}
	s := &Stack{cfg: *cfg}
	ws, err := netstack.NewWorkers(Name, n, func(bw *netstack.BaseWorker) (netstack.Worker, error) {
		return &Worker{BaseWorker: bw, stack: s}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("posixfallback: %w", err)
	}
	s.WorkerSet = ws
	return s, nil
}

// Name returns "posix".
func (s *Stack) Name() string { return Name }

// Worker is one posix worker: its sockets are served by its event centre.
type Worker struct {
	*netstack.BaseWorker
	stack *Stack
}

var _ netstack.Worker = (*Worker)(nil)

func (w *Worker) noDelay(opts netstack.SocketOptions) bool {
	return opts.NoDelay || w.stack.cfg.TCPNoDelay
}

func (w *Worker) rcvBuf(opts netstack.SocketOptions) int {
	if opts.RcvBuf > 0 {
		return opts.RcvBuf
	}
	return w.stack.cfg.TCPRcvBuf
}

// applyOpts sets the per-socket options shared by listening, accepted and
// connecting sockets.
func (w *Worker) applyOpts(fd int, opts netstack.SocketOptions, nodelay bool) error {
	if nodelay {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return os.NewSyscallError("setsockopt TCP_NODELAY", err)
		}
	}
	if rb := w.rcvBuf(opts); rb > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rb); err != nil {
			return os.NewSyscallError("setsockopt SO_RCVBUF", err)
		}
	}
	if opts.Priority > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PRIORITY, opts.Priority); err != nil {
			return os.NewSyscallError("setsockopt SO_PRIORITY", err)
		}
	}
	return nil
}

// Listen binds and listens on addr ("host:port"; port 0 picks a free port;
// an empty host listens on every IPv6 and IPv4 address when IPv6 exists).
func (w *Worker) Listen(addr string, opts netstack.SocketOptions) (netstack.ServerSocket, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: "tcp", Addr: netstack.AddrOrNil(addr), Err: err}
	}
	if w.stack.Stopped() {
		return nil, opErr(netstack.ErrStackStopped)
	}
	backlog := netstack.ListenBacklog(opts, w.stack.cfg.TCPListenBacklog)
	fd, bound, err := netstack.ListenTCP(addr, backlog, true, func(fd int) error {
		return w.applyOpts(fd, opts, w.noDelay(opts))
	})
	if err != nil {
		return nil, opErr(err)
	}
	return newServerSocket(fd, bound, w), nil
}

// Connect dials addr, blocking the calling goroutine (never an event
// centre's) until the TCP handshake completes, fails, or
// ms_connection_ready_timeout passes (a *net.OpError with Timeout() true).
// With opts.ConnectBindAddr the socket binds there first.
func (w *Worker) Connect(addr string, opts netstack.SocketOptions) (netstack.ConnectedSocket, error) {
	if w.stack.Stopped() {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: netstack.AddrOrNil(addr), Err: netstack.ErrStackStopped}
	}
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: netstack.AddrOrNil(addr), Err: err}
	}
	if ta.IP == nil {
		ta = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ta.Port}
	}
	var laddr *net.TCPAddr
	if opts.ConnectBindAddr != nil {
		if laddr, err = netstack.ToTCPAddr(opts.ConnectBindAddr); err != nil {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: ta, Err: err}
		}
	}
	fd, err := w.connectFD(ta, laddr, opts)
	if err != nil {
		var src net.Addr
		if laddr != nil {
			src = laddr
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: src, Addr: ta, Err: err}
	}
	return newConn(fd, w), nil
}

func (w *Worker) connectFD(ta, laddr *net.TCPAddr, opts netstack.SocketOptions) (int, error) {
	family, sa, err := netstack.SockaddrOf(ta, false)
	if err != nil {
		return -1, err
	}
	fd, err := netstack.TCPSocket(family)
	if err != nil {
		return -1, err
	}
	fail := func(err error) (int, error) {
		unix.Close(fd)
		return -1, err
	}
	if err := w.applyOpts(fd, opts, w.noDelay(opts)); err != nil {
		return fail(err)
	}
	if laddr != nil {
		lfam, lsa, err := netstack.SockaddrOf(laddr, family == unix.AF_INET6)
		if err != nil {
			return fail(err)
		}
		if lfam != family {
			return fail(fmt.Errorf("bind address %v is not in the family of %v", laddr, ta))
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err := unix.Bind(fd, lsa); err != nil {
			return fail(os.NewSyscallError("bind", err))
		}
	}
	for {
		err = unix.Connect(fd, sa)
		if err != unix.EINTR {
			break
		}
	}
	switch err {
	case nil:
		return fd, nil
	case unix.EINPROGRESS, unix.EALREADY:
	default:
		return fail(os.NewSyscallError("connect", err))
	}
	timeout := w.stack.cfg.ConnectionReadyTimeout
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		ms := -1
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return fail(os.ErrDeadlineExceeded)
			}
			ms = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		n, err := unix.Poll(pfd, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fail(os.NewSyscallError("poll", err))
		}
		if n > 0 {
			break
		}
	}
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return fail(os.NewSyscallError("getsockopt SO_ERROR", err))
	}
	if soerr != 0 {
		return fail(os.NewSyscallError("connect", unix.Errno(soerr)))
	}
	return fd, nil
}
