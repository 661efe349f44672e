package netstack

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

// funcPoller adapts two functions to Poller.
type funcPoller struct {
	poll func() int
	arm  func() bool
}

func (p funcPoller) Poll() int { return p.poll() }
func (p funcPoller) Arm() bool { return p.arm() }

// countingPoller finds work for its first `work` polls, then nothing; its
// counters may be read from any goroutine.
type countingPoller struct {
	work  int64
	polls atomic.Int64
	arms  atomic.Int64
}

func (p *countingPoller) Poll() int {
	if p.polls.Add(1) <= p.work {
		return 1
	}
	return 0
}

func (p *countingPoller) Arm() bool { p.arms.Add(1); return true }

const waitLimit = 20 * time.Second

// TestPollerRunsInline: Poll and Arm run on the loop goroutine, interleaved
// with the loop's other callbacks: the counter below is touched by both
// without synchronisation, which -race would report otherwise. Poll may use
// the loop-only methods.
func TestPollerRunsInline(t *testing.T) {
	c := startCenter(t)
	shared := 0
	timerRan := make(chan struct{})
	scheduled := false
	remove := c.AddPoller(funcPoller{
		poll: func() int {
			shared++
			if !scheduled {
				scheduled = true
				c.CreateTimeEvent(0, func() { close(timerRan) })
			}
			return 0
		},
		arm: func() bool { shared++; return true },
	}, 0)
	defer remove()
	<-timerRan
	for i := 0; i < 50; i++ {
		require.NoError(t, c.Submit(func() { shared++ }))
	}
	var got int
	require.NoError(t, c.Submit(func() { got = shared }))
	require.Greater(t, got, 50)
}

// TestPollerSpinWindow counts turns, not time: with a window of an hour the
// centre keeps polling after the last work and never arms; with no window it
// arms on the first empty poll and then sleeps, polling once per wake-up; a
// poller that never finds work opens no window at all.
func TestPollerSpinWindow(t *testing.T) {
	t.Run("spins after work", func(t *testing.T) {
		c := startCenter(t)
		p := &countingPoller{work: 3}
		defer c.AddPoller(p, time.Hour)()
		testenv.WaitFor(t, waitLimit, "10000 polls", func() bool { return p.polls.Load() >= 10000 },
			func() string { return "" })
		require.Zero(t, p.arms.Load(), "armed inside the spin window")
	})
	t.Run("no work, no window", func(t *testing.T) {
		c := startCenter(t)
		p := &countingPoller{}
		defer c.AddPoller(p, time.Hour)()
		testenv.WaitFor(t, waitLimit, "an Arm", func() bool { return p.arms.Load() > 0 }, func() string { return "" })
		// Every poll was followed by an Arm: no spinning in between.
		arms := p.arms.Load()
		require.LessOrEqual(t, p.polls.Load(), arms+1)
	})
	t.Run("sleeps without a window", func(t *testing.T) {
		c := startCenter(t)
		p := &countingPoller{work: 3}
		defer c.AddPoller(p, 0)()
		testenv.WaitFor(t, waitLimit, "an Arm", func() bool { return p.arms.Load() > 0 }, func() string { return "" })
		testenv.WaitFor(t, waitLimit, "the loop to sleep", c.sleeping.Load, func() string { return "" })
		before := p.polls.Load()
		const wakes = 20
		for i := 0; i < wakes; i++ {
			require.NoError(t, c.Submit(func() {}))
		}
		// A sleeping centre polls once per wake-up (twice at most when a
		// Submit lands mid-turn), nothing like a spinning one.
		require.LessOrEqual(t, p.polls.Load()-before, int64(2*wakes+2))
		require.GreaterOrEqual(t, p.polls.Load(), int64(4), "the empty poll after the work")
	})
}

// pendingPoller finds one piece of work each time the test queues one.
type pendingPoller struct {
	pending, arms atomic.Int64
}

func (p *pendingPoller) Poll() int { return int(p.pending.Swap(0)) }
func (p *pendingPoller) Arm() bool { p.arms.Add(1); return true }

