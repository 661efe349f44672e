package rdmastack

import (
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/dispatcher"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// closeLinger bounds how long a closed socket's QP waits for its inflight
// sends before it is moved to ERR.
const closeLinger = 2 * time.Second

type connState int

const (
	stHandshake connState = iota
	stConnected
	stClosed
)

// conn is a connected RDMA socket. Its state is owned by whoever holds mu
// (Read, Send, Shutdown, Close, the handshake and side-channel goroutines,
// or the poller when mu was free); the poller's callbacks never wait for
// mu: they hand completions to the inbox (inbox.go), which the holder takes
// over in lock/unlock. See the package doc for the lock order.
type conn struct {
	mu    sync.Mutex
	st    *Stack
	d     *dispatcher.Dispatcher
	h     *dispatcher.QPHandle
	efd   int
	evSet bool
	state connState
	err   error
	tcp   net.Conn
	laddr net.Addr
	raddr net.Addr
	load  netstack.LoadAdder
	qpOK  bool // QP reached RTS

	// receive side
	rxq     []dispatcher.RxItem // received, rxq[rxHead:] not yet read
	rxHead  int
	rxOff   int
	rxNext  uint64 // cur_recv_seq: the next sequence number to deliver
	finRecv bool   // the reader reached the FIN
	rets    []uint32

	// send side
	pend       []pendWR
	open       bool // the last pend chunk still takes bytes
	one        [1]uint32
	wrs        []verbs.WorkRequest
	sges       []verbs.SGE
	txBlocked  bool
	txReady    bool
	shut       bool
	finPending bool
	finSent    bool
	merge      bool
	target     int
	lastInfl   int

	closed  atomic.Bool
	finSeen atomic.Bool // the peer's FIN was received (set by the poller)
	in      inbox       // the poller's hand-over (inbox.go)
	// wk: the worker whose centre polls this socket's CQs (polling mode
	// worker), else nil; queued: waiting in wk.poller.ready (loop only).
	wk       *Worker
	queued   bool
	psn      uint32
	zeroCopy bool
	cm       *cmSide     // rdma_cm connection (ms_async_rdma_cm), else nil
	wr       *writeState // WRITE mode (ms_async_rdma_send_msg_size > 0), else nil
}

var (
	_ netstack.ConnectedSocket    = (*conn)(nil)
	_ netstack.ReadinessMasker    = (*conn)(nil)
	_ dispatcher.Conn             = (*conn)(nil)
	_ netstack.AnyGoroutineSender = (*conn)(nil)
)

func newConn(st *Stack, w netstack.Worker, tc net.Conn) (*conn, error) {
	return newConnWith(st, w, tc.LocalAddr(), tc.RemoteAddr(), func(c *conn) (*dispatcher.QPHandle, error) {
		c.tcp = tc
		if t := st.cfg.RDMASendMsgSize; t > 0 {
			ws, err := newWriteState(st.d.PD(), min(t, 1<<32-1), st.cfg.RDMABufferSize)
			if err != nil {
				return nil, err
			}
			c.wr = ws
		}
		h, err := st.createQP(w, c, nil)
		if err != nil {
			c.wr.release()
			c.wr = nil
		}
		return h, err
	})
}

// newConnWith builds a socket whose QP comes from mkQP.
func newConnWith(st *Stack, w netstack.Worker, laddr, raddr net.Addr, mkQP func(c *conn) (*dispatcher.QPHandle, error)) (*conn, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	c := &conn{st: st, d: st.d, efd: efd, laddr: laddr, raddr: raddr, psn: rand.Uint32() & 0xffffff}
	h, err := mkQP(c)
	if err != nil {
		unix.Close(efd)
		return nil, err
	}
	c.h = h
	if rw, ok := w.(*Worker); ok && rw.poller != nil {
		c.wk = rw
	}
	if la, ok := w.(netstack.LoadAdder); ok {
		c.load = la
		la.AddLoad(1)
	}
	return c, nil
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "rdma", Source: c.laddr, Addr: c.raddr, Err: err}
}

// unusable reports a closed conn or a stopped stack (c.lock held), which
// unusableErr then names for op; split so that the check inlines into
// Send and Read.
func (c *conn) unusable() bool { return c.state == stClosed || c.d.Closed() }

func (c *conn) unusableErr(op string) error {
	if c.state == stClosed {
		return c.opErr(op, net.ErrClosed)
	}
	return c.opErr(op, netstack.ErrStackStopped)
}

