package rdmastack

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/dispatcher"
	"github.com/asyncmsgr/asyncmsgr/mempool"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// Name is the registry name of this stack.
const Name = "rdma"

func init() { netstack.RegisterNew(Name, NewStack) }

// Stack is the rdma network stack: cfg.OpThreads workers sharing one
// dispatcher.
type Stack struct {
	*netstack.WorkerSet
	cfg config.Config
	d   *dispatcher.Dispatcher
	// cm: connections are set up through rdma_cm, by ms_async_rdma_cm or
	// by ms_async_rdma_type = iwarp (Ceph's iWARP sockets connect through
	// rdma_cm; config.Validate also insists on ms_async_rdma_cm there).
	cm bool
	// readyWrites counts socket eventfd writes (tests: none per message
	// in worker mode; workerPoller: whether a Poll made a socket ready).
	readyWrites atomic.Uint64
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
	if n < 1 || n > config.MaxOpThreads {
		return nil, fmt.Errorf("rdmastack: ms_async_op_threads = %d, want 1..%d", n, config.MaxOpThreads)
	}
	useCM := cfg.RDMACM || cfg.RDMAType == "iwarp"
	var cd *cmDevice
	var cmCtx *verbs.Context
	if useCM {
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
		Logger:       cfg.Log(),
	})
	if err != nil {
		_ = cd.close()
		if errors.Is(err, verbs.ErrNoDevice) || errors.Is(err, verbs.ErrNotSupported) ||
			errors.Is(err, verbs.ErrPortDown) || errors.Is(err, verbs.ErrMemlockTooLow) {
			return nil, unavailable(err)
		}
		return nil, fmt.Errorf("rdmastack: %w", err)
	}
	s := &Stack{cfg: *cfg, d: d, cm: useCM}
	ws, err := netstack.NewWorkers(Name, n, func(bw *netstack.BaseWorker) (netstack.Worker, error) {
		rw := &Worker{BaseWorker: bw, stack: s}
		return rw, s.newWorkerCQ(rw)
	})
	if err != nil {
		_ = d.Close()
		_ = cd.close()
		return nil, fmt.Errorf("rdmastack: %w", err)
	}
	s.WorkerSet = ws
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
	for _, w := range s.Workers() {
		w.(*Worker).startPolling()
	}
	return nil
}

// Stats returns the dispatcher's counters (Ceph's RDMA perf counters).
func (s *Stack) Stats() dispatcher.Stats { return s.d.Stats() }

// TXPool is the stack's TX pool (for zero-copy senders).
func (s *Stack) TXPool() *mempool.Pool { return s.d.TX() }

// Worker is one rdma worker.
type Worker struct {
	*netstack.BaseWorker
	stack  *Stack
	cq     *dispatcher.CQSet // its own CQ pair (polling mode worker), else nil
	poller *workerPoller     // cq on the centre, else nil
}

var _ netstack.Worker = (*Worker)(nil)

// Listen binds the TCP side-channel listener on addr; connections accepted
// there run Ceph's QP handshake and then carry data over RDMA.
func (w *Worker) Listen(addr string, opts netstack.SocketOptions) (netstack.ServerSocket, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: "rdma", Addr: netstack.StringAddr(addr), Err: err}
	}
	if w.stack.Stopped() {
		return nil, opErr(netstack.ErrStackStopped)
	}
	if w.stack.cm {
		ss, err := w.listenCM(addr, opts)
		if err != nil {
			return nil, opErr(err)
		}
		return ss, nil
	}
	// The side channel listens on the IPv4 wildcard for an empty host.
	fd, bound, err := netstack.ListenTCP(addr, netstack.ListenBacklog(opts, w.stack.cfg.TCPListenBacklog), false, nil)
	if err != nil {
		return nil, opErr(err)
	}
	return &serverSocket{TCPListener: netstack.NewTCPListener(fd, bound, "rdma"), stack: w.stack}, nil
}

// Connect dials the TCP side channel, runs the QP handshake as the client
// and returns the connected socket; it blocks the calling goroutine for at
// most ms_connection_ready_timeout.
func (w *Worker) Connect(addr string, opts netstack.SocketOptions) (netstack.ConnectedSocket, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "rdma", Addr: netstack.StringAddr(addr), Err: err}
	}
	if w.stack.Stopped() {
		return nil, opErr(netstack.ErrStackStopped)
	}
	if w.stack.cm {
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

// serverSocket is the TCP side-channel listener.
type serverSocket struct {
	*netstack.TCPListener
	stack *Stack
}

var _ netstack.ServerSocket = (*serverSocket)(nil)

// Accept takes one pending TCP connection, creates its QP and starts the
// server side of the handshake on its own goroutine; the socket is returned
// at once (Sends are queued until the QP is connected). ErrWouldBlock when
// none is pending.
func (s *serverSocket) Accept(opts netstack.SocketOptions, w netstack.Worker) (netstack.ConnectedSocket, error) {
	nfd, err := s.TCPListener.Accept()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(nfd), "rdma-tcp")
	tc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, s.OpError("accept", err)
	}
	c, err := newConn(s.stack, w, tc)
	if err != nil {
		tc.Close()
		return nil, s.OpError("accept", err)
	}
	go c.serverSide(time.Now().Add(s.stack.handshakeTimeout()))
	return c, nil
}

// Abort closes the listener; idempotent and nil-safe.
func (s *serverSocket) Abort() error {
	if s == nil {
		return nil
	}
	return s.Close()
}
