package rdmastack

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// finGrace is how long a TCP side-channel EOF waits for the peer's FIN
// (which travels over RDMA) before faulting the connection.
const finGrace = 200 * time.Millisecond

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
	c.lock()
	c.qpOK = true
	c.setConnectedLocked()
	c.unlock()
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
		c.st.cfg.Log().Debug("rdmastack: handshake failed", "peer", c.raddr, "err", err)
		c.lock()
		c.faultLocked(c.opErr("handshake", errors.Join(err, net.ErrClosed)))
		c.unlock()
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
	c.lock()
	c.qpOK = true
	c.unlock()
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
	c.lock()
	c.setConnectedLocked()
	c.unlock()
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
				c.lock()
				c.faultLocked(c.opErr("read", errors.Join(errWriteMismatch(0, "the peer sent an RDMA WRITE extension record"), net.ErrClosed)))
				c.unlock()
			}
			continue // a stray meta after the handshake: ignore
		}
		if c.closed.Load() {
			return
		}
		if !c.finSeen.Load() {
			time.Sleep(finGrace)
		}
		c.lock()
		if !c.finSeen.Load() || err == nil || !errors.Is(err, io.EOF) {
			if err == nil {
				err = io.EOF
			}
			c.faultLocked(c.opErr("read", fmt.Errorf("rdmastack: TCP side channel closed: %w", errors.Join(err, net.ErrClosed))))
		}
		c.unlock()
		return
	}
}
