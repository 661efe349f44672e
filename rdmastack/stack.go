package rdmastack

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/dispatcher"
	"github.com/asyncmsgr/asyncmsgr/mempool"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// Name is the registry name of this stack.
const Name = "rdma"

const maxWorkers = 24

func init() {
	netstack.Register(Name, func(cfg *config.Config) (netstack.Stack, error) {
		return NewStack(cfg)
	})
}

// Stack is the rdma network stack: cfg.OpThreads workers sharing one
// dispatcher.
type Stack struct {
	*netstack.WorkerSet
	cfg config.Config
	d   *dispatcher.Dispatcher
}

var _ netstack.Stack = (*Stack)(nil)

// unavailable wraps err so that netstack.New may fall back to posix.
func unavailable(err error) error {
	return fmt.Errorf("rdmastack: %w", errors.Join(netstack.ErrUnavailable, err))
}

// NewStack opens the device named by cfg (config.Default() when nil) and
// builds the stack, not yet started. Without cgo, without a device, with the
// port down or RLIMIT_MEMLOCK too low the error wraps netstack.ErrUnavailable.
func NewStack(cfg *config.Config) (*Stack, error) {
	if cfg == nil {
		cfg = config.Default()
	}
	if !verbs.Supported {
		return nil, unavailable(fmt.Errorf("built without cgo: %w", verbs.ErrNotSupported))
	}
	n := cfg.OpThreads
	if n < 1 || n > maxWorkers {
		return nil, fmt.Errorf("rdmastack: ms_async_op_threads = %d, want 1..%d", n, maxWorkers)
	}
	var cd *cmDevice
	var cmCtx *verbs.Context
	if cfg.RDMACM {
		var err error
		if cd, err = openCMDevice(cfg.RDMADeviceName, max(cfg.RDMAPortNum, 1), cfg.RDMAGIDIdx); err != nil {
			if errors.Is(err, verbs.ErrNoDevice) || errors.Is(err, verbs.ErrNotSupported) {
				return nil, unavailable(err)
			}
			return nil, fmt.Errorf("rdmastack: %w", err)
		}
		cmCtx = cd.ctx
	}
	d, err := dispatcher.Open(dispatcher.Options{
		Context:      cmCtx,
		DeviceName:   cfg.RDMADeviceName,
		Port:         cfg.RDMAPortNum,
		GIDIndex:     cfg.RDMAGIDIdx,
		ChunkSize:    cfg.RDMABufferSize,
		SendBuffers:  cfg.RDMASendBuffers,
		RecvBuffers:  cfg.RDMAReceiveBuffers,
		RecvQueueLen: cfg.RDMAReceiveQueueLen,
		SupportSRQ:   cfg.RDMASupportSRQ,
		PollingUS:    cfg.RDMAPollingUS,
		HugePages:    cfg.RDMAEnableHugepage,
	})
	if err != nil {
		_ = cd.close()
		if errors.Is(err, verbs.ErrNoDevice) || errors.Is(err, verbs.ErrNotSupported) ||
			errors.Is(err, verbs.ErrPortDown) || errors.Is(err, verbs.ErrMemlockTooLow) {
			return nil, unavailable(err)
		}
		return nil, fmt.Errorf("rdmastack: %w", err)
	}
	s := &Stack{cfg: *cfg, d: d}
	workers := make([]netstack.Worker, 0, n)
	for i := 0; i < n; i++ {
		bw, err := netstack.NewBaseWorker(Name, i)
		if err != nil {
			for _, w := range workers {
				_ = w.Center().Stop()
			}
			_ = d.Close()
			_ = cd.close()
			return nil, fmt.Errorf("rdmastack: %w", err)
		}
		workers = append(workers, &Worker{BaseWorker: bw, stack: s})
	}
	s.WorkerSet = netstack.NewWorkerSet(workers)
	s.OnStop(d.Close)
	if cd != nil {
		s.OnStop(cd.close)
	}
	return s, nil
}

// minHandshakeTimeout is the least time the QP handshake gets: the
// messenger's own (shorter) ready timeout must fire first and report its
// error, as it does over posix.
const minHandshakeTimeout = 2 * time.Second

// handshakeTimeout bounds the side-channel handshake:
// ms_connection_ready_timeout, at least minHandshakeTimeout (30 s when 0).
func (s *Stack) handshakeTimeout() time.Duration {
	t := s.cfg.ConnectionReadyTimeout
	if t <= 0 {
		return 30 * time.Second
	}
	return max(t, minHandshakeTimeout)
}

// Name returns "rdma".
func (s *Stack) Name() string { return Name }

// Start starts the dispatcher's poller and every worker's event centre.
func (s *Stack) Start() error {
	if err := s.WorkerSet.Start(); err != nil {
		return err
	}
	s.d.Start()
	return nil
}

// Stats returns the dispatcher's counters (Ceph's RDMA perf counters).
func (s *Stack) Stats() dispatcher.Stats { return s.d.Stats() }

// Dispatcher is the stack's dispatcher (for tests and tools).
func (s *Stack) Dispatcher() *dispatcher.Dispatcher { return s.d }

// TXPool is the stack's TX pool (for zero-copy senders).
func (s *Stack) TXPool() *mempool.Pool { return s.d.TX() }

// Worker is one rdma worker.
type Worker struct {
	*netstack.BaseWorker
	stack *Stack
}

var _ netstack.Worker = (*Worker)(nil)

