package msgr

// This file is the messenger's listening side: Bind, Start (the stack,
// the dispatch queue and accepting) and each accepted socket.

import (
	"errors"
	"fmt"
	"net"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// Bind listens on addr ("host:port"; port 0 picks one; IPv4 or IPv6).
func (m *Messenger) Bind(addr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return ErrShutdown
	}
	if m.listener != nil {
		return errors.New("msgr: already bound")
	}
	w := m.stack.Workers()[0]
	l, err := w.Listen(addr, m.sockOpts())
	if err != nil {
		return fmt.Errorf("msgr: bind %s: %w", addr, err)
	}
	m.listener, m.lworker = l, w
	av := msgr2.AddrVec{{Type: msgr2.AddrTypeMsgr2, Nonce: m.nonce, Addr: addrPortOf(l.Addr())}}
	m.myAddrsV.Store(&av)
	return nil
}

// Addr is the bound address (nil when not bound).
func (m *Messenger) Addr() net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.listener == nil {
		return nil
	}
	return m.listener.Addr()
}

func (m *Messenger) myAddrs() msgr2.AddrVec {
	if p := m.myAddrsV.Load(); p != nil {
		return *p
	}
	return nil
}

// Start starts the stack's workers, the dispatch queue and accepting.
func (m *Messenger) Start() error {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return ErrShutdown
	}
	if m.started {
		m.mu.Unlock()
		return errors.New("msgr: already started")
	}
	m.started = true
	l, w := m.listener, m.lworker
	m.mu.Unlock()
	if err := m.stack.Start(); err != nil {
		return fmt.Errorf("msgr: start stack: %w", err)
	}
	m.dq.start()
	if err := m.startAdminSocket(); err != nil {
		return err
	}
	if l != nil {
		center := w.Center()
		var rerr error
		if err := center.Submit(func() {
			m.acceptor = netstack.NewAcceptor(center, l.FD(), l.Addr().String(), m.cfg.Log(),
				func() error { return m.acceptOne(l) })
			rerr = m.acceptor.Watch()
		}); err != nil {
			return fmt.Errorf("msgr: start accepting: %w", err)
		}
		if rerr != nil {
			return fmt.Errorf("msgr: start accepting: %w", rerr)
		}
	}
	return nil
}

// acceptOne takes one pending connection for m.acceptor, which backs off
// on accept errors (listener's centre goroutine).
func (m *Messenger) acceptOne(l netstack.ServerSocket) error {
	w := m.stack.PickWorker()
	s, err := l.Accept(m.sockOpts(), w)
	if err != nil {
		return err
	}
	c := newConnection(m, false, w)
	if !m.track(c) {
		_ = s.Close()
		return netstack.ErrWouldBlock // shutting down: nothing more this turn
	}
	if err := w.Center().DispatchExternal(func() {
		c.mu.Lock()
		if c.state == stNone {
			c.attachLocked(s)
		} else {
			_ = s.Close()
		}
		c.unlockAndDeliver()
	}); err != nil {
		_ = s.Close()
		c.markDown(ErrShutdown)
	}
	return nil
}