// TestPollerQuiet: after Quiet(1) the work of this wake-up and of the next
// one opens no spin window (the loop arms and sleeps at once, though the
// window is an hour); the wake-up after that spins as usual, and a
// spinning loop ignores Quiet.
func TestPollerQuiet(t *testing.T) {
	c := startCenter(t)
	p := &pendingPoller{}
	defer c.AddPoller(p, time.Hour)()
	asleep := func(arms int64) {
		testenv.WaitFor(t, waitLimit, "the loop to arm and sleep", func() bool {
			return p.arms.Load() >= arms && c.sleeping.Load()
		}, func() string { return fmt.Sprintf("%d arms, %+v", p.arms.Load(), c.PollStats()) })
	}
	asleep(1)
	for i, quiet := range []bool{true, false} {
		arms := p.arms.Load()
		require.NoError(t, c.Submit(func() {
			if quiet {
				c.Quiet(1)
			}
			p.pending.Store(1)
		}))
		asleep(arms + 1)
		require.Zero(t, c.PollStats().Windows, "wake-up %d opened a spin window", i)
	}
	arms := p.arms.Load()
	require.NoError(t, c.Submit(func() { p.pending.Store(1) }))
	testenv.WaitFor(t, waitLimit, "a spin window", func() bool { return c.PollStats().Windows == 1 },
		func() string { return fmt.Sprintf("%+v", c.PollStats()) })
	require.NoError(t, c.Submit(func() { c.Quiet(5); p.pending.Store(1) }))
	require.NoError(t, c.Submit(func() {}))
	require.Equal(t, arms, p.arms.Load(), "a spinning loop armed after Quiet")
	require.False(t, c.sleeping.Load())
}

// TestPollerArmFalseRepolls: an Arm that reports work is followed by a Poll
// before the next Arm, and the centre sleeps only after an Arm that agrees.
func TestPollerArmFalseRepolls(t *testing.T) {
	c := startCenter(t)
	var log []byte // loop goroutine only
	refusals := 3
	closed := false
	slept := make(chan struct{})
	defer c.AddPoller(funcPoller{
		poll: func() int { log = append(log, 'P'); return 0 },
		arm: func() bool {
			log = append(log, 'A')
			if refusals > 0 {
				refusals--
				return false
			}
			if !closed {
				closed = true
				close(slept)
			}
			return true
		},
	}, 0)()
	<-slept
	var got string
	require.NoError(t, c.Submit(func() { got = string(log) }))
	// The Submit ran on the wake-up turn, before the next poll.
	require.Equal(t, "PAPAPAPA", got)
	st := c.PollStats()
	require.Equal(t, uint64(3), st.ArmRetries)
	require.Zero(t, st.Windows)
}

// TestPollerRemove: remove is idempotent and callable from any goroutine,
// the loop's own included; once it has returned the poller is not called,
// and a removal that overtakes the registration wins.
func TestPollerRemove(t *testing.T) {
	c := startCenter(t)
	p := &countingPoller{work: 1 << 62}
	remove := c.AddPoller(p, time.Hour)
	testenv.WaitFor(t, waitLimit, "polls", func() bool { return p.polls.Load() > 100 }, func() string { return "" })
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); remove() }()
	}
	wg.Wait()
	remove()
	require.NoError(t, c.Submit(func() {})) // a poll already running has ended
	n := p.polls.Load()
	for i := 0; i < 20; i++ {
		require.NoError(t, c.Submit(func() {}))
	}
	require.Equal(t, n, p.polls.Load())

	// Removed from inside its own Poll.
	self := make(chan func(), 1) // hands the remove func to the loop
	var selfPolls atomic.Int64
	self <- c.AddPoller(funcPoller{
		poll: func() int { selfPolls.Add(1); r := <-self; r(); r(); return 1 },
		arm:  func() bool { return true },
	}, time.Hour)
	testenv.WaitFor(t, waitLimit, "the self-removing poll", func() bool { return selfPolls.Load() > 0 }, func() string { return "" })
	require.NoError(t, c.Submit(func() {}))
	require.Equal(t, int64(1), selfPolls.Load())

	// Removed before the loop applied the registration.
	idle, err := NewEventCenter("idle")
	require.NoError(t, err)
	never := &countingPoller{}
	idle.AddPoller(never, time.Hour)()
	idle.Start()
	require.NoError(t, idle.Submit(func() {}))
	require.NoError(t, idle.Stop())
	require.Zero(t, never.polls.Load())
}