// Listen binds the TCP side-channel listener on addr; connections accepted
// there run Ceph's QP handshake and then carry data over RDMA.
func (w *Worker) Listen(addr string, opts netstack.SocketOptions) (netstack.ServerSocket, error) {
	opErr := func(err error) error { return &net.OpError{Op: "listen", Net: "rdma", Addr: strAddr(addr), Err: err} }
	if w.stack.Stopped() {
		return nil, opErr(netstack.ErrStackStopped)
	}
	if w.stack.cfg.RDMACM {
		ss, err := w.listenCM(addr, opts)
		if err != nil {
			return nil, opErr(err)
		}
		return ss, nil
	}
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, opErr(err)
	}
	family, sa := unix.AF_INET6, unix.Sockaddr(nil)
	if ip4 := ta.IP.To4(); ip4 != nil {
		family = unix.AF_INET
		a := &unix.SockaddrInet4{Port: ta.Port}
		copy(a.Addr[:], ip4)
		sa = a
	} else if ta.IP == nil {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: ta.Port}
	} else {
		a := &unix.SockaddrInet6{Port: ta.Port}
		copy(a.Addr[:], ta.IP.To16())
		sa = a
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, opErr(os.NewSyscallError("socket", err))
	}
	fail := func(err error) (netstack.ServerSocket, error) {
		unix.Close(fd)
		return nil, opErr(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail(os.NewSyscallError("setsockopt", err))
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail(os.NewSyscallError("bind", err))
	}
	backlog := opts.Backlog
	if backlog <= 0 {
		backlog = w.stack.cfg.TCPListenBacklog
	}
	if backlog <= 0 {
		backlog = 512
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fail(os.NewSyscallError("listen", err))
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return fail(os.NewSyscallError("getsockname", err))
	}
	return &serverSocket{fd: fd, addr: tcpAddrOf(bound), stack: w.stack}, nil
}

// Connect dials the TCP side channel, runs the QP handshake as the client
// and returns the connected socket; it blocks the calling goroutine for at
// most ms_connection_ready_timeout.
func (w *Worker) Connect(addr string, opts netstack.SocketOptions) (netstack.ConnectedSocket, error) {
	opErr := func(err error) error { return &net.OpError{Op: "dial", Net: "rdma", Addr: strAddr(addr), Err: err} }
	if w.stack.Stopped() {
		return nil, opErr(netstack.ErrStackStopped)
	}
	if w.stack.cfg.RDMACM {
		c, err := w.connectCM(addr, opts)
		if err != nil {
			w.stack.d.C.HandshakeErrors.Add(1)
			return nil, opErr(err)
		}
		return c, nil
	}
	timeout := w.stack.handshakeTimeout()
	dl := net.Dialer{Timeout: timeout}
	if opts.ConnectBindAddr != nil {
		la, err := net.ResolveTCPAddr("tcp", opts.ConnectBindAddr.String())
		if err != nil {
			return nil, opErr(err)
		}
		la.Port = 0
		dl.LocalAddr = la
	}
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, opErr(err)
	}
	if ta.IP == nil {
		ta.IP = net.IPv4(127, 0, 0, 1)
	}
	tc, err := dl.Dial("tcp", ta.String())
	if err != nil {
		return nil, opErr(err)
	}
	c, err := newConn(w.stack, w, tc)
	if err != nil {
		tc.Close()
		return nil, opErr(err)
	}
	if err := c.clientHandshake(time.Now().Add(timeout)); err != nil {
		w.stack.d.C.HandshakeErrors.Add(1)
		_ = c.Close()
		return nil, opErr(err)
	}
	go c.watch()
	return c, nil
}

type strAddr string

func (a strAddr) Network() string { return "tcp" }
func (a strAddr) String() string  { return string(a) }

func tcpAddrOf(sa unix.Sockaddr) *net.TCPAddr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	}
	return nil
}

// serverSocket is the TCP side-channel listener.
type serverSocket struct {
	mu     sync.Mutex // Accept and Abort
	fd     int
	addr   *net.TCPAddr
	stack  *Stack
	closed bool
}

var _ netstack.ServerSocket = (*serverSocket)(nil)

// Accept takes one pending TCP connection, creates its QP and starts the
// server side of the handshake on its own goroutine; the socket is returned
// at once (Sends are queued until the QP is connected). ErrWouldBlock when
// none is pending.
func (s *serverSocket) Accept(opts netstack.SocketOptions, w netstack.Worker) (netstack.ConnectedSocket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, &net.OpError{Op: "accept", Net: "rdma", Addr: s.addr, Err: net.ErrClosed}
	}
	nfd, err := netstack.AcceptNonblock(s.fd)
	if err == netstack.ErrWouldBlock {
		return nil, err
	}
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: "rdma", Addr: s.addr, Err: err}
	}
	f := os.NewFile(uintptr(nfd), "rdma-tcp")
	tc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: "rdma", Addr: s.addr, Err: err}
	}
	c, err := newConn(s.stack, w, tc)
	if err != nil {
		tc.Close()
		return nil, &net.OpError{Op: "accept", Net: "rdma", Addr: s.addr, Err: err}
	}
	go c.serverSide(time.Now().Add(s.stack.handshakeTimeout()))
	return c, nil
}

// Addr is the bound TCP address.
func (s *serverSocket) Addr() net.Addr { return s.addr }

// FD is the listening TCP socket.
func (s *serverSocket) FD() int { return s.fd }

// Abort closes the listener; idempotent and nil-safe.
func (s *serverSocket) Abort() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return unix.Close(s.fd)
}
