package netstack

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

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
