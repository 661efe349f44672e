package msgr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

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

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
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
type Connection struct {
	msgr     *Messenger
	outgoing bool
	target   string // dial address (outgoing)

	stats connStats

	mu          sync.Mutex
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
	kicked      bool // a write kick is queued on the centre kickedOn
	kickedOn    *netstack.EventCenter
	kickFn      func()
	dispatching bool
	err         error
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
	outQ                       outQueue
	resend                     []*Message // requeued sent messages, before outQ
	sent                       []*Message // written, not yet acked (lossless)
	keepalive                  bool
	lastKeepaliveAck           time.Time

	// read side (owner goroutine)
	rbuf          []byte
	rstart, rend  int
	havePre       bool
	donateRBuf    bool   // the frame being handled sits in a one-off buffer
	ownFrame      bool   // rbuf is a buffer of exactly the current frame
	bigFrames     bool   // the last frame was big: read with a small prefetch
	normRBuf      []byte // the normal read buffer while ownFrame
	rbufDonated   bool   // a message took that buffer
	pre           msgr2.Preamble
	readSinceTick bool
	idleFor       time.Duration

	// write side (owner goroutine). The pending output is wbuf, then wext
	// (a big message's data segment, sent by reference), then
	// wtail[:wtailN] (that frame's epilogue); wpos counts bytes of it sent.
	wbuf           []byte
	wext           []byte
	wtail          [msgr2.EpilogueLen]byte
	wtailN         int
	wpos           int
	iov            [][]byte
	wroteSinceTick bool // a message or KEEPALIVE2 was sent (acks do not count)
	quietFor       time.Duration

	tick     time.Duration
	handler  netstack.FileHandler
	cbuf     []byte   // control frame payload scratch
	post     []dqItem // deliveries to run after unlocking
	spare    []dqItem
	closedCh chan struct{}
}

func newConnection(m *Messenger, outgoing bool, w netstack.Worker) *Connection {
	c := &Connection{msgr: m, outgoing: outgoing, worker: w, center: w.Center(), fd: -1,
		iov: make([][]byte, 1), closedCh: make(chan struct{})}
	c.tick = m.tickPeriod()
	return c
}

// ---------------------------------------------------------------- public API

// SendMessage queues m on this connection (highest priority first, FIFO
// within a priority). It never blocks. On a closed connection the message is
// dropped and the connection's error returned.
func (c *Connection) SendMessage(m *Message) error {
	c.mu.Lock()
	if c.state == stClosed {
		err := c.err
		c.mu.Unlock()
		if err == nil {
			err = ErrMarkedDown
		}
		return err
	}
	c.outQ.push(m)
	if c.canWriteDirectLocked() {
		c.writeDirectLocked()
	} else {
		c.kickLocked()
	}
	c.mu.Unlock()
	return nil
}

// canWriteDirectLocked reports whether the calling goroutine may write the
// queue to the socket itself (Ceph lets the sending thread write when the
// connection is idle): the session is ready, its socket allows sends from
// any goroutine, nothing is waiting to be flushed or for writability, and
// the centre is not delivering on this connection (it writes right after,
// batching replies and acks).
func (c *Connection) canWriteDirectLocked() bool {
	return c.state == stReady && c.sockDirect && c.sock != nil && !c.dispatching &&
		!c.wantWrite && c.wpos >= c.wlenLocked() && c.directErr == nil
}

// writeDirectLocked writes queued frames from the calling goroutine (any
// goroutine; c.mu held). It never touches the event centre: when the socket
// would block or fails, the rest is left in the write buffer and the centre
// is kicked to finish (registering writability, or faulting).
func (c *Connection) writeDirectLocked() {
	c.direct = true
	c.writeReadyLocked()
	c.direct = false
	if c.directBlock {
		c.directBlock = false
		c.kickLocked()
	}
}

