package netstack

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// EventMask selects readiness conditions of a file descriptor.
type EventMask uint32

const (
	// EventReadable fires while the fd is readable, or has an error or hang-up
	// pending (level-triggered).
	EventReadable EventMask = 1 << iota
	// EventWritable fires while the fd is writable, or has an error or hang-up
	// pending (level-triggered).
	EventWritable
)

// String names the bits of m, for logs.
func (m EventMask) String() string {
	switch m & (EventReadable | EventWritable) {
	case 0:
		return "none"
	case EventReadable:
		return "r"
	case EventWritable:
		return "w"
	default:
		return "rw"
	}
}

// FileHandler is called on the owner goroutine of an EventCenter when fd is
// ready. mask holds exactly one bit: the condition this handler was
// registered for.
type FileHandler func(fd int, mask EventMask)

// TimerID names a time event of one EventCenter. The zero TimerID is never
// returned by CreateTimeEvent.
type TimerID uint64

// ErrNotOwner is returned by EventCenter methods that must (or must not) run
// on the centre's owner goroutine when called from the wrong one.
var ErrNotOwner = errors.New("netstack: wrong goroutine for this event centre operation")

const (
	// maxEventsPerWait bounds the epoll event slice reused by every wait.
	maxEventsPerWait = 128
)

type fileEvent struct {
	mask EventMask
	rh   FileHandler
	wh   FileHandler
}

type timer struct {
	when  time.Time
	id    TimerID
	seq   uint64 // creation order, breaks ties between equal deadlines
	f     func()
	index int // position in the heap, -1 when not in it
}

// EventCenter is an epoll loop driven by exactly one goroutine (its owner),
// after Ceph's EventCenter: level-triggered file events, one-shot time events
// and external work queued from any goroutine and woken through an eventfd.
//
// File and time events may be created and deleted only on the owner
// goroutine, that is from inside a callback (a FileHandler, a time event, or a
// function passed to DispatchExternal or Submit). DispatchExternal and Submit
// may be called from any goroutine (Submit not from the owner).
//
// The owner goroutine never blocks an OS thread in epoll_wait: it parks in
// the Go netpoller on the epoll fd itself and calls epoll_wait with a zero
// timeout once that fd is readable, or when the nearest time event is due.
//
// Stop semantics: work accepted by DispatchExternal or Submit before Stop
// began is run on the owner goroutine before Stop returns; after that,
// DispatchExternal and Submit return ErrStackStopped. Pending time events are
// dropped. No callback runs after Stop returns. A callback that panics crashes
// the program, as an assertion in Ceph's loop would.
type EventCenter struct {
	name   string
	epfd   int
	wakefd int
	// epFile wraps epfd so the owner goroutine waits for it in the Go
	// netpoller (an epoll fd is itself pollable) instead of blocking an OS
	// thread in epoll_wait; epRaw is its RawConn.
	epFile *os.File
	epRaw  syscall.RawConn

	// Cross-goroutine state, guarded by mu.
	mu       sync.Mutex
	external []func()
	closed   bool // no more external work is accepted; fds may be closed

	wakePending atomic.Bool // an eventfd write is outstanding
	stopReq     atomic.Bool
	started     atomic.Bool
	busy        atomic.Bool   // the owner is running callbacks (not parked waiting)
	ownerGID    atomic.Uint64 // goroutine id of the owner, 0 before Start
	startOnce   sync.Once
	stopOnce    sync.Once
	done        chan struct{} // closed when the owner goroutine has exited
	stopErr     error

	// Owner-goroutine state.
	files      []fileEvent // indexed by fd
	events     []unix.EpollEvent
	spare      []func()
	timers     []*timer // min-heap on (when, seq)
	timerByID  map[TimerID]*timer
	freeTimers []*timer
	nextTimer  TimerID
	timerSeq   uint64
	deadline   time.Time // read deadline currently set on epFile
	pollFn     func(fd uintptr) bool
	pollN      int
	pollCalls  int // pollReady calls during the current wait (1: it did not park)
	pollErr    error
	wakeBuf    [8]byte
}

// wakeOne is the 8-byte little-endian 1 written to the eventfd; read-only.
var wakeOne = [8]byte{1}

// NewEventCenter creates a stopped event centre; name appears in errors and
// logs. Call Start to launch its owner goroutine.
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
		name:      name,
		epfd:      epfd,
		epFile:    epFile,
		epRaw:     epRaw,
		wakefd:    wfd,
		done:      make(chan struct{}),
		events:    make([]unix.EpollEvent, maxEventsPerWait),
		timerByID: make(map[TimerID]*timer),
	}
	c.pollFn = c.pollReady
	return c, nil
}

