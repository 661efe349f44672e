package rdmastack

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/asyncmsgr/asyncmsgr/dispatcher"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// rdma_cm timeouts Ceph uses.
const (
	cmResolveTimeout = 3000 * time.Millisecond
	cmWatchTick      = 100 * time.Millisecond
)

// cmDevice is what a stack in rdma_cm mode keeps: an id bound to the
// device's IPv4 address, through which it got librdmacm's context of the
// device (every QP made with rdma_create_qp must use PDs and CQs of that
// context).
type cmDevice struct {
	ch  *verbs.CMEventChannel
	id  *verbs.CMID
	ctx *verbs.Context
}

// openCMDevice binds an rdma_cm id to the IPv4 address of the device's GID.
func openCMDevice(name string, port, gidIdx int) (*cmDevice, error) {
	ctx, err := verbs.Open(name)
	if err != nil {
		return nil, err
	}
	g, err := ctx.PickGID(port, gidIdx)
	_ = ctx.Close()
	if err != nil {
		return nil, err
	}
	ip, ok := g.GID.IPv4()
	if !ok {
		return nil, fmt.Errorf("rdma_cm: gid %v of %s has no IPv4 address", g.GID, name)
	}
	cd := &cmDevice{}
	if cd.ch, err = verbs.NewCMEventChannel(); err != nil {
		return nil, err
	}
	if cd.id, err = cd.ch.CreateID(verbs.PSTCP); err != nil {
		cd.close()
		return nil, err
	}
	if err = cd.id.BindAddr(netip.AddrPortFrom(ip, 0)); err != nil {
		cd.close()
		return nil, err
	}
	if cd.ctx = cd.id.Context(); cd.ctx == nil {
		cd.close()
		return nil, fmt.Errorf("rdma_cm: %v is not an RDMA address: %w", ip, verbs.ErrNoDevice)
	}
	return cd, nil
}

func (cd *cmDevice) close() error {
	if cd == nil {
		return nil
	}
	return errors.Join(cd.id.Close(), cd.ch.Close())
}

// cmSide is a connection's rdma_cm state: its id, on its own event channel.
type cmSide struct {
	ch     *verbs.CMEventChannel
	id     *verbs.CMID
	qpGone chan struct{}
	once   sync.Once
	done   chan struct{} // the watcher exited
}

// waitCM waits for the next event on ch until deadline.
func waitCM(ch *verbs.CMEventChannel, deadline time.Time) (*verbs.CMEvent, error) {
	for {
		ev, err := ch.GetEvent()
		if err == nil {
			return ev, nil
		}
		var te interface{ Timeout() bool }
		if !errors.As(err, &te) || !te.Timeout() {
			return nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, &hsError{msg: "rdma_cm: waiting for an event", err: errTimeout{}}
		}
		if _, err := verbs.WaitReadable(ch.FD(), left); err != nil {
			return nil, err
		}
	}
}

type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }
func (errTimeout) Is(t error) bool { return t == syscall.ETIMEDOUT }

// expect waits for event want; a failure event becomes its error.
func expect(ch *verbs.CMEventChannel, want verbs.CMEventType, deadline time.Time) error {
	ev, err := waitCM(ch, deadline)
	if err != nil {
		return err
	}
	defer ev.Ack()
	if ev.Type != want {
		if e := ev.Err(); e != nil {
			return fmt.Errorf("rdma_cm: %s (want %s): %w", ev.Type, want, e)
		}
		return fmt.Errorf("rdma_cm: got %s, want %s", ev.Type, want)
	}
	return nil
}

