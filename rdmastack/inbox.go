package rdmastack

import (
	"sync"
	"sync/atomic"

	"github.com/asyncmsgr/asyncmsgr/dispatcher"
)

// inbox is what the dispatcher's poller hands a connection: receive
// completions, TX events and a QP fault. The poller appends under inbox.mu
// alone and never waits for conn.mu; whoever holds conn.mu (a reader, a
// sender, the poller when conn.mu was free) takes the inbox over before
// letting go of conn.mu (conn.unlock), as a Linux socket's owner processes
// its backlog in release_sock. A sender holds inbox.mu only for that
// hand-over, never while it copies.
type inbox struct {
	mu      sync.Mutex
	rx      []dispatcher.RxItem // receive completions in completion order
	txDone  bool                // send WRs completed
	txSpace bool                // TX chunks came back after WaitTxSpace
	err     error               // the first QP fault
	closed  bool                // the socket closed: RX chunks go straight back
	rets    []uint32            // (poller) chunks returned on a closed socket
	pending atomic.Bool         // something is waiting to be taken over
}

// OnRecv hands received chunks to the inbox (the goroutine polling the
// socket's CQs: the dispatcher's, or its worker's centre).
func (c *conn) OnRecv(items []dispatcher.RxItem) {
	q := &c.in
	q.mu.Lock()
	if q.closed {
		for _, it := range items {
			q.rets = append(q.rets, it.Chunk)
		}
		c.h.ReturnRX(q.rets...)
		q.rets = q.rets[:0]
		q.mu.Unlock()
		return
	}
	q.rx = append(q.rx, items...)
	for i := range items {
		if !items[i].HasImm && items[i].Len == 0 {
			c.finSeen.Store(true) // the peer's FIN arrived (maybe not read yet)
		}
	}
	q.pending.Store(true)
	q.mu.Unlock()
	if c.wk != nil {
		// Worker mode, on the centre: the read handler runs right after
		// the poll and takes the inbox over (workerPoller.fire).
		c.wk.poller.queue(c)
		return
	}
	c.kick()
}

// OnTxComplete tells the socket that send WRs completed: what merging
// deferred gets posted and a blocked sender is woken (dispatcher goroutine).
func (c *conn) OnTxComplete(int) {
	c.in.mu.Lock()
	c.in.txDone = true
	c.in.pending.Store(true)
	c.in.mu.Unlock()
	c.kick()
}

// OnTxSpace wakes a sender that found the TX pool empty (dispatcher
// goroutine).
func (c *conn) OnTxSpace() {
	c.in.mu.Lock()
	c.in.txSpace = true
	c.in.pending.Store(true)
	c.in.mu.Unlock()
	c.kick()
}

// OnFault records a QP error (dispatcher goroutine).
func (c *conn) OnFault(err error) {
	c.in.mu.Lock()
	if c.in.err == nil {
		c.in.err = err
	}
	c.in.pending.Store(true)
	c.in.mu.Unlock()
	c.kick()
}

// kick takes the inbox over now if nobody holds conn.mu; otherwise the
// holder does when it lets go. It never blocks.
func (c *conn) kick() {
	if c.mu.TryLock() {
		c.unlock()
	}
}

// lock takes conn.mu and what the inbox holds, so the holder starts from
// every completion handed over so far.
func (c *conn) lock() {
	c.mu.Lock()
	if c.in.pending.Load() {
		c.drainLocked()
	}
}

// unlock releases conn.mu after taking the inbox over and bringing the
// eventfd in step with readiness: readiness is synced here, once, rather
// than when the inbox is taken over, so a Read that takes received bytes
// over and copies them all out leaves the eventfd untouched (no write and
// read back per message; TestWorkerModeRunToCompletion). An inbox filled
// after the last look, while the lock was still held, is seen by the
// re-check after Unlock: its kick's TryLock may have failed on us.
func (c *conn) unlock() {
	for {
		if c.in.pending.Load() {
			c.drainLocked()
		}
		c.syncReadyLocked()
		c.mu.Unlock()
		if !c.in.pending.Load() || !c.mu.TryLock() {
			return
		}
	}
}

// drainLocked takes over what the poller handed the inbox: the receive
// completions join rxq (in order), then TX events and a fault are applied.
// It leaves the eventfd to unlock.
func (c *conn) drainLocked() {
	q := &c.in
	q.mu.Lock()
	q.pending.Store(false)
	k := len(c.rxq)
	if c.state != stClosed {
		c.rxq = append(c.rxq, q.rx...)
	} else {
		for _, it := range q.rx {
			c.rets = append(c.rets, it.Chunk)
		}
	}
	q.rx = q.rx[:0]
	txDone, txSpace, err := q.txDone, q.txSpace, q.err
	q.txDone, q.txSpace, q.err = false, false, nil
	q.mu.Unlock()
	if len(c.rets) > 0 {
		c.h.ReturnRX(c.rets...)
		c.rets = c.rets[:0]
	}
	if c.state == stClosed {
		return
	}
	if err != nil {
		c.faultLocked(c.opErr("rdma", err))
	}
	if txDone {
		c.txCompletedLocked()
	}
	if txSpace && c.txBlocked {
		c.txReady = true
	}
	if k < len(c.rxq) {
		c.receivedLocked(k)
	}
	// Readiness is synced by unlock, after the holder's own work.
}

// closeInboxLocked makes the poller return RX chunks itself from now on and
// gives back what the inbox held (Close).
func (c *conn) closeInboxLocked() {
	q := &c.in
	q.mu.Lock()
	q.closed = true
	for _, it := range q.rx {
		c.rets = append(c.rets, it.Chunk)
	}
	q.rx = nil
	q.pending.Store(false)
	q.mu.Unlock()
}
