package msgr

// This file is the context-taking API: waiting until a connection is ready,
// sending with back-pressure, connecting and shutting down with a deadline.

import (
	"context"
)

// DefaultSendQueueBytes is the send-queue bound SendMessageContext waits
// under unless WithSendQueueBytes sets another.
const DefaultSendQueueBytes = 64 << 20

// WithSendQueueBytes sets the bound of a connection's send queue (payload
// bytes queued and not yet handed to the socket) under which
// SendMessageContext waits; n <= 0 means DefaultSendQueueBytes.
// SendMessage never waits, whatever the bound.
func WithSendQueueBytes(n int) Option { return func(m *Messenger) { m.sendQBytes = n } }

func (m *Messenger) sendQueueBound() int {
	if m.sendQBytes > 0 {
		return m.sendQBytes
	}
	return DefaultSendQueueBytes
}

// WaitReady blocks until the session is ready to carry messages (as
// IsConnected reports), the connection closes (its error is returned), or
// ctx is done (ctx.Err()). Like grpc's WaitForStateChange it only watches:
// the connection goes on connecting or reconnecting after ctx ends.
func (c *Connection) WaitReady(ctx context.Context) error {
	if c == nil {
		return ErrNilConnection
	}
	return c.waitShared(ctx, func() (bool, <-chan struct{}) {
		if c.sh.ready {
			return true, nil
		}
		if c.sh.readyWait == nil {
			c.sh.readyWait = make(chan struct{})
		}
		return false, c.sh.readyWait
	})
}

// waitShared calls cond with c.sh.mu held until it holds, waiting between
// calls on the channel it returns, and gives up when the connection closes
// (its error) or ctx is done.
func (c *Connection) waitShared(ctx context.Context, cond func() (bool, <-chan struct{})) error {
	for {
		c.sh.mu.Lock()
		if c.sh.closed {
			err := c.closedErrShLocked()
			c.sh.mu.Unlock()
			return err
		}
		ok, wake := cond()
		c.sh.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-wake:
		case <-c.closedCh:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// publishReadyShLocked wakes WaitReady callers (c.sh.mu held).
func (c *Connection) publishReadyShLocked() {
	if c.sh.ready && c.sh.readyWait != nil {
		close(c.sh.readyWait)
		c.sh.readyWait = nil
	}
}

// SendMessageContext is SendMessage with back-pressure: while the
// connection's send queue holds the messenger's bound or more
// (WithSendQueueBytes) it waits for the centre to take messages from it,
// until ctx is done (ctx.Err(), m not queued) or the connection closes
// (its error). A message is queued once the queue is under the bound, so a
// message larger than the bound still goes, alone.
func (c *Connection) SendMessageContext(ctx context.Context, m *Message) error {
	if c == nil {
		return ErrNilConnection
	}
	if err := c.msgr.checkMessage(m); err != nil {
		return err
	}
	bound := c.msgr.sendQueueBound()
	err := c.waitShared(ctx, func() (bool, <-chan struct{}) {
		if c.sh.outQ.bytes < bound {
			return true, nil
		}
		return false, c.sh.outQ.spaceWait(bound)
	})
	if err != nil {
		return err
	}
	return c.SendMessage(m)
}

// ConnectContext is Connect, returning once the session is ready
// (WaitReady). When ctx ends first it returns ctx.Err(), and the
// connection, which Connect would return to other callers too, goes on
// trying: MarkDown(addr) stops it.
func (m *Messenger) ConnectContext(ctx context.Context, addr string) (*Connection, error) {
	return m.ConnectToContext(ctx, 0, addr)
}

// ConnectToContext is ConnectTo, returning once the session is ready, as
// ConnectContext.
func (m *Messenger) ConnectToContext(ctx context.Context, peerType uint8, addr string) (*Connection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := m.ConnectTo(peerType, addr)
	if err != nil {
		return nil, err
	}
	if err := c.WaitReady(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// SendMessageContext is SendMessage with the back-pressure of
// Connection.SendMessageContext; connecting does not wait for the session.
func (m *Messenger) SendMessageContext(ctx context.Context, msg *Message, addr string) error {
	if err := m.checkMessage(msg); err != nil {
		return err
	}
	c, err := m.Connect(addr)
	if err != nil {
		return err
	}
	return c.SendMessageContext(ctx, msg)
}

// ShutdownContext is Shutdown that stops waiting when ctx is done: it then
// returns ctx.Err() while the shutdown goes on in the background (Wait
// waits for it). Like Shutdown it must not be called from a dispatcher
// callback.
func (m *Messenger) ShutdownContext(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- m.Shutdown() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
