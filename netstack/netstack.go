package netstack

import (
	"net"

	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/config"
)

// ErrWouldBlock is returned by non-blocking socket operations that cannot make
// progress now; the caller waits for the socket's FD to become ready. It
// matches unix.EAGAIN with errors.Is.
var ErrWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string        { return "netstack: operation would block" }
func (wouldBlock) Is(target error) bool { return target == unix.EAGAIN }
func (wouldBlock) Timeout() bool        { return false }
func (wouldBlock) Temporary() bool      { return true }

// SocketOptions are the per-socket knobs a Worker honours when listening or
// connecting. Zero values mean "transport default".
type SocketOptions struct {
	NoDelay  bool // TCP_NODELAY (posix) or no send batching delay (rdma)
	RcvBuf   int  // SO_RCVBUF in bytes; 0 leaves the kernel default
	Priority int  // SO_PRIORITY / IP TOS class; 0 leaves the default
	// ConnectBindAddr, when set, is the local address a connecting socket binds
	// to before connecting (Ceph's ms_bind_before_connect).
	ConnectBindAddr net.Addr
	// Backlog is the listen backlog (ms_tcp_listen_backlog); 0 means the default.
	Backlog int
}

// Stack is one network stack instance (one per messenger), owning its workers.
type Stack interface {
	// Name is the registry name ("posix", "rdma").
	Name() string
	// Start launches every worker's event centre. Calling Start twice is an error.
	Start() error
	// Stop stops all workers and releases every resource the stack holds.
	// It is idempotent and safe to call on a stack that never started.
	Stop() error
	// Workers returns the stack's workers; the slice must not be modified.
	Workers() []Worker
	// PickWorker returns the least-loaded worker (fewest live sockets).
	PickWorker() Worker
}

// Worker owns one EventCenter; every socket it creates is served by that
// centre's goroutine.
type Worker interface {
	// ID is the worker's index within its stack.
	ID() int
	// Center is the worker's event loop.
	Center() *EventCenter
	// Listen binds and listens on addr ("host:port", port 0 picks one).
	Listen(addr string, opts SocketOptions) (ServerSocket, error)
	// Connect dials addr and returns a connected socket. It blocks the calling
	// goroutine (never the event centre's) until the transport-level
	// connection is established or fails; it must not be called from the
	// centre's own goroutine.
	Connect(addr string, opts SocketOptions) (ConnectedSocket, error)
	// Load is the number of live sockets on this worker, for PickWorker.
	Load() int
}

// ServerSocket is a listening socket. Its FD turns readable when Accept may
// succeed.
type ServerSocket interface {
	// Accept returns one pending connection without blocking, or ErrWouldBlock.
	// The accepted socket is served by worker w (the caller picks it, normally
	// Stack.PickWorker()).
	Accept(opts SocketOptions, w Worker) (ConnectedSocket, error)
	// Addr is the bound address (with the real port when 0 was asked).
	Addr() net.Addr
	// FD is pollable for readability by an EventCenter.
	FD() int
	// Abort stops listening and releases the socket; idempotent.
	Abort() error
}

// ConnectedSocket is an established byte-stream connection, used
// non-blockingly from its worker's event centre.
type ConnectedSocket interface {
	// Read copies available bytes into p. It never blocks: with nothing
	// available it returns ErrWouldBlock; at orderly end of stream it returns
	// 0, io.EOF.
	Read(p []byte) (int, error)
	// Send queues the bytes of bufs for transmission and returns how many bytes
	// were accepted, possibly fewer than offered (the caller retries the rest
	// when FD turns writable) or ErrWouldBlock when none were. more hints
	// that another Send follows at once, so the transport may delay the flush.
	Send(bufs [][]byte, more bool) (int, error)
	// Shutdown half-closes the sending side; the peer reads io.EOF.
	Shutdown() error
	// Close releases the socket and every transport resource behind it;
	// idempotent.
	Close() error
	// FD is pollable by an EventCenter: readable when Read may make progress
	// (or an error/EOF is pending), writable when Send may accept more.
	FD() int
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
}

// Factory builds a stack from configuration. It returns an error (wrapping
// ErrUnavailable when the transport cannot run on this machine) rather than a
// half-working stack.
type Factory func(cfg *config.Config) (Stack, error)
