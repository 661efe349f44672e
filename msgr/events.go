package msgr

import (
	"errors"
	"syscall"
)

// Optional Dispatcher interfaces: a Dispatcher that also implements one of
// these hears of the event; the others are not asked. Like every
// Dispatcher method they run on the DispatchQueue goroutine, with no
// messenger lock held.

// RefusedHandler is Ceph's ms_handle_refused.
type RefusedHandler interface {
	// MsHandleRefused reports that connecting to c's peer was refused
	// (nothing listens at its address: ECONNREFUSED). A lossless
	// connection keeps its queue and retries after a back-off
	// (ms_initial_backoff doubling to ms_max_backoff), reporting each
	// refusal; MarkDown stops it. A lossy one is then closed and
	// MsHandleReset reported. It returns true when handled: dispatchers
	// after it are not asked.
	MsHandleRefused(c *Connection) bool
}

// FaultHandler hears of the faults of lossless sessions, which Ceph's
// Dispatcher is not told of: the session keeps its queue and reconnects
// (client) or waits for the peer (server), so no MsHandleReset follows.
type FaultHandler interface {
	// MsHandleFault reports that c lost its socket or failed to connect;
	// err says why (a refusal is reported by MsHandleRefused instead). An
	// error matching ErrSessionStalled means the peer keeps dropping the
	// session before acknowledging the same message (for instance one
	// larger than its ms_max_frame_segment): reconnects back off and the
	// application may MarkDown the connection.
	MsHandleFault(c *Connection, err error)
}

// ErrSessionStalled is matched by the fault error of a lossless client
// session whose peer dropped it again before acknowledging the message it
// was stuck on; such reconnects back off as failed connects do.
var ErrSessionStalled = errors.New("msgr: session stalled")

const (
	dqRefused = dqRemoteReset + 1 + iota
	dqFault
	dqDone // Message.OnDone (sendnotify.go)
)

// deliverOptional hands the events of the optional interfaces to the
// dispatchers that implement them.
func (d *DispatchQueue) deliverOptional(it *dqItem, ds []Dispatcher) {
	switch it.kind {
	case dqRefused:
		for _, x := range ds {
			if h, ok := x.(RefusedHandler); ok && h.MsHandleRefused(it.c) {
				return
			}
		}
	case dqFault:
		for _, x := range ds {
			if h, ok := x.(FaultHandler); ok {
				h.MsHandleFault(it.c, it.err)
			}
		}
	case dqDone:
		it.m.OnDone(it.m, it.err)
	}
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