// TestPollerIdleTurnNoAlloc: a spinning turn that finds nothing (poll, the
// zero-timeout epoll check, the clock read, the periodic yield) allocates
// nothing.
func TestPollerIdleTurnNoAlloc(t *testing.T) {
	c := startCenter(t)
	tick := make(chan struct{})
	var polls int
	defer c.AddPoller(funcPoller{
		poll: func() int {
			polls++
			if polls == 1 {
				return 1 // opens the spin window
			}
			if polls%100 == 0 {
				select {
				case tick <- struct{}{}:
				default:
				}
			}
			return 0
		},
		arm: func() bool { return true },
	}, time.Hour)()
	hundredTurns := func() { <-tick }
	for i := 0; i < 10; i++ {
		hundredTurns()
	}
	require.Zero(t, minAllocs(hundredTurns), "an idle spinning turn allocates")
}

// TestWakeOnlyWhenSleeping: submits to a spinning loop write no eventfd; a
// submit to a sleeping loop writes exactly one.
func TestWakeOnlyWhenSleeping(t *testing.T) {
	c := startCenter(t)
	p := &countingPoller{work: 1 << 62}
	remove := c.AddPoller(p, time.Hour)
	testenv.WaitFor(t, waitLimit, "the loop to spin", func() bool { return p.polls.Load() > 100 }, func() string { return "" })
	before := c.wakeWrites.Load()
	n := 0
	for i := 0; i < 1000; i++ {
		require.NoError(t, c.DispatchExternal(func() { n++ }))
		require.NoError(t, c.Submit(func() {}))
	}
	require.Equal(t, before, c.wakeWrites.Load(), "eventfd writes while the loop spins")
	require.NoError(t, c.Submit(func() { require.Equal(t, 1000, n) }))

	remove()
	testenv.WaitFor(t, waitLimit, "the loop to sleep", c.sleeping.Load, func() string { return "" })
	before = c.wakeWrites.Load()
	require.NoError(t, c.Submit(func() {}))
	require.Equal(t, before+1, c.wakeWrites.Load(), "eventfd writes for one submit to a sleeping loop")
}

// TestNoLostWakeup races submitters against a loop that keeps going to sleep
// (idle, or a poller that finds work now and then and arms between): every
// submitted function must run. A lost wake-up leaves one waiting forever,
// since nothing else (no timer, no fd) would wake the loop.
func TestNoLostWakeup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		poller bool
	}{{"idle loop", false}, {"poller loop", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCenter(t)
			if tc.poller {
				var turns atomic.Int64
				defer c.AddPoller(funcPoller{
					poll: func() int {
						if turns.Add(1)%7 == 0 {
							return 1
						}
						return 0
					},
					arm: func() bool { return turns.Load()%5 != 0 },
				}, 0)()
			}
			const goroutines, per = 8, 3000
			var wg sync.WaitGroup
			var ran atomic.Int64
			errs := make(chan string, goroutines)
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					done := make(chan struct{}, 1)
					f := func() { ran.Add(1); done <- struct{}{} }
					for i := 0; i < per; i++ {
						if err := c.DispatchExternal(f); err != nil {
							errs <- err.Error()
							return
						}
						select {
						case <-done:
						case <-time.After(waitLimit):
							errs <- "lost wake-up: a dispatched function never ran"
							return
						}
						if i%64 == 0 {
							time.Sleep(time.Duration(g) * time.Microsecond) // let the loop fall asleep
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Fatal(e)
			}
			require.Equal(t, int64(goroutines*per), ran.Load())
		})
	}
}

// TestWakeInParkWindow submits from another goroutine in the window between
// the loop's last look at its queue and its park; the submit must wake it.
func TestWakeInParkWindow(t *testing.T) {
	c, err := NewEventCenter(t.Name())
	require.NoError(t, err)
	var armed atomic.Bool
	ran := make(chan struct{})
	c.beforePark = func() {
		if !armed.Swap(false) {
			return
		}
		submitted := make(chan error)
		go func() { submitted <- c.DispatchExternal(func() { close(ran) }) }()
		require.NoError(t, <-submitted)
	}
	c.Start()
	t.Cleanup(func() { require.NoError(t, c.Stop()) })
	require.NoError(t, c.Submit(func() { armed.Store(true) }))
	select {
	case <-ran:
	case <-time.After(waitLimit):
		t.Fatal("lost wake-up: work submitted while the loop went to sleep never ran")
	}
}