// kickLocked makes the owner goroutine write if the session can.
func (c *Connection) kickLocked() {
	switch c.state {
	case stReady:
		if c.kicked || c.dispatching {
			return // the centre will look at the queue anyway
		}
		c.kicked = true
		c.kickedOn = c.center
		if c.kickFn == nil {
			c.kickFn = c.writeKick
		}
		if err := c.center.DispatchExternal(c.kickFn); err != nil {
			c.kicked = false
		}
	case stStandby:
		if c.outgoing && !c.policy.Server {
			// lossless client idle in standby: reconnect now that there is work
			g := c.gen
			if err := c.center.DispatchExternal(func() {
				c.mu.Lock()
				if c.gen == g && c.state == stStandby {
					c.startConnectLocked()
				}
				c.mu.Unlock()
			}); err != nil {
				return
			}
		}
	}
}

// writeKick runs on the centre the kick was queued to (kickedOn).
func (c *Connection) writeKick() {
	c.mu.Lock()
	c.kicked = false
	if err := c.directErr; err != nil {
		c.directErr = nil
		if c.center == c.kickedOn && c.sock != nil {
			c.faultLocked(fmt.Errorf("msgr: send in state %s: %w", c.state, err))
		}
	}
	if c.center == c.kickedOn && c.state == stReady {
		c.writeReadyLocked()
	} else if c.state == stReady {
		// The session moved to another socket (maybe another centre) since
		// this kick was queued: kick again where it lives now.
		c.kickLocked()
	}
	c.unlockAndDeliver()
}

// SendKeepalive queues a KEEPALIVE2 frame.
func (c *Connection) SendKeepalive() {
	c.mu.Lock()
	c.keepalive = true
	c.kickLocked()
	c.mu.Unlock()
}

// MarkDown closes the connection and discards its queues; no reset is
// reported for it.
func (c *Connection) MarkDown() { c.markDown(ErrMarkedDown) }

// Closed is closed once the connection is closed for good.
func (c *Connection) Closed() <-chan struct{} { return c.closedCh }

// Err is the error that closed or last faulted the connection (nil while
// healthy and never faulted).
func (c *Connection) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// IsConnected reports whether the session is ready to carry messages now.
func (c *Connection) IsConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stReady
}

// IsLossy reports the connection's current policy.
func (c *Connection) IsLossy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.policy.Lossy
}

// Outgoing reports whether this side initiated the connection.
func (c *Connection) Outgoing() bool { return c.outgoing }

// PeerName is the peer's entity name (known once the session is ready).
func (c *Connection) PeerName() EntityName {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerName
}

// PeerAddrs are the addresses the peer identified itself with.
func (c *Connection) PeerAddrs() msgr2.AddrVec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(msgr2.AddrVec(nil), c.peerAddrs...)
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

// FaultForTest cuts the connection's socket underneath it (a shutdown of the
// sending side, so the peer sees EOF and closes too) and lets both sides
// discover the fault through their normal paths. For tests only.
func (c *Connection) FaultForTest() {
	c.mu.Lock()
	sock, g, center := c.sock, c.gen, c.center
	c.mu.Unlock()
	if sock == nil {
		return
	}
	_ = center.DispatchExternal(func() {
		c.mu.Lock()
		if c.gen == g && c.sock != nil {
			_ = c.sock.Shutdown()
		}
		c.mu.Unlock()
	})
}

func (c *Connection) String() string {
	if c.outgoing {
		return "conn(->" + c.target + ")"
	}
	return fmt.Sprintf("conn(<-%p)", c)
}

// ------------------------------------------------------------ socket attach

// startConnectLocked dials the target on a helper goroutine; the socket is
// handed back to the owner centre.
func (c *Connection) startConnectLocked() {
	c.state = stConnecting
	c.gen++
	c.ackArmed = false
	g := c.gen
	w, center, target := c.worker, c.center, c.target
	opts := c.msgr.sockOpts()
	m := c.msgr
	if !m.dialing.tryAdd() {
		c.closeLocked(ErrMarkedDown, false)
		return
	}
	if t := m.cfg.ConnectionReadyTimeout; t > 0 {
		center.CreateTimeEvent(t, func() {
			c.mu.Lock()
			if c.gen == g && c.state == stConnecting {
				c.faultLocked(&timeoutError{fmt.Sprintf("msgr: connect %s did not complete within %v", target, t)})
			}
			c.unlockAndDeliver()
		})
	}
	go func() {
		defer m.dialing.done()
		sock, err := w.Connect(target, opts)
		if err := center.DispatchExternal(func() { c.onDialed(g, sock, err) }); err != nil && sock != nil {
			_ = sock.Close()
		}
	}()
}

