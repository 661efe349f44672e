package msgr

// This file is stopping a messenger: Shutdown, which waits for the dial
// goroutines (dialGroup) and the cleanups, and Wait.

import (
	"sync"

	"github.com/asyncmsgr/asyncmsgr/internal/lockorder"
)

// dialGroup counts dial goroutines and refuses new ones after close.
type dialGroup struct {
	mu     lockorder.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (d *dialGroup) tryAdd() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.wg.Add(1)
	return true
}

func (d *dialGroup) done() { d.wg.Done() }

func (d *dialGroup) closeAndWait() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.wg.Wait()
}

// Shutdown closes every connection and the listener, stops the dispatch
// queue and the stack, and waits for its goroutines. It is idempotent. It
// must not be called from a dispatcher callback.
func (m *Messenger) Shutdown() error {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		<-m.done
		return nil
	}
	m.stopped = true
	started := m.started
	l, w := m.listener, m.lworker
	m.mu.Unlock()

	if l != nil {
		if started {
			center := w.Center()
			if err := center.Submit(func() {
				if m.acceptor != nil {
					m.acceptor.Stop()
				}
				_ = l.Abort()
			}); err != nil {
				_ = l.Abort()
			}
		} else {
			_ = l.Abort()
		}
	}
	m.MarkDownAll()
	m.dialing.closeAndWait()
	m.MarkDownAll() // connections whose dial just finished
	m.cleanups.Wait()
	m.dq.shutdown()
	m.stopAdminSocket()
	err := m.stack.Stop()
	close(m.done)
	return err
}

// Wait blocks until Shutdown has finished.
func (m *Messenger) Wait() { <-m.done }
