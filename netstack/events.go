package netstack

import "time"

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

// FileHandler is called on the loop goroutine of an EventCenter when fd is
// ready. mask holds exactly one bit: the condition this handler was
// registered for. It runs on the loop, so it may call the loop-only methods
// (CreateFileEvent, CreateTimeEvent, ...) directly.
type FileHandler func(fd int, mask EventMask)

// TimerID names a time event of one EventCenter. The zero TimerID is never
// returned by CreateTimeEvent.
type TimerID uint64

// Poller is work an EventCenter runs on its own goroutine each turn of its loop.
type Poller interface {
	// Poll handles what is ready (at most one bounded batch) and returns how many items it handled.
	Poll() int
	// Arm is called before the centre sleeps after its pollers found nothing for the spin window:
	// it re-arms notification (e.g. ibv_req_notify_cq) and returns false if work arrived meanwhile,
	// in which case the centre polls again instead of sleeping. The fd that signals new work is
	// registered with the centre as an ordinary file event by the poller's owner.
	Arm() bool
}

// InlinePoller is a Poller that can tell whether the work of its last Poll
// may need the rest of the turn at once. After a Poll that found work the
// centre normally runs a non-blocking turn right away (epoll with a zero
// timeout, due timers: a syscall and a clock read), so that a file the work
// made ready runs at once. A poller that handles its work inline, such as
// an RDMA worker's CQ pair running its sockets' read handlers itself, knows
// whether it made one of the centre's fds ready; when PollNeedsTurn returns
// false the centre leaves epoll and the timers to its periodic check, every
// few turns (a timer armed by the work runs then, a few turns later).
type InlinePoller interface {
	Poller
	// PollNeedsTurn reports whether a file event of the centre may have
	// become ready since it last returned true: through the last Poll's
	// work or, as far as the poller can tell, another goroutine's (loop
	// goroutine, right after a Poll that found work).
	PollNeedsTurn() bool
}

// timer is one time event; index is its position in the heap.
type timer struct {
	when  time.Time
	id    TimerID
	seq   uint64 // creation order, breaks ties between equal deadlines
	f     func()
	index int // position in the heap, -1 when not in it
}

type fileEvent struct {
	mask EventMask
	rh   FileHandler
	wh   FileHandler
}
