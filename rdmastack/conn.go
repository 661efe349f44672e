package rdmastack

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/dispatcher"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// Merge-mode parameters (seed 003): the first target of WRs per post, and
// its ceiling.
const (
	mergeStartTarget = 3
	mergeMaxTarget   = 10
	// finGrace is how long a TCP side-channel EOF waits for the peer's FIN
	// (which travels over RDMA) before faulting the connection.
	finGrace = 200 * time.Millisecond
	// closeLinger bounds how long a closed socket's QP waits for its
	// inflight sends before it is moved to ERR.
	closeLinger = 2 * time.Second
)

type connState int

const (
	stHandshake connState = iota
	stConnected
	stClosed
)

// pendWR is a filled TX chunk not yet posted: a SEND, or (WRITE mode) an
// RDMA_WRITE into the peer's buffer at raddr, the last one of a buffer
// WRITE_WITH_IMM with imm.
type pendWR struct {
	chunk uint32
	n     int
	kind  uint8
	rkey  uint32
	imm   uint32
	raddr uint64
}

// pendWR kinds.
const (
	pkSend uint8 = iota
	pkWrite
	pkWriteImm
)

// conn is a connected RDMA socket. Every exported method takes mu; the
// dispatcher's callbacks take it too (lock order: conn.mu, then dispatcher
// and pool locks).
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
	finSeen bool   // the FIN is in rxq (set at completion)
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

	closed   atomic.Bool
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
		h, err := st.d.CreateQP(c)
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
	if la, ok := w.(netstack.LoadAdder); ok {
		c.load = la
		la.AddLoad(1)
	}
	return c, nil
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "rdma", Source: c.laddr, Addr: c.raddr, Err: err}
}

