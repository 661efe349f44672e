package netstack

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// maxEventsPerWait bounds the epoll event slice reused by every wait.
	maxEventsPerWait = 128
)

// EventCenter is an epoll loop driven by exactly one goroutine (its loop
// goroutine), after Ceph's EventCenter: level-triggered file events,
// one-shot time events, pollers run every turn (AddPoller), and external
// work queued from any goroutine.
//
// Two kinds of entry points, and no way to ask "am I on the loop?":
//   - Loop-only: CreateFileEvent, DeleteFileEvent, CreateTimeEvent,
//     DeleteTimeEvent, PendingTimeEvents. Call them from the callbacks the
//     centre runs (a FileHandler, a time event, a Poller, a function passed to
//     DispatchExternal or Submit), which is where the code that needs them
//     lives; nothing checks the goroutine.
//   - From elsewhere: DispatchExternal (any goroutine, the loop included: it
//     never waits), AddPoller and its remove func (any goroutine), Submit and
//     Stop (never from the loop: they wait for the loop, which would wait for
//     itself forever).
//
// Waiting never blocks an OS thread: the loop goroutine parks in the Go
// netpoller on the epoll fd itself and calls epoll_wait with a zero timeout
// once that fd is readable, or when the nearest time event is due. Before
// it parks it announces it (a sleeping flag) and re-checks its queue;
// DispatchExternal writes the wake-up eventfd only when that flag is set
// (Seastar's maybe_wakeup), so work queued while the loop runs or spins
// costs no system call.
//
// Stop semantics: work accepted by DispatchExternal or Submit before Stop
// began is run on the loop goroutine before Stop returns; after that,
// DispatchExternal and Submit return ErrStackStopped. Pending time events are
// dropped. No callback runs after Stop returns. A callback that panics crashes
// the program, as an assertion in Ceph's loop would.
type EventCenter struct {
	name   string
	epfd   int
	wakefd int
	// epFile wraps epfd so the loop goroutine waits for it in the Go
	// netpoller (an epoll fd is itself pollable) instead of blocking an OS
	// thread in epoll_wait; epRaw is its RawConn.
	epFile *os.File
	epRaw  syscall.RawConn

	// Cross-goroutine state. external and closed are guarded by mu.
	mu       sync.Mutex
	external []func()
	closed   bool        // no more external work is accepted; fds may be closed
	hasWork  atomic.Bool // external is not empty; set under mu, read by the loop without it
	sleeping atomic.Bool // the loop is about to park or parked: submitters must write wakefd
	// wakeWrites counts eventfd writes, for tests of the maybe_wakeup rule.
	wakeWrites atomic.Uint64
	stopReq    atomic.Bool
	started    atomic.Bool
	startOnce  sync.Once
	stopOnce   sync.Once
	done       chan struct{} // closed when the loop goroutine has exited
	stopErr    error

	// Loop-goroutine state.
	files     []fileEvent // indexed by fd
	events    []unix.EpollEvent
	spare     []func()
	timers    timers
	deadline  time.Time // read deadline currently set on epFile
	pollFn    func(fd uintptr) bool
	pollN     int
	pollCalls int // pollReady calls during the current wait (1: it did not park)
	pollErr   error
	wakeBuf   [8]byte
	polling   pollState
	// beforePark, when set (by tests, before Start), runs between the
	// maybe_wakeup re-check and the park: the window a lost wake-up hides in.
	beforePark func()
}

// wakeOne is the 8-byte little-endian 1 written to the eventfd; read-only.
var wakeOne = [8]byte{1}

