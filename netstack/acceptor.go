package netstack

import (
	"errors"
	"log/slog"
	"time"
)

const (
	// acceptBatch bounds the accepts of one readiness event, so a flood of
	// connections does not starve the loop's other work (the fd is
	// level-triggered: what is left fires again next turn).
	acceptBatch = 64
	// Accept errors back off as net/http's Server does on temporary errors.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// Acceptor runs a listening socket on an event centre's loop: it calls
// accept while the fd is readable and, when accept fails with anything but
// ErrWouldBlock (EMFILE, ENFILE, ENOBUFS, ...), stops watching the fd and
// retries after a back-off of 5 ms doubling to 1 s, instead of spinning on a
// listener that stays readable. An episode of failures is logged once when
// it begins and once when accepting works again, never per retry.
//
// Every method runs on the centre's loop goroutine (Watch and Stop from
// one of its callbacks, e.g. inside Submit).
type Acceptor struct {
	center *EventCenter
	fd     int
	accept func() error
	log    *slog.Logger
	what   string // names the listener in logs

	watching bool
	stopped  bool
	backoff  time.Duration // 0: not in a failure episode
	timer    TimerID
	failures int // in the current episode
	onReady  FileHandler
	resumeFn func()
}

// NewAcceptor prepares an acceptor for the listening fd on center. accept
// takes one pending connection: it returns nil when it took one,
// ErrWouldBlock when none is pending, and any other error when accepting
// failed (the Acceptor backs off; accept has already dealt with what it
// took). what names the listener in log records. Call Watch to start.
func NewAcceptor(center *EventCenter, fd int, what string, log *slog.Logger, accept func() error) *Acceptor {
	if log == nil {
		log = slog.Default()
	}
	a := &Acceptor{center: center, fd: fd, accept: accept, log: log, what: what}
	a.onReady = func(int, EventMask) { a.drain() }
	a.resumeFn = a.resume
	return a
}

// Watch starts accepting when the fd turns readable. Loop goroutine only.
func (a *Acceptor) Watch() error {
	if a.stopped || a.watching {
		return nil
	}
	if err := a.center.CreateFileEvent(a.fd, EventReadable, a.onReady); err != nil {
		return err
	}
	a.watching = true
	return nil
}

// Stop stops watching and cancels a pending retry; idempotent. It does not
// close the fd. Loop goroutine only.
func (a *Acceptor) Stop() {
	a.stopped = true
	a.unwatch()
	if a.timer != 0 {
		a.center.DeleteTimeEvent(a.timer)
		a.timer = 0
	}
}

// Paused reports whether the acceptor is backing off after a failure. Loop
// goroutine only.
func (a *Acceptor) Paused() bool { return a.backoff != 0 }

func (a *Acceptor) unwatch() {
	if a.watching {
		_ = a.center.DeleteFileEvent(a.fd, EventReadable)
		a.watching = false
	}
}

func (a *Acceptor) drain() {
	for i := 0; i < acceptBatch && !a.stopped; i++ {
		err := a.accept()
		switch {
		case err == nil:
			a.recovered()
		case errors.Is(err, ErrWouldBlock):
			a.recovered()
			return
		default:
			a.failed(err)
			return
		}
	}
}

func (a *Acceptor) failed(err error) {
	a.failures++
	if a.backoff == 0 {
		a.backoff = acceptBackoffMin
		a.log.Warn("netstack: accept failing, pausing the listener with back-off",
			"listener", a.what, "err", err.Error(), "first_retry", a.backoff)
	} else {
		a.backoff = min(2*a.backoff, acceptBackoffMax)
	}
	a.unwatch()
	if !a.stopped {
		a.timer = a.center.CreateTimeEvent(a.backoff, a.resumeFn)
	}
}

func (a *Acceptor) recovered() {
	if a.backoff == 0 {
		return
	}
	a.log.Info("netstack: accepting again", "listener", a.what, "failed_attempts", a.failures)
	a.backoff, a.failures = 0, 0
}

// resume is the back-off timer: watch again (a still-readable listener
// fires on the next turn, and the accept there decides).
func (a *Acceptor) resume() {
	a.timer = 0
	if a.stopped {
		return
	}
	if err := a.Watch(); err != nil {
		a.failed(err)
	}
}