// SetZeroCopy enables zero-copy sends on s (an rdma socket): a buffer given
// to Send that starts a chunk of the stack's TX pool (Stack.TXPool().Get) is
// posted without copying and its chunk goes back to the pool when the send
// completes, so the caller must not touch or Put it after Send accepted it.
// It reports false when s is not an rdma socket.
func SetZeroCopy(s netstack.ConnectedSocket, on bool) bool {
	c, ok := s.(*conn)
	if ok {
		c.mu.Lock()
		c.zeroCopy = on
		c.mu.Unlock()
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

// ------------------------------------------------------------- handshake

// hsError is a side-channel I/O error of the handshake; it keeps the
// underlying error's Timeout() so a dial that timed out says so.
type hsError struct {
	msg string
	err error
}

func (e *hsError) Error() string { return e.msg + ": " + e.err.Error() }
func (e *hsError) Unwrap() error { return e.err }

// Timeout reports whether the side channel timed out.
func (e *hsError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.err, &t) && t.Timeout()
}

func (c *conn) localMeta(peer uint32) Meta {
	return Meta{LID: c.d.LID(), QPN: c.h.QP().Num(), PSN: c.psn, PeerQPN: peer, GID: c.d.GID().GID}
}

// readMeta does one read of the side channel: exactly MetaLen bytes is a
// meta, 0 (EOF) is a disconnect, any other length an error.
func (c *conn) readMeta(deadline time.Time, what string) (Meta, error) {
	var buf [2 * MetaLen]byte
	_ = c.tcp.SetReadDeadline(deadline)
	n, err := c.tcp.Read(buf[:])
	if n == 0 {
		if err == nil || errors.Is(err, io.EOF) {
			return Meta{}, fmt.Errorf("rdmastack: peer disconnected before sending its %s: %w", what, syscall.ECONNRESET)
		}
		return Meta{}, &hsError{msg: "rdmastack: reading " + what, err: err}
	}
	if n != MetaLen {
		if n > MetaLen && c.wr == nil && extMismatchIn(buf[MetaLen:n]) {
			return Meta{}, fmt.Errorf("%w: %w", errWriteMismatch(0, "the peer sent an RDMA WRITE extension record after its "+what), ErrBadMeta)
		}
		return Meta{}, fmt.Errorf("rdmastack: %s read of %d bytes, want %d: %w", what, n, MetaLen, ErrBadMeta)
	}
	m, err := ParseMeta(buf[:n])
	if err != nil {
		return Meta{}, fmt.Errorf("rdmastack: %s: %w", what, err)
	}
	return m, nil
}

// readMetaFull reads exactly MetaLen bytes (WRITE mode: the client's
// extension record follows its ack meta in the same TCP segment).
func (c *conn) readMetaFull(deadline time.Time, what string) (Meta, error) {
	var buf [MetaLen]byte
	_ = c.tcp.SetReadDeadline(deadline)
	n, err := io.ReadFull(c.tcp, buf[:])
	if n == 0 && (errors.Is(err, io.EOF) || err == nil) {
		return Meta{}, fmt.Errorf("rdmastack: peer disconnected before sending its %s: %w", what, syscall.ECONNRESET)
	}
	if err != nil {
		return Meta{}, &hsError{msg: "rdmastack: reading " + what, err: err}
	}
	m, err := ParseMeta(buf[:])
	if err != nil {
		return Meta{}, fmt.Errorf("rdmastack: %s: %w", what, err)
	}
	return m, nil
}

func (c *conn) writeMeta(m Meta, deadline time.Time) error {
	b := m.Marshal()
	_ = c.tcp.SetWriteDeadline(deadline)
	_, err := c.tcp.Write(b[:])
	return err
}

// connectQP moves the QP to RTR and RTS toward the peer's meta.
func (c *conn) connectQP(peer Meta) error {
	cfg := &c.st.cfg
	p := verbs.DefaultConnParams()
	p.Port = c.d.Port()
	p.SGIDIndex = c.d.GID().Index
	p.TrafficClass = cfg.RDMADSCP
	p.SL = cfg.RDMASL
	p.RemoteQPN = peer.QPN
	p.RemotePSN = peer.PSN
	p.LocalPSN = c.psn
	p.RemoteGID = peer.GID
	p.DLID = peer.LID
	qp := c.h.QP()
	if err := qp.ToRTR(p); err != nil {
		return err
	}
	return qp.ToRTS(p)
}

// clientHandshake: send our meta (peer qpn 0), read the server's, connect
// the QP, send our meta again with the peer's qpn (the ACK).
func (c *conn) clientHandshake(deadline time.Time) error {
	if err := c.writeMeta(c.localMeta(0), deadline); err != nil {
		return &hsError{msg: "rdmastack: sending meta", err: err}
	}
	peer, err := c.readMeta(deadline, "server meta")
	if err != nil {
		return err
	}
	if peer.PeerQPN != c.h.QP().Num() {
		return fmt.Errorf("rdmastack: server meta names QP %#x, ours is %#x: %w", peer.PeerQPN, c.h.QP().Num(), ErrBadMeta)
	}
	if err := c.connectQP(peer); err != nil {
		return fmt.Errorf("rdmastack: connecting QP: %w", err)
	}
	c.mu.Lock()
	c.qpOK = true
	c.setConnectedLocked()
	c.mu.Unlock()
	if c.wr != nil {
		// WRITE mode: the ack meta and our extension record in one
		// write, then the server's record.
		ack := c.localMeta(peer.QPN).Marshal()
		if err := c.writeExtWith(ack[:], deadline); err != nil {
			return fmt.Errorf("rdmastack: sending ack meta and RDMA WRITE extension: %w", err)
		}
		if err := c.readExt(deadline); err != nil {
			return err
		}
	} else if err := c.writeMeta(c.localMeta(peer.QPN), deadline); err != nil {
		return fmt.Errorf("rdmastack: sending ack meta: %w", err)
	}
	_ = c.tcp.SetDeadline(time.Time{})
	return nil
}

// serverSide runs the server half of the handshake, then watches the side
// channel. Errors fault the socket (the owner sees them on Read/Send).
func (c *conn) serverSide(deadline time.Time) {
	err := c.serverHandshake(deadline)
	if err != nil {
		if c.closed.Load() {
			return // closed locally during the handshake: not a handshake error
		}
		c.d.C.HandshakeErrors.Add(1)
		slog.Debug("rdmastack: handshake failed", "peer", c.raddr, "err", err)
		c.mu.Lock()
		c.faultLocked(c.opErr("handshake", errors.Join(err, net.ErrClosed)))
		c.mu.Unlock()
		return
	}
	c.watch()
}

func (c *conn) serverHandshake(deadline time.Time) error {
	peer, err := c.readMeta(deadline, "client meta")
	if err != nil {
		return err
	}
	if peer.PeerQPN != 0 {
		return fmt.Errorf("rdmastack: client meta names peer QP %#x, want 0: %w", peer.PeerQPN, ErrBadMeta)
	}
	if err := c.connectQP(peer); err != nil {
		return fmt.Errorf("rdmastack: connecting QP: %w", err)
	}
	c.mu.Lock()
	c.qpOK = true
	c.mu.Unlock()
	if err := c.writeMeta(c.localMeta(peer.QPN), deadline); err != nil {
		return fmt.Errorf("rdmastack: sending meta: %w", err)
	}
	var ack Meta
	if c.wr != nil {
		ack, err = c.readMetaFull(deadline, "client ack meta")
	} else {
		ack, err = c.readMeta(deadline, "client ack meta")
	}
	if err != nil {
		return err
	}
	if ack.QPN != peer.QPN || ack.PeerQPN != c.h.QP().Num() {
		return fmt.Errorf("rdmastack: ack meta %#x->%#x does not match %#x->%#x: %w", ack.QPN, ack.PeerQPN, peer.QPN, c.h.QP().Num(), ErrBadMeta)
	}
	if c.wr != nil {
		if err := c.writeExtWith(nil, deadline); err != nil {
			return fmt.Errorf("rdmastack: sending RDMA WRITE extension: %w", err)
		}
		if err := c.readExt(deadline); err != nil {
			return err
		}
	}
	_ = c.tcp.SetDeadline(time.Time{})
	c.mu.Lock()
	c.setConnectedLocked()
	c.mu.Unlock()
	return nil
}

// setConnectedLocked marks the socket connected and flushes queued sends.
func (c *conn) setConnectedLocked() {
	if c.state != stHandshake {
		return
	}
	c.state = stConnected
	c.flushLocked(true)
	c.syncReadyLocked()
}

// watch blocks on the side channel: EOF or an error there faults the RDMA
// connection (after a grace period for the FIN still in flight).
func (c *conn) watch() {
	var b [MetaLen]byte
	for {
		n, err := c.tcp.Read(b[:])
		if err == nil && n > 0 {
			if c.wr == nil && extMismatchIn(b[:n]) {
				c.mu.Lock()
				c.faultLocked(c.opErr("read", errors.Join(errWriteMismatch(0, "the peer sent an RDMA WRITE extension record"), net.ErrClosed)))
				c.mu.Unlock()
			}
			continue // a stray meta after the handshake: ignore
		}
		if c.closed.Load() {
			return
		}
		c.mu.Lock()
		fin := c.finSeen
		c.mu.Unlock()
		if !fin {
			time.Sleep(finGrace)
		}
		c.mu.Lock()
		if !c.finSeen || err == nil || !errors.Is(err, io.EOF) {
			if err == nil {
				err = io.EOF
			}
			c.faultLocked(c.opErr("read", fmt.Errorf("rdmastack: TCP side channel closed: %w", errors.Join(err, net.ErrClosed))))
		}
		c.mu.Unlock()
		return
	}
}

// ------------------------------------------------------------ dispatcher

// OnRecv queues received chunks (dispatcher goroutine).
func (c *conn) OnRecv(items []dispatcher.RxItem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stClosed {
		for _, it := range items {
			c.rets = append(c.rets, it.Chunk)
		}
		c.h.ReturnRX(c.rets...)
		c.rets = c.rets[:0]
		return
	}
	k := len(c.rxq)
	c.rxq = append(c.rxq, items...)
	for i := range c.rxq[k:] {
		it := &c.rxq[k+i]
		if it.HasImm {
			c.onImmLocked(it)
		} else if it.Len == 0 {
			c.finSeen = true // the peer's FIN arrived (maybe not read yet)
		}
	}
	if len(c.rets) > 0 {
		c.h.ReturnRX(c.rets...)
		c.rets = c.rets[:0]
	}
	if c.state == stHandshake && c.qpOK {
		// The server is connected on the first data received.
		c.setConnectedLocked()
	}
	c.syncReadyLocked()
}

// onImmLocked handles a received item with immediate data (WRITE mode).
// Its RX chunk carries no data and goes back at once. An advertisement frees
// a peer buffer now (the reader skips it); a WRITE stays queued for the
// reader, in sequence. Anything else faults the connection (and is skipped).
func (c *conn) onImmLocked(it *dispatcher.RxItem) {
	c.rets = append(c.rets, it.Chunk)
	it.Chunk = noChunk
	bad := func(err error) {
		it.Imm = 0 // the reader skips it
		c.faultLocked(c.opErr("read", errors.Join(err, net.ErrClosed)))
	}
	if c.wr == nil {
		bad(errWriteMismatch(0, "the peer sends RDMA WRITE / immediate data"))
		return
	}
	switch immKind(it.Imm) {
	case immKindAdv:
		if !c.wr.putPeer(immSlot(it.Imm)) {
			bad(fmt.Errorf("rdmastack: peer advertised buffer %d, which is not ours to use", immSlot(it.Imm)))
			return
		}
		c.d.C.AdvertsRecv.Add(1)
	case immKindWrite:
		if s, n := immSlot(it.Imm), immLen(it.Imm); s >= writeSlots || n == 0 || n > c.wr.slotSize {
			bad(fmt.Errorf("rdmastack: peer wrote %d bytes into buffer %d (we have %d of %d bytes)", n, s, writeSlots, c.wr.slotSize))
		}
	default:
		bad(fmt.Errorf("rdmastack: unknown immediate data %#x", it.Imm))
	}
}

// OnTxComplete posts what merging deferred and wakes a blocked sender.
func (c *conn) OnTxComplete(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stConnected {
		return
	}
	if len(c.pend) > 0 || c.finPending || c.wr != nil && len(c.wr.adPend) > 0 {
		c.flushLocked(false)
	}
	if c.txBlocked {
		c.txReady = true
	}
	c.syncReadyLocked()
}

// OnTxSpace wakes a sender that found the TX pool empty.
func (c *conn) OnTxSpace() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.txBlocked {
		c.txReady = true
		c.syncReadyLocked()
	}
}