// NewEventCenter creates a stopped event centre; name appears in errors and
// logs. Call Start to launch its loop goroutine.
func NewEventCenter(name string) (*EventCenter, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netstack: event centre %s: epoll_create1: %w", name, os.NewSyscallError("epoll_create1", err))
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("netstack: event centre %s: eventfd: %w", name, os.NewSyscallError("eventfd", err))
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &ev); err != nil {
		unix.Close(wfd)
		unix.Close(epfd)
		return nil, fmt.Errorf("netstack: event centre %s: epoll_ctl add eventfd: %w", name, os.NewSyscallError("epoll_ctl", err))
	}
	// Non-blocking, so os.NewFile registers it with the runtime poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(wfd)
		unix.Close(epfd)
		return nil, fmt.Errorf("netstack: event centre %s: set non-blocking: %w", name, os.NewSyscallError("fcntl", err))
	}
	epFile := os.NewFile(uintptr(epfd), "epoll:"+name)
	epRaw, err := epFile.SyscallConn()
	if err != nil {
		epFile.Close()
		unix.Close(wfd)
		return nil, fmt.Errorf("netstack: event centre %s: %w", name, err)
	}
	c := &EventCenter{
		name:   name,
		epfd:   epfd,
		epFile: epFile,
		epRaw:  epRaw,
		wakefd: wfd,
		done:   make(chan struct{}),
		events: make([]unix.EpollEvent, maxEventsPerWait),
		timers: timers{byID: make(map[TimerID]*timer)},
	}
	c.pollFn = c.pollReady
	return c, nil
}

// Name returns the name given to NewEventCenter.
func (c *EventCenter) Name() string { return c.name }

// Started reports whether Start launched the loop goroutine (it stays true
// after Stop).
func (c *EventCenter) Started() bool { return c.started.Load() }

// Stopped reports whether Stop has been called.
func (c *EventCenter) Stopped() bool { return c.stopReq.Load() }

// Done is closed once the centre has stopped: its loop goroutine exited, or
// Stop was called on a centre that never started. Goroutines waiting for
// the centre to run something (netconn's Read, Write, Accept) also wait on
// it, so that they learn nothing ever will.
func (c *EventCenter) Done() <-chan struct{} { return c.done }

// Start launches the loop goroutine. Later calls, and calls after Stop, do
// nothing.
func (c *EventCenter) Start() {
	c.startOnce.Do(func() {
		if c.stopReq.Load() {
			return
		}
		c.started.Store(true)
		go c.loop()
	})
}

// Stop stops the loop and waits for the loop goroutine to exit, then
// releases the epoll and eventfd descriptors (registered fds are not closed:
// their owners close them). Work already accepted by DispatchExternal or
// Submit runs before Stop returns; time events still pending are dropped.
// Stop is idempotent and safe on a centre that never started. It must not
// be called on the loop goroutine (it would wait for itself); a callback
// that wants the centre stopped hands Stop to another goroutine.
func (c *EventCenter) Stop() error {
	c.stopOnce.Do(func() {
		c.stopReq.Store(true)
		c.startOnce.Do(func() {}) // a later Start must not launch the loop
		if c.started.Load() {
			c.mu.Lock()
			if !c.closed {
				c.writeWakeLocked()
			}
			c.mu.Unlock()
			<-c.done
		} else {
			c.mu.Lock()
			c.closed = true
			c.external = nil // nobody will ever run them; Submit waiters see done
			c.hasWork.Store(false)
			c.mu.Unlock()
			close(c.done)
		}
		err1 := unix.Close(c.wakefd)
		err2 := c.epFile.Close()
		if err := JoinErrors(err1, err2); err != nil {
			c.stopErr = fmt.Errorf("netstack: event centre %s: close: %w", c.name, err)
		}
	})
	return c.stopErr
}

func (c *EventCenter) loop() {
	defer close(c.done)
	for !c.stopReq.Load() {
		c.runOnce()
	}
	// Refuse new work, then run what was accepted before Stop.
	c.mu.Lock()
	c.closed = true
	pending := c.external
	c.external = nil
	c.hasWork.Store(false)
	c.mu.Unlock()
	for i, f := range pending {
		pending[i] = nil
		f()
	}
	c.timers = timers{}
	c.polling = pollState{}
}

// runOnce is one turn of the loop: with pollers it polls them and either
// spins (a non-blocking turn) or, after the spin window and a successful
// Arm, sleeps; without pollers it always sleeps until something is ready.
func (c *EventCenter) runOnce() {
	if len(c.polling.pollers) == 0 || !c.pollTurn() {
		c.sleepTurn()
	}
}