func (c *Connection) onDialed(g uint64, sock netstack.ConnectedSocket, err error) {
	c.mu.Lock()
	if c.gen != g || c.state != stConnecting {
		c.mu.Unlock()
		if sock != nil {
			_ = sock.Close()
		}
		return
	}
	if err != nil {
		c.faultLocked(fmt.Errorf("msgr: connect %s: %w", c.target, err))
	} else {
		c.attachLocked(sock)
	}
	c.unlockAndDeliver()
}

// attachLocked starts the msgr2 handshake on a fresh socket (owner goroutine).
func (c *Connection) attachLocked(sock netstack.ConnectedSocket) {
	c.gen++
	c.ackArmed = false
	g := c.gen
	c.sock = sock
	c.sockDirect = netstack.SendsFromAnyGoroutine(sock)
	c.directErr = nil
	c.fd = sock.FD()
	c.wantWrite = false
	c.resetReadLocked()
	c.resetWriteLocked()
	c.idleFor, c.quietFor = 0, 0
	c.readSinceTick, c.wroteSinceTick = false, false
	if c.rbuf == nil {
		c.rbuf = make([]byte, defaultRBuf)
	}
	c.handler = c.handlerFor(g)
	if err := c.center.CreateFileEvent(c.fd, netstack.EventReadable, c.handler); err != nil {
		c.faultLocked(fmt.Errorf("msgr: register socket: %w", err))
		return
	}
	if t := c.msgr.cfg.ConnectionReadyTimeout; t > 0 {
		c.center.CreateTimeEvent(t, func() { c.onReadyTimeout(g, t) })
	}
	if c.tick > 0 {
		c.center.CreateTimeEvent(c.tick, func() { c.onTick(g) })
	}
	c.state = stBanner
	if c.outgoing {
		c.globalSeq = c.msgr.nextGlobalSeq(0)
	}
	c.wbuf = msgr2.AppendBanner(c.wbuf, msgr2.FeatureRevision1, 0)
	c.flushLocked(false)
}

func (c *Connection) handlerFor(g uint64) netstack.FileHandler {
	return func(fd int, mask netstack.EventMask) {
		c.mu.Lock()
		if c.gen != g || c.sock == nil || fd != c.fd {
			c.mu.Unlock()
			return
		}
		if mask&netstack.EventWritable != 0 || (mask&netstack.EventReadable != 0 && c.wantWrite) {
			c.flushLocked(c.moreQueuedLocked())
		}
		if mask&netstack.EventReadable != 0 && c.gen == g && c.sock != nil {
			c.readLocked()
		}
		if c.gen == g && c.state == stReady && len(c.post) == 0 {
			// (with deliveries pending, the write happens after them so that
			// replies carry the ack instead of a separate ACK frame)
			c.writeReadyLocked()
		}
		c.unlockAndDeliver()
	}
}

// closeSocketLocked drops the socket (owner goroutine); stale events and
// timers see a new generation and do nothing.
func (c *Connection) closeSocketLocked() {
	c.gen++
	c.ackArmed = false
	if c.sock != nil {
		_ = c.center.DeleteFileEvent(c.fd, netstack.EventReadable|netstack.EventWritable)
		_ = c.sock.Close()
		c.sock = nil
	}
	c.fd = -1
	c.wantWrite = false
	c.sockDirect, c.directErr = false, nil
	c.resetReadLocked()
	if cap(c.rbuf) > maxKeepRBuf {
		c.rbuf = nil
	}
	c.resetWriteLocked()
}