// SetZeroCopy enables zero-copy sends on s (an rdma socket): a buffer given
// to Send that starts a chunk of the stack's TX pool (Stack.TXPool().Get) is
// posted without copying and its chunk goes back to the pool when the send
// completes, so the caller must not touch or Put it after Send accepted it.
// It reports false when s is not an rdma socket.
func SetZeroCopy(s netstack.ConnectedSocket, on bool) bool {
	c, ok := s.(*conn)
	if ok {
		c.lock()
		c.zeroCopy = on
		c.unlock()
	}
	return ok
}

// SendFromAnyGoroutine reports true: Send serialises on the socket's own
// lock, posts with ibv_post_send (thread-safe per QP) and never touches an
// event centre, so the messenger may write a message straight from the
// sending goroutine (netstack.AnyGoroutineSender) instead of waking the
// worker's centre for every message.
func (c *conn) SendFromAnyGoroutine() bool { return true }

// ReadinessMasks: the eventfd turns readable for both directions.
func (c *conn) ReadinessMasks() (read, write netstack.EventMask) {
	return netstack.EventReadable, netstack.EventReadable
}

// FD is the connection's eventfd: readable while Read can make progress
// (data, EOF or an error pending) or Send can after it returned
// ErrWouldBlock.
func (c *conn) FD() int { return c.efd }

// LocalAddr is the side channel's local TCP address.
func (c *conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr is the side channel's remote TCP address.
func (c *conn) RemoteAddr() net.Addr { return c.raddr }

// syncReadyLocked keeps the eventfd counter in step with readiness.
func (c *conn) syncReadyLocked() {
	if c.state == stClosed {
		return
	}
	want := len(c.rxq) > c.rxHead || c.finRecv || c.err != nil || (c.txBlocked && c.txReady)
	var b [8]byte
	switch {
	case want && !c.evSet:
		b[0] = 1
		_, _ = unix.Write(c.efd, b[:])
		c.st.readyWrites.Add(1)
		c.evSet = true
	case !want && c.evSet:
		_, _ = unix.Read(c.efd, b[:])
		c.evSet = false
	}
}

// faultLocked records the first fatal error.
func (c *conn) faultLocked(err error) {
	if c.err == nil && c.state != stClosed {
		c.err = err
		c.syncReadyLocked()
	}
}

// Shutdown flushes what is queued and sends the FIN (a zero-length SEND).
func (c *conn) Shutdown() error {
	c.lock()
	defer c.unlock()
	if c.state == stClosed {
		return c.opErr("shutdown", net.ErrClosed)
	}
	if c.shut {
		return nil
	}
	c.shut = true
	c.finPending = true
	c.flushLocked(true)
	return nil
}

// Close sends the FIN when connected, returns every chunk and hands the QP
// to the dispatcher for draining and destruction; the side channel is
// closed after that (so the peer sees the FIN before the EOF). Idempotent
// and nil-safe.
func (c *conn) Close() error {
	if c == nil || !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.lock()
	if c.state == stConnected && c.err == nil && !c.d.Closed() {
		if !c.shut {
			c.shut, c.finPending = true, true
		}
		c.flushLocked(true)
	}
	c.state = stClosed
	if len(c.pend) > 0 {
		for _, p := range c.pend {
			c.rets = append(c.rets, p.chunk)
		}
		c.d.TX().Put(c.rets...)
		c.rets = c.rets[:0]
		c.pend = nil
	}
	c.closeInboxLocked()
	for _, it := range c.rxq[c.rxHead:] {
		if it.Chunk != noChunk {
			c.rets = append(c.rets, it.Chunk)
		}
	}
	c.rxq, c.rxHead = nil, 0
	if len(c.rets) > 0 {
		c.h.ReturnRX(c.rets...)
		c.rets = c.rets[:0]
	}
	c.unlock()
	if c.cm != nil {
		c.cm.close(c)
	} else {
		// The side channel closes once the QP drained and was destroyed:
		// the peer sees its EOF after our last data and FIN (an EOF first
		// would fault it after finGrace and lose what was still in flight,
		// e.g. behind an RC retransmission). WRITE mode: the receive buffers
		// the peer may still write into are deregistered then too.
		tcp, wr := c.tcp, c.wr
		c.h.RetireThen(closeLinger, func() {
			_ = tcp.Close()
			wr.release()
		})
	}
	if c.load != nil {
		c.load.AddLoad(-1)
	}
	unix.Close(c.efd)
	return nil
}