// Name returns the name given to NewEventCenter.
func (c *EventCenter) Name() string { return c.name }

// Start launches the owner goroutine. Later calls, and calls after Stop, do
// nothing.
func (c *EventCenter) Start() {
	c.startOnce.Do(func() {
		if c.stopReq.Load() {
			return
		}
		c.started.Store(true)
		ready := make(chan struct{})
		go c.loop(ready)
		<-ready // ownerGID is set once Start returns
	})
}

// Stop stops the loop and waits for the owner goroutine to exit, then
// releases the epoll and eventfd descriptors (registered fds are not closed:
// their owners close them). Work already accepted by DispatchExternal or
// Submit runs before Stop returns; time events still pending are dropped.
// Stop is idempotent, safe on a centre that never started, and returns
// ErrNotOwner when called from the owner goroutine (it would wait for itself).
func (c *EventCenter) Stop() error {
	if c.IsOwner() {
		return fmt.Errorf("netstack: event centre %s: Stop from its own goroutine: %w", c.name, ErrNotOwner)
	}
	c.stopOnce.Do(func() {
		c.stopReq.Store(true)
		c.startOnce.Do(func() {}) // a later Start must not launch the loop
		if c.started.Load() {
			c.mu.Lock()
			if !c.closed {
				c.wakeLocked(true)
			}
			c.mu.Unlock()
			<-c.done
		} else {
			c.mu.Lock()
			c.closed = true
			c.external = nil // nobody will ever run them; Submit waiters see done
			c.mu.Unlock()
			close(c.done)
		}
		err1 := unix.Close(c.wakefd)
		err2 := c.epFile.Close()
		if err := errors.Join(err1, err2); err != nil {
			c.stopErr = fmt.Errorf("netstack: event centre %s: close: %w", c.name, err)
		}
	})
	return c.stopErr
}

// IsOwner reports whether the calling goroutine is the centre's owner, i.e.
// whether the caller runs inside one of the centre's callbacks. It is cheap
// when the loop is idle; while the loop runs callbacks it reads the calling
// goroutine's id (about a microsecond).
func (c *EventCenter) IsOwner() bool {
	if !c.busy.Load() {
		// The owner is parked in epoll_wait (or not running), so the caller
		// cannot be it.
		return false
	}
	return curGoroutineID() == c.ownerGID.Load()
}

// DispatchExternal queues f to run on the owner goroutine and returns at once.
// Functions run in the order they were queued. It returns ErrStackStopped
// once the centre is stopping. It never blocks on the loop: the wake-up is a
// non-blocking eventfd write, coalesced while one is already pending.
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
	c.wakeLocked(false)
	c.mu.Unlock()
	return nil
}

// Submit runs f on the owner goroutine and waits until it has run (on a
// centre not yet started, until Start, or until Stop refuses it). It returns
// ErrNotOwner when called from the owner goroutine (that would deadlock; call
// f directly there) and ErrStackStopped when the centre stopped before f ran.
func (c *EventCenter) Submit(f func()) error {
	if c.IsOwner() {
		return fmt.Errorf("netstack: event centre %s: Submit from its own goroutine: %w", c.name, ErrNotOwner)
	}
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

// wakeLocked makes the owner goroutine leave epoll_wait. c.mu must be held:
// that keeps the eventfd open while it is written (Stop closes it only after
// closed is set under mu). force skips the coalescing flag.
func (c *EventCenter) wakeLocked(force bool) {
	if !c.wakePending.CompareAndSwap(false, true) && !force {
		return
	}
	// EAGAIN means the counter is saturated, which already wakes the loop.
	_, _ = unix.Write(c.wakefd, wakeOne[:])
}

// CreateFileEvent adds mask to the interest set of fd and makes h the handler
// for the bits in mask (replacing an earlier handler for the same bit).
// Events are level-triggered. Owner goroutine only.
func (c *EventCenter) CreateFileEvent(fd int, mask EventMask, h FileHandler) error {
	mask &= EventReadable | EventWritable
	if fd < 0 || mask == 0 || h == nil {
		return fmt.Errorf("netstack: event centre %s: CreateFileEvent(fd %d, mask %v): %w", c.name, fd, mask, unix.EINVAL)
	}
	if fd >= len(c.files) {
		n := len(c.files)*2 + 16
		if n <= fd {
			n = fd + 16
		}
		files := make([]fileEvent, n)
		copy(files, c.files)
		c.files = files
	}
	fe := &c.files[fd]
	newMask := fe.mask | mask
	if newMask != fe.mask {
		op := unix.EPOLL_CTL_MOD
		if fe.mask == 0 {
			op = unix.EPOLL_CTL_ADD
		}
		if err := c.ctl(op, fd, newMask); err != nil {
			// The fd may have been closed (and its number reused) without
			// DeleteFileEvent: epoll forgot it, so retry the other op.
			alt := unix.EPOLL_CTL_ADD
			if op == unix.EPOLL_CTL_ADD {
				alt = unix.EPOLL_CTL_MOD
			}
			if (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EEXIST)) && c.ctl(alt, fd, newMask) == nil {
				err = nil
			}
			if err != nil {
				return fmt.Errorf("netstack: event centre %s: fd %d: %w", c.name, fd, err)
			}
		}
	}
	fe.mask = newMask
	if mask&EventReadable != 0 {
		fe.rh = h
	}
	if mask&EventWritable != 0 {
		fe.wh = h
	}
	return nil
}