// ------------------------------------------------------------------- timers

func (c *Connection) onReadyTimeout(g uint64, t time.Duration) {
	c.mu.Lock()
	if c.gen == g && c.state.handshaking() {
		c.faultLocked(&timeoutError{fmt.Sprintf("msgr: handshake not finished within %v (stuck in state %s)", t, c.state)})
	}
	c.unlockAndDeliver()
}

func (c *Connection) onTick(g uint64) {
	c.mu.Lock()
	if c.gen != g || c.sock == nil {
		c.mu.Unlock()
		return
	}
	cfg := c.msgr.cfg
	if !c.readSinceTick {
		// readiness is a hint: poll once before calling the link idle
		c.readLocked()
		if c.gen != g || c.sock == nil {
			c.unlockAndDeliver()
			return
		}
	}
	if c.readSinceTick {
		c.idleFor = 0
	} else {
		c.idleFor += c.tick
	}
	c.readSinceTick = false
	if cfg.ConnectionIdleTimeout > 0 && c.idleFor >= cfg.ConnectionIdleTimeout {
		msg := fmt.Sprintf("msgr: no incoming bytes for %v (idle timeout %v) in state %s", c.idleFor, cfg.ConnectionIdleTimeout, c.state)
		if c.havePre {
			msg += fmt.Sprintf(": half a frame pending (%s frame, have %d of %d bytes after its preamble)",
				c.pre.Tag, c.rend-c.rstart-msgr2.PreambleLen, c.pre.RestLen())
		} else if n := c.rend - c.rstart; n > 0 {
			msg += fmt.Sprintf(": incomplete preamble pending (%d of %d bytes)", n, msgr2.PreambleLen)
		}
		c.faultLocked(&timeoutError{msg})
		c.unlockAndDeliver()
		return
	}
	if c.state == stReady && cfg.KeepaliveInterval > 0 {
		if c.wroteSinceTick {
			c.quietFor = 0
		} else {
			c.quietFor += c.tick
		}
		c.wroteSinceTick = false
		if c.quietFor >= cfg.KeepaliveInterval {
			c.quietFor = 0
			c.keepalive = true
			c.writeReadyLocked()
		}
	}
	if c.gen == g {
		c.center.CreateTimeEvent(c.tick, func() { c.onTick(g) })
	}
	c.unlockAndDeliver()
}

// ------------------------------------------------------------------ faults

// faultLocked handles a connection error (owner goroutine): lossy sessions
// and half-open accepted ones close and report; lossless ones keep their
// queue and reconnect (client) or wait for the peer (server).
func (c *Connection) faultLocked(err error) {
	if c.state == stClosed {
		return
	}
	c.err = err
	c.stats.faults.Add(1)
	c.msgr.logf("%v: fault in state %s: %v", c, c.state, err)
	wasConnecting := c.state.handshaking() || c.state == stConnecting
	c.closeSocketLocked()
	if c.policy.Lossy || (!c.outgoing && c.serverCookie == 0) {
		c.closeLocked(err, true)
		return
	}
	c.requeueSentLocked()
	if !c.outgoing || c.policy.Server {
		c.state = stStandby
		return
	}
	if wasConnecting {
		switch {
		case c.backoff == 0:
			c.backoff = c.msgr.cfg.InitialBackoff
		default:
			c.backoff *= 2
		}
		if mb := c.msgr.cfg.MaxBackoff; mb > 0 && c.backoff > mb {
			c.backoff = mb
		}
		if c.serverCookie != 0 {
			c.connectSeq++
		}
	} else {
		c.backoff = 0
		c.connectSeq++
	}
	if c.policy.Standby && c.outQ.len() == 0 && len(c.resend) == 0 && !c.keepalive {
		c.state = stStandby
		return
	}
	c.scheduleReconnectLocked(c.backoff)
}