// OnFault records a QP error.
func (c *conn) OnFault(err error) {
	c.mu.Lock()
	c.faultLocked(c.opErr("rdma", err))
	c.mu.Unlock()
}

// ------------------------------------------------------------------ data

// Read copies received bytes, strictly in receive-sequence order.
func (c *conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stClosed {
		return 0, c.opErr("read", net.ErrClosed)
	}
	if c.d.Closed() {
		return 0, c.opErr("read", netstack.ErrStackStopped)
	}
	n := 0
read:
	for n < len(p) && len(c.rxq) > c.rxHead && !c.finRecv {
		h := c.rxHead
		if c.rxq[h].Seq != c.rxNext {
			// Out of order: find the next in sequence (never expected
			// with one poller, kept as the contract's guard).
			i := h + 1
			for ; i < len(c.rxq) && c.rxq[i].Seq != c.rxNext; i++ {
			}
			if i == len(c.rxq) {
				break
			}
			c.rxq[h], c.rxq[i] = c.rxq[i], c.rxq[h]
		}
		it := &c.rxq[h]
		switch {
		case it.HasImm && immKind(it.Imm) != immKindWrite:
			// an advertisement, handled at completion: skip it
		case it.HasImm:
			// WRITE mode: the bytes are in our receive buffer; once read
			// it is advertised to the peer again.
			s, ln := immSlot(it.Imm), immLen(it.Imm)
			k := copy(p[n:], c.wr.slot(s)[c.rxOff:ln])
			n += k
			c.rxOff += k
			if c.rxOff < ln {
				break read // the caller's buffer is full
			}
			c.wr.adPend = append(c.wr.adPend, immAdv(s))
		case it.Len == 0:
			c.finRecv = true
		default:
			buf := c.d.RX().Bytes(it.Chunk)
			k := copy(p[n:], buf[c.rxOff:it.Len])
			n += k
			c.rxOff += k
			if c.rxOff < int(it.Len) {
				break read // the caller's buffer is full
			}
		}
		if it.Chunk != noChunk {
			c.rets = append(c.rets, it.Chunk)
		}
		c.rxOff = 0
		c.rxNext++
		c.rxHead++
		if c.rxHead == len(c.rxq) {
			c.rxq, c.rxHead = c.rxq[:0], 0 // reuse the array: no allocation
		}
	}
	if c.rxHead >= 64 && c.rxHead*2 >= len(c.rxq) {
		// a reader that never drains everything: reclaim the read prefix
		k := copy(c.rxq, c.rxq[c.rxHead:])
		c.rxq, c.rxHead = c.rxq[:k], 0
	}
	if len(c.rets) > 0 {
		c.h.ReturnRX(c.rets...)
		c.rets = c.rets[:0]
	}
	if c.finRecv && len(c.rxq) > c.rxHead {
		// bytes after a FIN are not data; give the chunks back
		for _, it := range c.rxq[c.rxHead:] {
			if it.Chunk != noChunk {
				c.rets = append(c.rets, it.Chunk)
			}
		}
		c.rxq, c.rxHead = c.rxq[:0], 0
		c.h.ReturnRX(c.rets...)
		c.rets = c.rets[:0]
	}
	if c.wr != nil && len(c.wr.adPend) > 0 {
		c.postAdsLocked()
	}
	c.syncReadyLocked()
	if n > 0 || len(p) == 0 {
		return n, nil
	}
	if c.finRecv {
		return 0, io.EOF
	}
	if c.err != nil {
		return 0, c.err
	}
	return 0, netstack.ErrWouldBlock
}

