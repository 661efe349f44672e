package msgr

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/asyncmsgr/asyncmsgr/internal/lockorder"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

type connState int

const (
	stNone       connState = iota
	stConnecting           // outgoing: dialing on a helper goroutine
	stBanner               // banner sent, waiting for the peer's
	stHello                // waiting for HELLO
	stAuth                 // client: AUTH_REQUEST sent; server: waiting for it
	stAuthSign             // waiting for AUTH_SIGNATURE
	stSession              // client: ident/reconnect sent; server: waiting for it
	stReady                // session established: MESSAGE/ACK/KEEPALIVE2
	stBackoff              // outgoing lossless: waiting to reconnect
	stStandby              // lossless, socket gone, waiting for the peer (server) or for work
	stReplacing            // server: session is adopting a new socket
	stClosed
)

var stateNames = [...]string{"none", "connecting", "banner", "hello", "auth", "auth-signature",
	"session", "ready", "backoff", "standby", "replacing", "closed"}

func (s connState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// handshaking reports states in which a socket is attached but the session is
// not ready yet.
func (s connState) handshaking() bool { return s >= stBanner && s <= stSession }

// ErrMarkedDown is the error of a connection closed by MarkDown, MarkDownAll
// or Shutdown. It matches net.ErrClosed.
var ErrMarkedDown = fmt.Errorf("msgr: connection marked down: %w", net.ErrClosed)

// timeoutError is a fault caused by a timer; it satisfies net.Error.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }

func (e *timeoutError) Timeout() bool { return true }

func (e *timeoutError) Temporary() bool { return true }

// ConnStats are a connection's counters.
type ConnStats struct {
	MsgsSent, MsgsRecv   uint64
	BytesSent, BytesRecv uint64 // wire bytes, frames included
	Reconnects           uint64 // reconnect attempts of a lossless session
	Faults               uint64
	DupsDropped          uint64 // received messages with seq <= in_seq
	KeepalivesSent       uint64
	KeepaliveAcks        uint64
}

type connStats struct {
	msgsSent, msgsRecv, bytesSent, bytesRecv, reconnects, faults, dups, kaSent, kaAcks atomic.Uint64
}

const (
	defaultRBuf   = 64 << 10
	ownFrameMin   = 16 << 10 // messages this big are read into their own buffer
	prefetchBig   = 4 << 10  // read size between big frames (Ceph's ms_tcp_prefetch_max_size)
	maxKeepRBuf   = 1 << 20
	maxKeepWBuf   = 4 << 20
	zeroCopyMin   = 16 << 10 // data segments this big are sent by reference, not copied
	writeBatchMax = 256 << 10
	maxReadLoops  = 64      // reads per readiness event, at most
	maxReadBytes  = 1 << 20 // bytes per readiness event, about
	// A received message is acknowledged by the next message sent (its
	// AckSeq); when none is sent, a bare ACK frame goes out after ackDelay,
	// or at once when ackBatch messages are unacknowledged (TCP's delayed
	// ack). This spares a frame, a syscall and a wake-up of the peer per
	// request/reply exchange.
	ackDelay   = 500 * time.Microsecond
	ackBatch   = 64
	lossyFlag  = 1 // CEPH_MSG_CONNECT_LOSSY
	eopnotsupp = 95
)

// Connection is a session with one peer (Ceph's AsyncConnection with
// ProtocolV2). It is driven by one worker's event centre; methods are safe
// from any goroutine.
//
// Its state is in three parts, by who touches it (the lock order is in
// lockorder.go):
//   - set when the connection is made, then only read (no lock), and the
//     counters (atomics);
//   - sh, the small part application goroutines share with the centre:
//     the out queue, the error, the wake flag and what the getters report,
//     under sh.mu;
//   - everything else, owned by the centre goroutine. mu is its owner
//     token: the centre holds it while it runs the connection's events, and
//     only two others ever take it, each for a bounded step that never
//     waits on the network: a sender that finds the connection idle borrows
//     it to write its frames directly (SendMessage, with TryLock: it never
//     waits behind the centre), and MarkDown to close. The server side of a
//     reconnect takes the existing session's token to hand it the socket.
type Connection struct {
	msgr *Messenger
	// outgoing: this side dialled the current socket (it is the client of
	// the socket's handshake). Owned by the centre (mu): a race takeover
	// and an accepted session that dials back change it.
	outgoing bool
	// initiated: this side sent the session's CLIENT_IDENT (Outgoing);
	// a race takeover changes it, so it is read without mu.
	initiated atomic.Bool
	target    string // dial address (outgoing, or a dial that took over the peer's session: race.go)
	// racing: an accepted lossless peer session, which Connect to the
	// peer's address returns (race.go). Guarded by Messenger.mu.
	racing   bool
	closedCh chan struct{}
	kickFn   func() // writeKick, made once so that a kick does not allocate
	// peerAddrStr is what an accepted connection prints as (its peer's
	// address), set when its socket is attached.
	peerAddrStr atomic.Pointer[string]

	stats connStats

	sh connShared

	// Owned by the centre goroutine (mu is the owner token, see above).
	mu          lockorder.Mutex
	state       connState
	policy      Policy
	peerType    uint8 // 0 = unknown yet
	worker      netstack.Worker
	center      *netstack.EventCenter
	sock        netstack.ConnectedSocket
	fd          int
	gen         uint64
	wantWrite   bool // EventWritable registered
	sockDirect  bool // sock may be sent on from any goroutine (netstack.AnyGoroutineSender)
	direct      bool // writing from a goroutine other than the centre's: never touch the centre
	directBlock bool // a direct write could not finish: the centre must take over
	directErr   error
	ackArmed    bool // an ack timer of this generation is pending
	ackDue      bool // the ack timer is running: send a bare ACK now
	dispatching bool
	everReady   bool

	// session
	clientCookie, serverCookie uint64
	globalSeq, connectSeq      uint64
	peerGlobalSeq              uint64
	outSeq, inSeq, ackLeft     uint64
	peerAddrs                  msgr2.AddrVec
	peerName                   EntityName
	peerFeatures               uint64
	globalID                   uint64
	backoff                    time.Duration
	stuckSeq                   uint64     // oldest unacked seq at the last fault of a ready session
	stalls                     int        // faults in a row with stuckSeq unacked
	resend                     []*Message // requeued sent messages, before sh.outQ
	sent                       []*Message // written, not yet acked (lossless)
	lastKeepaliveAck           time.Time
	auth                       authState // this socket's authentication (auth.go)

	// read side
	rbuf          []byte
	rstart, rend  int
	havePre       bool
	donateRBuf    bool   // the frame being handled sits in a one-off buffer
	ownFrame      bool   // rbuf is a buffer of exactly the current frame
	bigFrames     bool   // the last frame was big: read with a small prefetch
	normRBuf      []byte // the normal read buffer while ownFrame
	ownBuf        *rxBuf // the pooled buffer rbuf is while ownFrame (nil: not pooled)
	rbufDonated   bool   // a message took that buffer
	pre           msgr2.Preamble
	secInline     [msgr2.PreambleInlineLen]byte // secure mode: segment 0's inline bytes
	secInlineN    int
	readSinceTick bool
	idleFor       time.Duration
	rx            rxThrottle       // receive throttling (throttle.go)
	delay         *delayedDelivery // ms_inject_delay_*: held-back messages (inject.go)

	// write side. The pending output is wbuf, then wext (a big message's
	// data segment, sent by reference), then wtail[:wtailN] (that frame's
	// epilogue); wpos counts bytes of it sent.
	wbuf           []byte
	wext           []byte
	wtail          [msgr2.EpilogueLen]byte
	wtailN         int
	wpos           int
	iov            [][]byte
	wroteSinceTick bool // a message or KEEPALIVE2 was sent (acks do not count)
	quietFor       time.Duration
	kaRecv         uint64 // KEEPALIVE2 frames received
	kaRecvTick     uint64 // kaRecv at the last tick

	tick    time.Duration
	timers  [nTimers]timerRef // conntimers.go
	dial    *dialRef          // the pending dial's hold on c (lifecycle.go)
	handler netstack.FileHandler
	cbuf    []byte   // control frame payload scratch
	post    []dqItem // deliveries to run after unlocking
	spare   []dqItem
}

// connShared is what application goroutines and the centre both touch.
type connShared struct {
	mu        lockorder.Mutex
	outQ      outQueue
	err       error // what closed or last faulted the connection
	closed    bool
	keepalive bool // a KEEPALIVE2 is wanted
	// The wake flag: a write kick is queued on kickedOn (at most one at a
	// time, so a burst of sends costs the centre one wake-up).
	kicked   bool
	kickedOn *netstack.EventCenter
	center   *netstack.EventCenter // the centre driving the connection now
	// What the getters report, published by the centre at each state change.
	readyWait chan struct{} // closed when ready turns true (WaitReady)
	ready     bool
	lossy     bool
	peerName  EntityName
	peerAddrs msgr2.AddrVec
}

func newConnection(m *Messenger, outgoing bool, w netstack.Worker) *Connection {
	c := &Connection{msgr: m, outgoing: outgoing, worker: w, center: w.Center(), fd: -1,
		iov: make([][]byte, 1), closedCh: make(chan struct{})}
	c.initiated.Store(outgoing)
	c.initLocks()
	c.tick = m.tickPeriod()
	return c
}

// initLocks gives the connection's locks their classes and the shared part
// its centre (before the connection is shared).
func (c *Connection) initLocks() {
	c.mu.Init(&connClass)
	c.sh.mu.Init(&connSharedClass)
	c.sh.center = c.center
	c.kickFn = c.writeKick
}

// notePeerAddr records what an accepted connection prints as.
func (c *Connection) notePeerAddr(sock netstack.ConnectedSocket) {
	if c.target != "" {
		return
	}
	a := "unknown"
	if ra := sock.RemoteAddr(); ra != nil {
		a = ra.String()
	}
	c.peerAddrStr.Store(&a)
}

// setStateLocked moves the session to s (owner goroutine) and publishes
// what the getters report.
func (c *Connection) setStateLocked(s connState) {
	c.state = s
	c.logStateLocked(s)
	c.sh.mu.Lock()
	c.sh.ready = s == stReady
	c.publishReadyShLocked()
	c.sh.lossy = c.policy.Lossy
	c.sh.peerName = c.peerName
	c.sh.peerAddrs = c.peerAddrs
	c.sh.mu.Unlock()
}

// setErrLocked records the connection's error (owner goroutine); keep
// leaves an earlier one in place.
func (c *Connection) setErrLocked(err error, keep bool) {
	c.sh.mu.Lock()
	if !keep || c.sh.err == nil {
		c.sh.err = err
	}
	c.sh.mu.Unlock()
}

// ---------------------------------------------------------------- public API

// SendMessage queues m on this connection (highest priority first, FIFO
// within a priority). It never blocks. On a closed connection the message is
// dropped and the connection's error returned; a nil message is refused
// with ErrNilMessage and one whose frame would exceed ms_max_frame_segment
// with an error matching ErrMessageTooLarge.
func (c *Connection) SendMessage(m *Message) error {
	if c == nil {
		return ErrNilConnection
	}
	if err := c.msgr.checkMessage(m); err != nil {
		return err
	}
	if c.mu.TryLock() {
		// Nobody drives the connection at this moment: the message may go
		// out from this goroutine at once.
		return c.sendOwnedLocked(m)
	}
	// The centre (or another sender) holds the connection: queue and make
	// sure the centre looks at the queue afterwards.
	c.sh.mu.Lock()
	if c.sh.closed {
		err := c.closedErrShLocked()
		c.sh.mu.Unlock()
		return err
	}
	c.sh.outQ.push(m)
	center := c.wakeShLocked()
	c.sh.mu.Unlock()
	c.dispatchKick(center)
	return nil
}

// sendOwnedLocked queues m and writes it from this goroutine when it can;
// it releases c.mu, even if writing panics.
func (c *Connection) sendOwnedLocked(m *Message) error {
	defer c.unlockQueueing()
	err := c.queueLocked(m)
	if err == nil {
		if c.canWriteDirectLocked() {
			c.writeDirectLocked()
		} else {
			c.kickLocked()
		}
	}
	return err
}

// queueLocked puts m on the out queue unless the connection is closed.
func (c *Connection) queueLocked(m *Message) error {
	c.sh.mu.Lock()
	defer c.sh.mu.Unlock()
	if c.sh.closed {
		return c.closedErrShLocked()
	}
	c.sh.outQ.push(m)
	return nil
}

func (c *Connection) closedErrShLocked() error {
	if c.sh.err == nil {
		return ErrMarkedDown
	}
	return c.sh.err
}

// SendKeepalive queues a KEEPALIVE2 frame.
func (c *Connection) SendKeepalive() {
	c.sh.mu.Lock()
	c.sh.keepalive = true
	center := c.wakeShLocked()
	c.sh.mu.Unlock()
	c.dispatchKick(center)
}

// MarkDown closes the connection and discards its queues; no reset is
// reported for it.
func (c *Connection) MarkDown() { c.markDown(ErrMarkedDown) }

// Closed is closed once the connection is closed for good.
func (c *Connection) Closed() <-chan struct{} { return c.closedCh }

// Err is the error that closed or last faulted the connection (nil while
// healthy and never faulted).
func (c *Connection) Err() error {
	c.sh.mu.Lock()
	defer c.sh.mu.Unlock()
	return c.sh.err
}

// IsConnected reports whether the session is ready to carry messages now.
func (c *Connection) IsConnected() bool {
	c.sh.mu.Lock()
	defer c.sh.mu.Unlock()
	return c.sh.ready
}

// IsLossy reports the connection's current policy.
func (c *Connection) IsLossy() bool {
	c.sh.mu.Lock()
	defer c.sh.mu.Unlock()
	return c.sh.lossy
}

// Outgoing reports whether this side initiated the session: false for a
// session the peer dialled, also when our own Connect to the peer lost a
// connection race to it and serves its session (race.go).
func (c *Connection) Outgoing() bool { return c.initiated.Load() }

// PeerName is the peer's entity name (known once the session is ready).
func (c *Connection) PeerName() EntityName {
	c.sh.mu.Lock()
	defer c.sh.mu.Unlock()
	return c.sh.peerName
}

// PeerAddrs are the addresses the peer identified itself with.
func (c *Connection) PeerAddrs() msgr2.AddrVec {
	c.sh.mu.Lock()
	defer c.sh.mu.Unlock()
	return append(msgr2.AddrVec(nil), c.sh.peerAddrs...)
}

// Target is the address an outgoing connection dials ("" for accepted ones).
func (c *Connection) Target() string { return c.target }

// Stats returns the connection's counters.
func (c *Connection) Stats() ConnStats {
	return ConnStats{
		MsgsSent: c.stats.msgsSent.Load(), MsgsRecv: c.stats.msgsRecv.Load(),
		BytesSent: c.stats.bytesSent.Load(), BytesRecv: c.stats.bytesRecv.Load(),
		Reconnects: c.stats.reconnects.Load(), Faults: c.stats.faults.Load(),
		DupsDropped: c.stats.dups.Load(), KeepalivesSent: c.stats.kaSent.Load(),
		KeepaliveAcks: c.stats.kaAcks.Load(),
	}
}

// String is the peer's address, which is how a connection prints in logs:
// the address Connect dialled, else the remote address of an accepted
// one's socket.
func (c *Connection) String() string {
	if c.target != "" {
		return c.target
	}
	if a := c.peerAddrStr.Load(); a != nil {
		return *a
	}
	return "unattached"
}