// inlinePoller finds work on every poll; on the first poll whose turn is not
// a periodic check it makes efd readable and answers PollNeedsTurn with
// needs. It records, on the loop, the poll count at the write and when the
// fd's handler ran.
type inlinePoller struct {
	c            *EventCenter
	efd          int
	needs        bool
	polls        int // loop only
	wroteAt      int
	ranAt        atomic.Int64
	wroteThisOne bool
}

func (p *inlinePoller) Poll() int {
	p.polls++
	p.wroteThisOne = false
	if p.wroteAt == 0 && (p.c.polling.turns+1)%spinCheckTurns != 0 && p.polls > 2 {
		var one = [8]byte{1}
		_, _ = unix.Write(p.efd, one[:])
		p.wroteAt, p.wroteThisOne = p.polls, true
	}
	return 1
}
func (p *inlinePoller) Arm() bool           { return true }
func (p *inlinePoller) PollNeedsTurn() bool { return p.needs && p.wroteThisOne }

// TestInlinePollerTurn: after a busy poll of an InlinePoller that made no
// file ready the centre leaves epoll to its periodic check (the file made
// ready in such a poll runs a few polls later, never in that turn); one that
// says it did gets the file's handler run in the same turn, before the next
// poll.
func TestInlinePollerTurn(t *testing.T) {
	for _, needs := range []bool{false, true} {
		t.Run(map[bool]string{false: "no turn", true: "turn"}[needs], func(t *testing.T) {
			c := startCenter(t)
			efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
			require.NoError(t, err)
			defer unix.Close(efd)
			p := &inlinePoller{c: c, efd: efd, needs: needs}
			registered := make(chan error, 1)
			require.NoError(t, c.DispatchExternal(func() {
				registered <- c.CreateFileEvent(efd, EventReadable, func(int, EventMask) {
					var b [8]byte
					_, _ = unix.Read(efd, b[:])
					if p.ranAt.Load() == 0 {
						p.ranAt.Store(int64(p.polls))
					}
				})
			}))
			require.NoError(t, <-registered)
			defer c.AddPoller(p, time.Hour)()
			testenv.WaitFor(t, waitLimit, "the handler", func() bool { return p.ranAt.Load() != 0 }, func() string { return "" })
			var wrote int
			require.NoError(t, c.Submit(func() { wrote = p.wroteAt }))
			ran := int(p.ranAt.Load())
			if needs {
				require.Equal(t, wrote, ran, "the handler did not run in the turn of the poll that made its fd ready")
			} else {
				require.Greater(t, ran, wrote, "a busy turn of an InlinePoller looked at epoll")
				require.LessOrEqual(t, ran, wrote+spinCheckTurns, "the periodic check missed the fd")
			}
		})
	}
}

// TestPollStats: a window opens once per run of busy polls, each busy turn
// is counted, and a window's idle spin lasts at least the spin time (refused
// Arms: TestPollerArmFalseRepolls).
func TestPollStats(t *testing.T) {
	c := startCenter(t)
	p := &countingPoller{work: 3}
	defer c.AddPoller(p, time.Millisecond)()
	testenv.WaitFor(t, waitLimit, "an Arm", func() bool { return p.arms.Load() > 0 }, func() string { return "" })
	testenv.WaitFor(t, waitLimit, "the loop to sleep", c.sleeping.Load, func() string { return "" })
	st := c.PollStats()
	require.Equal(t, uint64(1), st.Windows)
	require.Equal(t, uint64(3), st.BusyTurns)
	require.Zero(t, st.ArmRetries)
	require.GreaterOrEqual(t, st.IdleSpin, time.Millisecond)
	require.Greater(t, st.Turns, uint64(3))
	require.Positive(t, st.Sleeps)
}