// Send copies bufs into TX chunks and posts them (unless more defers the
// flush). With the TX pool empty it accepts what fit and returns
// ErrWouldBlock when nothing did; the FD turns readable when chunks return.
// In WRITE mode a call of more than ms_async_rdma_send_msg_size bytes goes
// by RDMA WRITE into the peer's free advertised buffers (by SEND when none
// is free).
func (c *conn) Send(bufs [][]byte, more bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stClosed {
		return 0, c.opErr("write", net.ErrClosed)
	}
	if c.d.Closed() {
		return 0, c.opErr("write", netstack.ErrStackStopped)
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.shut {
		return 0, c.opErr("write", syscall.EPIPE)
	}
	c.txBlocked, c.txReady = false, false
	tx := c.d.TX()
	cs := tx.ChunkSize()
	total, want := 0, 0
	for _, b := range bufs {
		want += len(b)
	}
	wr := c.wr
	write := wr != nil && wr.peer != nil && want > wr.threshold
	short := false
outer:
	for _, b := range bufs {
		if idx, off, ok := tx.Contains(b); ok && off == 0 && c.zeroCopy {
			// Zero copy: the buffer is a whole TX chunk the caller took
			// from Stack.TXPool; it is posted as is and returns to the
			// pool at its completion.
			if write {
				c.endWriteLocked()
			}
			c.pend = append(c.pend, pendWR{chunk: idx, n: len(b)})
			c.open = false
			total += len(b)
			continue
		}
		for len(b) > 0 {
			if write && wr.cur < 0 {
				if s, ok := wr.takePeer(); ok {
					wr.cur, wr.curOff, wr.wopen = s, 0, false
				} else {
					write = false // no free peer buffer: the rest by SEND
					c.d.C.WriteFallbacks.Add(1)
				}
			}
			if write {
				// RDMA WRITE into the peer's buffer wr.cur.
				slotLen := int(wr.peer[wr.cur].Len)
				if !wr.wopen || c.pend[len(c.pend)-1].n == cs {
					if tx.Get(c.one[:], false) == 0 {
						c.d.WaitTxSpace(c)
						if tx.Get(c.one[:], false) == 0 {
							short = true
							break outer
						}
					}
					ps := &wr.peer[wr.cur]
					c.pend = append(c.pend, pendWR{chunk: c.one[0], kind: pkWrite, raddr: ps.Addr + uint64(wr.curOff), rkey: ps.RKey})
					wr.wopen = true
					c.open = false
				}
				last := &c.pend[len(c.pend)-1]
				k := copy(tx.Bytes(last.chunk)[last.n:min(cs, last.n+slotLen-wr.curOff)], b)
				last.n += k
				wr.curOff += k
				total += k
				b = b[k:]
				if wr.curOff == slotLen {
					c.endWriteLocked()
				}
				continue
			}
			if !c.open || c.pend[len(c.pend)-1].n == cs {
				if tx.Get(c.one[:], false) == 0 {
					c.d.WaitTxSpace(c)
					if tx.Get(c.one[:], false) == 0 {
						short = true
						break outer
					}
				}
				c.pend = append(c.pend, pendWR{chunk: c.one[0]})
				c.open = true
			}
			last := &c.pend[len(c.pend)-1]
			k := copy(tx.Bytes(last.chunk)[last.n:cs], b)
			last.n += k
			total += k
			b = b[k:]
		}
	}
	if wr != nil {
		c.endWriteLocked() // a peer buffer never spans Send calls
	}
	if short {
		if total == 0 {
			c.d.C.TxNoMem.Add(1)
		} else {
			c.d.C.TxPartialMem.Add(1)
		}
		c.txBlocked = true
	}
	if !more || short {
		c.flushLocked(false)
	}
	if short && total == 0 {
		c.syncReadyLocked()
		return 0, netstack.ErrWouldBlock
	}
	c.syncReadyLocked()
	return total, nil
}

// endWriteLocked closes the peer buffer being filled: its last WRITE
// carries the immediate data that tells the peer which buffer holds how
// many bytes (or, when nothing was written, the buffer is free again).
func (c *conn) endWriteLocked() {
	wr := c.wr
	if wr.cur < 0 {
		return
	}
	if wr.curOff == 0 {
		wr.peerBusy[wr.cur] = false
		wr.peerFree = append(wr.peerFree, uint8(wr.cur))
	} else {
		last := &c.pend[len(c.pend)-1]
		last.kind = pkWriteImm
		last.imm = immWrite(wr.cur, wr.curOff)
	}
	wr.cur, wr.curOff, wr.wopen = -1, 0, false
}

// postAdsLocked posts the advertisements of buffers the reader emptied, as
// zero-length SEND_WITH_IMMs (they need no stream order), room permitting.
func (c *conn) postAdsLocked() {
	if c.state != stConnected || c.err != nil {
		return
	}
	ads := c.wr.adPend
	k := min(len(ads), c.d.MaxSendWR()-c.h.Inflight())
	if k <= 0 {
		return
	}
	if cap(c.wrs) < k {
		c.wrs = make([]verbs.WorkRequest, k)
		c.sges = make([]verbs.SGE, k)
	}
	wrs := c.wrs[:k]
	for i := range wrs {
		wrs[i] = verbs.WorkRequest{ID: dispatcher.CtlID(), Opcode: verbs.OpSendWithImm, Flags: verbs.SendSignaled, Imm: ads[i]}
	}
	c.h.AddInflight(k)
	posted, err := c.h.QP().PostSend(wrs)
	c.d.C.Posts.Add(1)
	c.d.C.PostedWRs.Add(uint64(posted))
	c.d.C.AdvertsSent.Add(uint64(posted))
	if posted < k {
		c.h.AddInflight(posted - k)
	}
	c.wr.adPend = append(ads[:0], ads[posted:]...)
	if err != nil {
		c.faultLocked(c.opErr("write", fmt.Errorf("rdmastack: post send: %w", errors.Join(err, net.ErrClosed))))
	}
}

// flushLocked posts pending chunks as one chained post, honouring the send
// queue's room and, unless force, adaptive merging.
func (c *conn) flushLocked(force bool) {
	if c.state != stConnected || c.err != nil {
		return
	}
	if c.wr != nil && len(c.wr.adPend) > 0 {
		c.postAdsLocked()
	}
	cfg := &c.st.cfg
	infl := c.h.Inflight()
	if cfg.RDMASubmitTimeTrigger && !force {
		switch {
		case !c.merge && infl > cfg.RDMACountTrigger:
			c.merge, c.target, c.lastInfl = true, mergeStartTarget, infl
			c.d.C.MergeEnter.Add(1)
		case c.merge && infl == 0:
			c.merge = false
			c.d.C.MergeLeave.Add(1)
		}
		if c.merge && len(c.pend) > 0 && len(c.pend) < c.target && infl > 0 {
			if infl > c.lastInfl && c.target < mergeMaxTarget {
				c.target++ // the queue still grows: merge more
			}
			c.lastInfl = infl
			c.d.C.MergeDeferred.Add(1)
			return // a TX completion will come back here
		}
	}
	room := c.d.MaxSendWR() - infl
	k := min(len(c.pend), room)
	if k > 0 {
		tx := c.d.TX()
		if cap(c.wrs) < k {
			c.wrs = make([]verbs.WorkRequest, k)
			c.sges = make([]verbs.SGE, k)
		}
		wrs, sges := c.wrs[:k], c.sges[:k]
		bytes, wbytes, writes := 0, 0, 0
		for i := 0; i < k; i++ {
			p := &c.pend[i]
			sges[i] = tx.SGE(p.chunk, p.n)
			wrs[i] = verbs.WorkRequest{ID: dispatcher.TXID(p.chunk), Opcode: verbs.OpSend, Flags: verbs.SendSignaled, SG: sges[i : i+1]}
			if p.kind != pkSend {
				wrs[i].Opcode, wrs[i].RemoteAddr, wrs[i].RKey = verbs.OpRDMAWrite, p.raddr, p.rkey
				if p.kind == pkWriteImm {
					wrs[i].Opcode, wrs[i].Imm = verbs.OpRDMAWriteWithImm, p.imm
				}
				writes++
				wbytes += p.n
			}
			bytes += p.n
		}
		c.h.AddInflight(k)
		posted, err := c.h.QP().PostSend(wrs)
		c.d.C.Posts.Add(1)
		c.d.C.PostedWRs.Add(uint64(posted))
		c.d.C.TXBytes.Add(uint64(bytes))
		if writes > 0 {
			c.d.C.WriteWRs.Add(uint64(writes))
			c.d.C.WriteBytes.Add(uint64(wbytes))
		}
		if posted < k {
			c.h.AddInflight(posted - k)
		}
		if posted == len(c.pend) {
			c.open = false
		}
		c.pend = append(c.pend[:0], c.pend[posted:]...)
		if err != nil {
			c.faultLocked(c.opErr("write", fmt.Errorf("rdmastack: post send: %w", errors.Join(err, net.ErrClosed))))
			return
		}
	}
	if len(c.pend) == 0 && c.finPending && !c.finSent && c.h.Inflight() < c.d.MaxSendWR() {
		c.postFinLocked()
	}
}

func (c *conn) postFinLocked() {
	c.finPending = false
	c.finSent = true
	c.h.AddInflight(1)
	wr := [1]verbs.WorkRequest{{ID: dispatcher.CtlID(), Opcode: verbs.OpSend, Flags: verbs.SendSignaled}}
	if n, err := c.h.QP().PostSend(wr[:]); err != nil || n != 1 {
		c.h.AddInflight(-1)
	}
	c.d.C.Posts.Add(1)
	c.d.C.PostedWRs.Add(1)
}

// Shutdown flushes what is queued and sends the FIN (a zero-length SEND).
func (c *conn) Shutdown() error {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	c.mu.Lock()
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
	c.mu.Unlock()
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