// sleepTurn waits for events (bounded by the nearest timer) and runs every
// ready callback once.
//
// The wait never blocks an OS thread: epoll_wait is only called with a zero
// timeout, and when nothing is ready the loop goroutine parks in the Go
// netpoller until epfd turns readable (any registered fd, or the eventfd,
// became ready) or the read deadline set to the nearest timer passes. A
// blocking epoll_wait would hold its P until sysmon retakes it, which costs
// tens of microseconds to milliseconds of latency per wake-up.
//
// The clock is read only when a timer may be due: when the wait ended at
// the deadline, or when it did not park at all (events were ready at once,
// so the deadline may have passed unnoticed). A wake-up by readiness before
// the deadline means no timer is due yet; one that falls due right after is
// caught by the next turn (its expired deadline ends that wait at once).
// Clock reads are not free (tens to hundreds of nanoseconds, more on VMs
// with a slow clocksource) and a busy loop would pay them on every turn.
func (c *EventCenter) sleepTurn() {
	c.polling.stats.sleeps.Add(1)
	if at := c.timers.nextDeadline(); !at.Equal(c.deadline) {
		// A deadline already past makes the wait below return at once; the
		// zero time clears it.
		c.deadline = at
		_ = c.epFile.SetReadDeadline(at)
	}
	// maybe_wakeup, the loop's half: announce the sleep, then look at the
	// queue once more. A submitter queues first and then reads the flag, so
	// either this check sees its work or it sees the flag and writes wakefd.
	c.sleeping.Store(true)
	if c.hasWork.Load() {
		c.sleeping.Store(false)
		c.turnNoWait()
		return
	}
	if c.beforePark != nil {
		c.beforePark()
	}
	c.pollCalls = 0
	err := c.epRaw.Read(c.pollFn)
	c.sleeping.Store(false)
	timersDue := false
	if err != nil {
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			panic(fmt.Sprintf("netstack: event centre %s: wait: %v", c.name, err))
		}
		timersDue = true
	} else if c.pollCalls == 1 {
		timersDue = true // did not park: time went by unobserved
	}
	n, werr := c.pollN, c.pollErr
	c.pollN, c.pollErr = 0, nil
	if werr != nil {
		// Only EBADF/EFAULT/EINVAL are possible, all programming errors.
		panic(fmt.Sprintf("netstack: event centre %s: epoll_wait: %v", c.name, werr))
	}
	woken := c.dispatchFiles(n)
	if timersDue && len(c.timers.heap) > 0 {
		c.runTimers(time.Now())
	}
	c.finishTurn(woken)
}

// turnNoWait is a turn that does not park: whatever epoll has ready now, the
// time events due, and the external queue.
func (c *EventCenter) turnNoWait() {
	c.pollReady(uintptr(c.epfd))
	n, werr := c.pollN, c.pollErr
	c.pollN, c.pollErr = 0, nil
	if werr != nil {
		panic(fmt.Sprintf("netstack: event centre %s: epoll_wait: %v", c.name, werr))
	}
	woken := c.dispatchFiles(n)
	if len(c.timers.heap) > 0 {
		if now := time.Now(); !c.timers.heap[0].when.After(now) {
			c.runTimers(now)
		}
	}
	c.finishTurn(woken)
}

// finishTurn drains the eventfd when it fired and runs the external queue.
func (c *EventCenter) finishTurn(woken bool) {
	if woken {
		_, _ = unix.Read(c.wakefd, c.wakeBuf[:])
	}
	if c.hasWork.Load() {
		c.runExternal()
	}
}

// pollReady collects ready events without blocking; it returns false (so the
// RawConn parks the goroutine until epfd is readable) when there are none.
func (c *EventCenter) pollReady(fd uintptr) bool {
	c.pollCalls++
	n, err := unix.EpollWait(int(fd), c.events, 0)
	if err == unix.EINTR {
		n, err = 0, nil
	}
	c.pollN, c.pollErr = n, err
	return n > 0 || err != nil
}