// DeleteFileEvent removes mask from the interest set of fd; when no bit is
// left the fd is removed from epoll. Deleting what is not registered is not
// an error. Owner goroutine only.
func (c *EventCenter) DeleteFileEvent(fd int, mask EventMask) error {
	if fd < 0 || fd >= len(c.files) {
		return nil
	}
	fe := &c.files[fd]
	if fe.mask == 0 {
		return nil
	}
	newMask := fe.mask &^ mask
	if mask&EventReadable != 0 {
		fe.rh = nil
	}
	if mask&EventWritable != 0 {
		fe.wh = nil
	}
	if newMask == fe.mask {
		return nil
	}
	fe.mask = newMask
	var err error
	if newMask == 0 {
		err = c.ctl(unix.EPOLL_CTL_DEL, fd, 0)
	} else {
		err = c.ctl(unix.EPOLL_CTL_MOD, fd, newMask)
	}
	// ENOENT/EBADF: the fd was closed first, and epoll already forgot it.
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBADF) {
		return fmt.Errorf("netstack: event centre %s: fd %d: %w", c.name, fd, err)
	}
	return nil
}

func (c *EventCenter) ctl(op, fd int, mask EventMask) error {
	var ev unix.EpollEvent
	if mask&EventReadable != 0 {
		ev.Events |= unix.EPOLLIN
	}
	if mask&EventWritable != 0 {
		ev.Events |= unix.EPOLLOUT
	}
	ev.Fd = int32(fd)
	if err := unix.EpollCtl(c.epfd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// CreateTimeEvent schedules f to run once on the owner goroutine after the
// given duration (at once, on the next loop turn, when after <= 0). Time
// events with the same deadline run in creation order. Owner goroutine only.
func (c *EventCenter) CreateTimeEvent(after time.Duration, f func()) TimerID {
	return c.createTimerAt(time.Now().Add(after), f)
}

func (c *EventCenter) createTimerAt(when time.Time, f func()) TimerID {
	var t *timer
	if n := len(c.freeTimers); n > 0 {
		t = c.freeTimers[n-1]
		c.freeTimers[n-1] = nil
		c.freeTimers = c.freeTimers[:n-1]
	} else {
		t = new(timer)
	}
	c.nextTimer++
	c.timerSeq++
	*t = timer{when: when, id: c.nextTimer, seq: c.timerSeq, f: f}
	c.timerByID[t.id] = t
	c.heapPush(t)
	return t.id
}

// DeleteTimeEvent cancels a time event that has not run yet; unknown or
// already-run ids are ignored. Owner goroutine only.
func (c *EventCenter) DeleteTimeEvent(id TimerID) {
	t, ok := c.timerByID[id]
	if !ok {
		return
	}
	delete(c.timerByID, id)
	c.heapRemove(t.index)
	c.releaseTimer(t)
}

func (c *EventCenter) releaseTimer(t *timer) {
	*t = timer{index: -1}
	if len(c.freeTimers) < 1024 {
		c.freeTimers = append(c.freeTimers, t)
	}
}

// PendingTimeEvents is the number of scheduled time events. Owner goroutine
// only (or after Stop).
func (c *EventCenter) PendingTimeEvents() int { return len(c.timers) }

func (c *EventCenter) loop(ready chan<- struct{}) {
	c.ownerGID.Store(curGoroutineID())
	c.busy.Store(true)
	close(ready)
	defer close(c.done)
	for !c.stopReq.Load() {
		c.runOnce()
	}
	// Refuse new work, then run what was accepted before Stop.
	c.mu.Lock()
	c.closed = true
	pending := c.external
	c.external = nil
	c.mu.Unlock()
	for i, f := range pending {
		pending[i] = nil
		f()
	}
	c.timers = nil
	c.timerByID = nil
	c.busy.Store(false)
}

// runOnce waits for events (bounded by the nearest timer) and runs every
// ready callback once.
//
// The wait never blocks an OS thread: epoll_wait is only called with a zero
// timeout, and when nothing is ready the owner goroutine parks in the Go
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
func (c *EventCenter) runOnce() {
	if len(c.timers) > 0 {
		if at := c.timers[0].when; !at.Equal(c.deadline) {
			// A deadline already past makes the wait below return at once.
			c.deadline = at
			_ = c.epFile.SetReadDeadline(at)
		}
	} else if !c.deadline.IsZero() {
		c.deadline = time.Time{}
		_ = c.epFile.SetReadDeadline(time.Time{})
	}
	c.busy.Store(false)
	c.pollCalls = 0
	err := c.epRaw.Read(c.pollFn)
	c.busy.Store(true)
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
	woken := false
	for i := 0; i < n; i++ {
		ev := c.events[i]
		fd := int(ev.Fd)
		if fd == c.wakefd {
			woken = true
			continue
		}
		c.dispatchFile(fd, ev.Events)
	}
	if timersDue && len(c.timers) > 0 {
		c.runTimers()
	}
	if woken {
		// Drain the counter, then allow a new wake before taking the queue so
		// that work queued from now on triggers another wake-up.
		_, _ = unix.Read(c.wakefd, c.wakeBuf[:])
		c.wakePending.Store(false)
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

func (c *EventCenter) dispatchFile(fd int, events uint32) {
	if fd < 0 || fd >= len(c.files) {
		return
	}
	errHup := events&(unix.EPOLLERR|unix.EPOLLHUP) != 0
	if events&unix.EPOLLIN != 0 || errHup {
		if fe := &c.files[fd]; fe.mask&EventReadable != 0 {
			fe.rh(fd, EventReadable)
		}
	}
	if events&unix.EPOLLOUT != 0 || errHup {
		// Re-read: the read handler may have deleted or replaced the event.
		if fe := &c.files[fd]; fe.mask&EventWritable != 0 {
			fe.wh(fd, EventWritable)
		}
	}
}

func (c *EventCenter) runTimers() {
	now := time.Now()
	// Only timers due now run; ones created by callbacks with a zero delay
	// wait for the next turn so file events are not starved.
	for len(c.timers) > 0 && !c.timers[0].when.After(now) {
		t := c.timers[0]
		c.heapRemove(0)
		delete(c.timerByID, t.id)
		f := t.f
		c.releaseTimer(t)
		f()
	}
}

func (c *EventCenter) runExternal() {
	c.mu.Lock()
	work := c.external
	c.external = c.spare[:0]
	c.mu.Unlock()
	for i, f := range work {
		work[i] = nil
		f()
	}
	c.spare = work[:0]
}

// Timer heap ordered by (when, seq).

func (c *EventCenter) less(i, j int) bool {
	a, b := c.timers[i], c.timers[j]
	if a.when.Equal(b.when) {
		return a.seq < b.seq
	}
	return a.when.Before(b.when)
}

func (c *EventCenter) swap(i, j int) {
	c.timers[i], c.timers[j] = c.timers[j], c.timers[i]
	c.timers[i].index = i
	c.timers[j].index = j
}

func (c *EventCenter) heapPush(t *timer) {
	t.index = len(c.timers)
	c.timers = append(c.timers, t)
	c.up(t.index)
}

func (c *EventCenter) heapRemove(i int) {
	last := len(c.timers) - 1
	if i != last {
		c.swap(i, last)
	}
	c.timers[last].index = -1
	c.timers[last] = nil
	c.timers = c.timers[:last]
	if i != last {
		if !c.down(i) {
			c.up(i)
		}
	}
}

func (c *EventCenter) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !c.less(j, i) {
			break
		}
		c.swap(i, j)
		j = i
	}
}

func (c *EventCenter) down(i0 int) bool {
	i, n := i0, len(c.timers)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && c.less(r, l) {
			j = r
		}
		if !c.less(j, i) {
			break
		}
		c.swap(i, j)
		i = j
	}
	return i > i0
}

// curGoroutineID parses the calling goroutine's id from its stack header
// ("goroutine 123 [running]:"). Used only on the slow path of IsOwner.
func curGoroutineID() uint64 {
	var buf [32]byte
	n := runtime.Stack(buf[:], false)
	b := buf[:n]
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return 0
	}
	b = b[len(prefix):]
	var id uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			break
		}
		id = id*10 + uint64(ch-'0')
	}
	return id
}