func (w *Worker) connectCM(addr string, opts netstack.SocketOptions) (netstack.ConnectedSocket, error) {
	deadline := time.Now().Add(w.stack.handshakeTimeout())
	dst, err := netstack.AddrPortOf(netstack.StringAddr(addr))
	if err != nil {
		return nil, err
	}
	var src netip.AddrPort
	if opts.ConnectBindAddr != nil {
		if src, err = netstack.AddrPortOf(opts.ConnectBindAddr); err != nil {
			return nil, err
		}
		src = netip.AddrPortFrom(src.Addr(), 0)
	}
	side := &cmSide{qpGone: make(chan struct{}), done: make(chan struct{})}
	if side.ch, err = verbs.NewCMEventChannel(); err != nil {
		return nil, err
	}
	if side.id, err = side.ch.CreateID(verbs.PSTCP); err != nil {
		side.ch.Close()
		return nil, err
	}
	fail := func(err error) (netstack.ConnectedSocket, error) {
		_ = side.id.Close()
		_ = side.ch.Close()
		return nil, err
	}
	if err := side.id.ResolveAddr(src, dst, cmResolveTimeout); err != nil {
		return fail(err)
	}
	if err := expect(side.ch, verbs.CMAddrResolved, deadline); err != nil {
		return fail(err)
	}
	if err := side.id.ResolveRoute(cmResolveTimeout); err != nil {
		return fail(err)
	}
	if err := expect(side.ch, verbs.CMRouteResolved, deadline); err != nil {
		return fail(err)
	}
	if dev := side.id.Context(); dev == nil || dev.Name() != w.stack.d.Context().Name() {
		return fail(fmt.Errorf("rdma_cm: %v is reached through another device than %s", dst, w.stack.d.Context().Name()))
	}
	la, _ := side.id.LocalAddr()
	c, err := newConnWith(w.stack, w, net.TCPAddrFromAddrPort(la), net.TCPAddrFromAddrPort(dst), func(c *conn) (*dispatcher.QPHandle, error) {
		return w.stack.createQP(w, c, func(a verbs.QPInitAttr) (*verbs.QP, error) { return side.id.CreateQP(w.stack.d.PD(), a) })
	})
	if err != nil {
		return fail(err)
	}
	c.cm = side
	if err := side.id.Connect(verbs.DefaultCMConnParam()); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := expect(side.ch, verbs.CMEstablished, deadline); err != nil {
		_ = c.Close()
		return nil, err
	}
	c.lock()
	c.qpOK = true
	c.setConnectedLocked()
	c.unlock()
	go side.watch(c)
	return c, nil
}

// watch follows the connection's rdma_cm events: ESTABLISHED connects the
// server side, DISCONNECTED faults (after the FIN grace), and once the
// socket is closed it releases the id and channel after the QP is gone.
func (s *cmSide) watch(c *conn) {
	defer close(s.done)
	for !c.closed.Load() {
		ev, err := waitCM(s.ch, time.Now().Add(cmWatchTick))
		if err != nil {
			var te interface{ Timeout() bool }
			if errors.As(err, &te) && te.Timeout() {
				continue
			}
			c.OnFault(fmt.Errorf("rdma_cm: %w", errors.Join(err, net.ErrClosed)))
			break
		}
		typ, everr := ev.Type, ev.Err()
		_ = ev.Ack()
		switch typ {
		case verbs.CMEstablished:
			c.lock()
			c.setConnectedLocked()
			c.unlock()
		case verbs.CMDisconnected:
			if !c.finSeen.Load() {
				time.Sleep(finGrace)
			}
			c.lock()
			if !c.finSeen.Load() {
				c.faultLocked(c.opErr("read", fmt.Errorf("rdma_cm: disconnected: %w", errors.Join(io.EOF, everr, net.ErrClosed))))
			}
			c.unlock()
		case verbs.CMTimewaitExit:
		default:
			if everr != nil {
				c.OnFault(fmt.Errorf("rdma_cm: %s: %w", typ, errors.Join(everr, net.ErrClosed)))
			}
		}
	}
}

// close disconnects, retires the QP and, once it is destroyed, the id and
// the channel (the watcher exits first).
func (s *cmSide) close(c *conn) {
	// rdma_disconnect moves the QP to ERR, which would flush the data and
	// FIN still queued: disconnect only once the dispatcher drained and
	// destroyed the QP (its sends completed, or the linger ran out).
	c.h.RetireThen(closeLinger, func() { s.once.Do(func() { close(s.qpGone) }) })
	go func() {
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
		}
		select {
		case <-s.qpGone:
		case <-time.After(30 * time.Second):
			c.st.cfg.Log().Warn("rdmastack: rdma_cm QP not reaped; leaking its id", "qpn", c.h.QP().Num())
			return
		}
		_ = s.id.Disconnect()
		for {
			ev, err := s.ch.GetEvent()
			if err != nil {
				break
			}
			_ = ev.Ack()
		}
		if err := errors.Join(s.id.Close(), s.ch.Close()); err != nil {
			c.st.cfg.Log().Debug("rdmastack: closing rdma_cm id", "err", err)
		}
	}()
}

// cmServerSocket listens through rdma_cm; its FD is the event channel's.
type cmServerSocket struct {
	mu     sync.Mutex
	ch     *verbs.CMEventChannel
	id     *verbs.CMID
	addr   *net.TCPAddr
	stack  *Stack
	closed bool
}