func (c *Connection) scheduleReconnectLocked(after time.Duration) {
	c.state = stBackoff
	c.stats.reconnects.Add(1)
	g := c.gen
	if after <= 0 {
		c.startConnectLocked()
		return
	}
	c.center.CreateTimeEvent(after, func() {
		c.mu.Lock()
		if c.gen == g && c.state == stBackoff {
			c.startConnectLocked()
		}
		c.unlockAndDeliver()
	})
}

// closeLocked closes the connection for good (owner goroutine or socket
// already gone). report queues MsHandleReset.
func (c *Connection) closeLocked(err error, report bool) {
	if c.state == stClosed {
		return
	}
	if c.sock != nil {
		c.closeSocketLocked()
	}
	c.gen++
	c.ackArmed = false
	c.state = stClosed
	if c.err == nil {
		c.err = err
	}
	c.discardQueuesLocked()
	close(c.closedCh)
	c.msgr.unregister(c)
	if report {
		c.post = append(c.post, dqItem{kind: dqReset, c: c, err: err})
	}
}

func (c *Connection) discardQueuesLocked() {
	c.outQ.clear()
	clear(c.resend)
	c.resend = c.resend[:0]
	clear(c.sent)
	c.sent = c.sent[:0]
}

// markDown closes the connection from any goroutine.
func (c *Connection) markDown(err error) {
	c.mu.Lock()
	if c.state == stClosed {
		c.mu.Unlock()
		return
	}
	sock, fd, center := c.sock, c.fd, c.center
	c.sock = nil
	c.closeLocked(err, false)
	c.mu.Unlock()
	if sock != nil {
		m := c.msgr
		m.cleanups.Add(1)
		if derr := center.DispatchExternal(func() {
			defer m.cleanups.Done()
			_ = center.DeleteFileEvent(fd, netstack.EventReadable|netstack.EventWritable)
			_ = sock.Close()
		}); derr != nil {
			_ = sock.Close()
			m.cleanups.Done()
		}
	}
}

// requeueSentLocked puts written-but-unacked messages back in front of the
// queue with their sequence numbers (Ceph's requeue_sent).
func (c *Connection) requeueSentLocked() {
	if len(c.sent) == 0 {
		return
	}
	c.outSeq -= uint64(len(c.sent))
	c.resend = append(c.sent, c.resend...)
	c.sent = nil
}

// discardRequeuedUpToLocked drops requeued messages the peer already has.
func (c *Connection) discardRequeuedUpToLocked(seq uint64) {
	i := 0
	for i < len(c.resend) && c.resend[i].Seq != 0 && c.resend[i].Seq <= seq {
		c.resend[i] = nil
		i++
		c.outSeq++
	}
	c.resend = c.resend[i:]
	if len(c.resend) == 0 {
		c.resend = nil
	}
}

// -------------------------------------------------------------- delivering

// unlockAndDeliver releases c.mu and runs the queued deliveries (fast
// dispatch on this goroutine, the rest through the DispatchQueue); messages
// queued by dispatchers meanwhile are written afterwards.
func (c *Connection) unlockAndDeliver() {
	center := c.center // the caller runs on this centre's goroutine
	for len(c.post) > 0 {
		items := c.post
		c.post = c.spare[:0]
		c.dispatching = true
		c.mu.Unlock()
		m := c.msgr
		for i := range items {
			it := &items[i]
			if it.kind == dqMessage && m.fastDispatch(it.m) {
				// handled on this goroutine
			} else {
				m.dq.enqueue(*it)
			}
			items[i] = dqItem{}
		}
		c.mu.Lock()
		c.spare = items[:0]
		c.dispatching = false
		if c.state == stReady && (c.outQ.len() > 0 || len(c.resend) > 0 || c.ackLeft > 0 || c.keepalive) && c.sock != nil {
			if c.center == center {
				c.writeReadyLocked()
			} else {
				c.kickLocked() // adopted by another centre meanwhile
			}
		}
	}
	c.mu.Unlock()
}

// --------------------------------------------------------------- addresses

func addrPortOf(a net.Addr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

var errShortPayload = errors.New("msgr: short auth payload")
