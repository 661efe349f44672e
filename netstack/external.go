package netstack

import (
	"errors"

	"golang.org/x/sys/unix"
)

// DispatchExternal queues f to run on the loop goroutine and returns at once.
// Functions run in the order they were queued. It returns ErrStackStopped
// once the centre is stopping. It never blocks on the loop, so it may be
// called from any goroutine, the loop's own included. It writes the wake-up
// eventfd only when the loop has announced that it sleeps; a loop that is
// running or spinning picks the work up on its next turn.
func (c *EventCenter) DispatchExternal(f func()) error {
	if f == nil {
		return errors.New("netstack: DispatchExternal: nil function")
	}
	c.mu.Lock()
	if c.closed || c.stopReq.Load() {
		c.mu.Unlock()
		return ErrStackStopped
	}
	c.external = append(c.external, f)
	c.hasWork.Store(true)
	// maybe_wakeup, the submitter's half (the loop's is in sleepTurn). The
	// swap lets one submitter per sleep pay for the write.
	if c.sleeping.Load() && c.sleeping.Swap(false) {
		c.writeWakeLocked()
	}
	c.mu.Unlock()
	return nil
}

// Submit runs f on the loop goroutine and waits until it has run (on a
// centre not yet started, until Start, or until Stop refuses it). It returns
// ErrStackStopped when the centre stopped before f ran. It must not be
// called on the loop goroutine (it would wait for itself forever): code
// running there calls f directly.
func (c *EventCenter) Submit(f func()) error {
	fin := make(chan struct{})
	if err := c.DispatchExternal(func() { f(); close(fin) }); err != nil {
		return err
	}
	select {
	case <-fin:
		return nil
	case <-c.done:
		select {
		case <-fin:
			return nil
		default:
			return ErrStackStopped
		}
	}
}

// writeWakeLocked makes the loop goroutine leave its wait. c.mu must be
// held: that keeps the eventfd open while it is written (Stop closes it only
// after closed is set under mu).
func (c *EventCenter) writeWakeLocked() {
	c.wakeWrites.Add(1)
	// EAGAIN means the counter is saturated, which already wakes the loop.
	_, _ = unix.Write(c.wakefd, wakeOne[:])
}

func (c *EventCenter) runExternal() {
	c.mu.Lock()
	work := c.external
	c.external = c.spare[:0]
	c.hasWork.Store(false)
	c.mu.Unlock()
	for i, f := range work {
		work[i] = nil
		f()
	}
	c.spare = work[:0]
}