func (w *Worker) listenCM(addr string, opts netstack.SocketOptions) (netstack.ServerSocket, error) {
	ap, err := netstack.AddrPortOf(netstack.StringAddr(addr))
	if err != nil {
		return nil, err
	}
	s := &cmServerSocket{stack: w.stack}
	if s.ch, err = verbs.NewCMEventChannel(); err != nil {
		return nil, err
	}
	if s.id, err = s.ch.CreateID(verbs.PSTCP); err != nil {
		s.ch.Close()
		return nil, err
	}
	backlog := netstack.ListenBacklog(opts, w.stack.cfg.TCPListenBacklog)
	if err = s.id.BindAddr(ap); err == nil {
		err = s.id.Listen(backlog)
	}
	if err != nil {
		_ = s.id.Close()
		_ = s.ch.Close()
		return nil, err
	}
	la, err := s.id.LocalAddr()
	if err != nil {
		la = ap
	}
	s.addr = net.TCPAddrFromAddrPort(la)
	return s, nil
}

// Accept takes one connect request, creates its QP on the dispatcher's PD,
// moves the id to its own channel and accepts; the socket is connected at
// ESTABLISHED (or the first data).
func (s *cmServerSocket) Accept(opts netstack.SocketOptions, w netstack.Worker) (netstack.ConnectedSocket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, &net.OpError{Op: "accept", Net: "rdma", Addr: s.addr, Err: net.ErrClosed}
	}
	for {
		ev, err := s.ch.GetEvent()
		if err != nil {
			var te interface{ Timeout() bool }
			if errors.As(err, &te) && te.Timeout() {
				return nil, netstack.ErrWouldBlock
			}
			return nil, &net.OpError{Op: "accept", Net: "rdma", Addr: s.addr, Err: err}
		}
		if ev.Type != verbs.CMConnectRequest {
			_ = ev.Ack()
			continue
		}
		id := ev.ID
		_ = ev.Ack() // before the migration, which waits for acknowledgements
		c, err := s.acceptID(id, w)
		if err != nil {
			s.stack.d.C.HandshakeErrors.Add(1)
			s.stack.cfg.Log().Debug("rdmastack: rdma_cm accept", "err", err)
			continue
		}
		return c, nil
	}
}

func (s *cmServerSocket) acceptID(id *verbs.CMID, w netstack.Worker) (*conn, error) {
	side := &cmSide{id: id, qpGone: make(chan struct{}), done: make(chan struct{})}
	var err error
	if side.ch, err = verbs.NewCMEventChannel(); err != nil {
		_ = id.Reject(nil)
		_ = id.Close()
		return nil, err
	}
	if err = id.Migrate(side.ch); err != nil {
		_ = id.Reject(nil)
		_ = id.Close()
		_ = side.ch.Close()
		return nil, err
	}
	d := s.stack.d
	if dev := id.Context(); dev == nil || dev.Name() != d.Context().Name() {
		_ = id.Reject(nil)
		_ = id.Close()
		_ = side.ch.Close()
		return nil, fmt.Errorf("rdma_cm: connect request on another device than %s", d.Context().Name())
	}
	la, _ := id.LocalAddr()
	c, err := newConnWith(s.stack, w, net.TCPAddrFromAddrPort(la), netstack.StringAddr("rdma_cm-peer"), func(c *conn) (*dispatcher.QPHandle, error) {
		return s.stack.createQP(w, c, func(a verbs.QPInitAttr) (*verbs.QP, error) { return id.CreateQP(d.PD(), a) })
	})
	if err != nil {
		_ = id.Reject(nil)
		_ = id.Close()
		_ = side.ch.Close()
		return nil, err
	}
	c.cm = side
	c.lock()
	c.qpOK = true
	c.unlock()
	if err := id.Accept(verbs.DefaultCMConnParam()); err != nil {
		_ = c.Close()
		return nil, err
	}
	go side.watch(c)
	return c, nil
}

// Addr is the bound address.
func (s *cmServerSocket) Addr() net.Addr { return s.addr }

// FD is the listening id's event channel.
func (s *cmServerSocket) FD() int { return s.ch.FD() }

// Abort stops listening; idempotent and nil-safe.
func (s *cmServerSocket) Abort() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for {
		ev, err := s.ch.GetEvent()
		if err != nil {
			break
		}
		if ev.Type == verbs.CMConnectRequest && ev.ID != nil {
			_ = ev.ID.Reject(nil)
			_ = ev.Ack()
			_ = ev.ID.Close()
			continue
		}
		_ = ev.Ack()
	}
	return errors.Join(s.id.Close(), s.ch.Close())
}
