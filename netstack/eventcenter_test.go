package netstack

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func startCenter(t *testing.T) *EventCenter {
	t.Helper()
	c, err := NewEventCenter(t.Name())
	require.NoError(t, err)
	c.Start()
	t.Cleanup(func() { require.NoError(t, c.Stop()) })
	return c
}

// minAllocs is the lowest of a few testing.AllocsPerRun(200, f) measurements.
func minAllocs(f func()) float64 {
	best := testing.AllocsPerRun(200, f)
	for i := 0; i < 4 && best > 0; i++ {
		best = min(best, testing.AllocsPerRun(200, f))
	}
	return best
}

func pipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

func TestFileEventReadable(t *testing.T) {
	c := startCenter(t)
	r, w := pipe(t)
	got := make(chan []byte, 1)
	fired := 0 // owner goroutine only
	require.NoError(t, c.Submit(func() {
		require.NoError(t, c.CreateFileEvent(r, EventReadable, func(fd int, mask EventMask) {
			fired++
			require.Equal(t, r, fd)
			require.Equal(t, EventReadable, mask)
			buf := make([]byte, 16)
			n, err := unix.Read(fd, buf)
			require.NoError(t, err)
			got <- buf[:n]
		}))
	}))
	_, err := unix.Write(w, []byte("ping"))
	require.NoError(t, err)
	require.Equal(t, []byte("ping"), <-got)

	// Level-triggered: unread data keeps firing until the event is deleted.
	var counts []int
	require.NoError(t, c.Submit(func() {
		require.NoError(t, c.DeleteFileEvent(r, EventReadable))
		require.NoError(t, c.CreateFileEvent(r, EventReadable, func(fd int, mask EventMask) {
			fired++
			if fired == 5 {
				require.NoError(t, c.DeleteFileEvent(fd, EventReadable))
				got <- nil
			}
		}))
	}))
	_, err = unix.Write(w, []byte("x"))
	require.NoError(t, err)
	<-got
	// After deletion, further turns of the loop must not call the handler
	// although the byte is still unread.
	for i := 0; i < 20; i++ {
		require.NoError(t, c.Submit(func() { counts = append(counts, fired) }))
	}
	require.NoError(t, c.Submit(func() {}))
	for _, n := range counts {
		require.Equal(t, 5, n)
	}
}

func TestFileEventReadWriteHandlers(t *testing.T) {
	c := startCenter(t)
	r, w := pipe(t)
	type hit struct {
		fd   int
		mask EventMask
		who  string
	}
	hits := make(chan hit, 8)
	require.NoError(t, c.Submit(func() {
		// Writable fires at once on an empty pipe; delete it when it does.
		require.NoError(t, c.CreateFileEvent(w, EventWritable, func(fd int, m EventMask) {
			hits <- hit{fd, m, "w"}
			require.NoError(t, c.DeleteFileEvent(fd, EventWritable))
		}))
	}))
	require.Equal(t, hit{w, EventWritable, "w"}, <-hits)

	// Both bits on one fd with separate handlers, then remove one.
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	require.NoError(t, err)
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	_, err = unix.Write(sp[1], []byte("a"))
	require.NoError(t, err)
	require.NoError(t, c.Submit(func() {
		require.NoError(t, c.CreateFileEvent(sp[0], EventReadable, func(fd int, m EventMask) {
			hits <- hit{fd, m, "r"}
			require.NoError(t, c.DeleteFileEvent(fd, EventReadable))
		}))
		require.NoError(t, c.CreateFileEvent(sp[0], EventWritable, func(fd int, m EventMask) {
			hits <- hit{fd, m, "w"}
			require.NoError(t, c.DeleteFileEvent(fd, EventWritable))
		}))
	}))
	a, b := <-hits, <-hits
	require.ElementsMatch(t, []hit{{sp[0], EventReadable, "r"}, {sp[0], EventWritable, "w"}}, []hit{a, b})
	_ = r

	// Errors: bad arguments, and deleting the unknown is fine.
	require.NoError(t, c.Submit(func() {
		require.ErrorIs(t, c.CreateFileEvent(-1, EventReadable, func(int, EventMask) {}), unix.EINVAL)
		require.ErrorIs(t, c.CreateFileEvent(r, 0, func(int, EventMask) {}), unix.EINVAL)
		require.ErrorIs(t, c.CreateFileEvent(r, EventReadable, nil), unix.EINVAL)
		require.NoError(t, c.DeleteFileEvent(12345, EventReadable))
		require.NoError(t, c.DeleteFileEvent(r, EventReadable|EventWritable))
	}))
}

func TestFileEventClosedFDReuse(t *testing.T) {
	c := startCenter(t)
	r, w := pipe(t)
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
	hits := make(chan int, 4)
	require.NoError(t, c.Submit(func() {
		require.NoError(t, c.CreateFileEvent(p[0], EventReadable, func(fd int, m EventMask) {}))
	}))
	// Close without DeleteFileEvent, then get the same number back.
	unix.Close(p[0])
	unix.Close(p[1])
	nfd, err := unix.Dup(r)
	require.NoError(t, err)
	defer unix.Close(nfd)
	require.NoError(t, c.Submit(func() {
		require.NoError(t, c.CreateFileEvent(nfd, EventWritable|EventReadable, func(fd int, m EventMask) {
			require.NoError(t, c.DeleteFileEvent(fd, EventReadable|EventWritable))
			hits <- fd
		}))
	}))
	_, err = unix.Write(w, []byte("z"))
	require.NoError(t, err)
	require.Equal(t, nfd, <-hits)
}

func TestTimeEventsOrder(t *testing.T) {
	c := startCenter(t)
	var order []string // owner goroutine only
	done := make(chan struct{})
	require.NoError(t, c.Submit(func() {
		add := func(d time.Duration, name string) TimerID {
			return c.CreateTimeEvent(d, func() {
				order = append(order, name)
				if name == "last" {
					close(done)
				}
			})
		}
		add(40*time.Millisecond, "last")
		add(20*time.Millisecond, "20ms")
		cancelled := add(10*time.Millisecond, "cancelled")
		add(0, "now-a")
		add(-time.Second, "past")
		add(0, "now-b")
		add(10*time.Millisecond, "10ms")
		c.DeleteTimeEvent(cancelled)
		c.DeleteTimeEvent(cancelled) // twice is harmless
		c.DeleteTimeEvent(0)
	}))
	<-done
	require.NoError(t, c.Submit(func() {
		require.Equal(t, []string{"past", "now-a", "now-b", "10ms", "20ms", "last"}, order)
		require.Equal(t, 0, c.PendingTimeEvents())
	}))
}

// TestTimeEventTies: events with the very same deadline run in creation
// order, whatever the heap shape.
func TestTimeEventTies(t *testing.T) {
	c := startCenter(t)
	var ran []int
	done := make(chan struct{})
	require.NoError(t, c.Submit(func() {
		at := time.Now().Add(5 * time.Millisecond)
		c.createTimerAt(at.Add(time.Millisecond), func() { close(done) })
		for i := 0; i < 50; i++ {
			c.createTimerAt(at, func() { ran = append(ran, i) })
		}
	}))
	<-done
	require.NoError(t, c.Submit(func() {
		require.Len(t, ran, 50)
		for i, v := range ran {
			require.Equal(t, i, v)
		}
	}))
}

func TestTimeEventHeapRandom(t *testing.T) {
	c := startCenter(t)
	// Many timers created and half deleted; the survivors must run in
	// deadline order (ties in creation order).
	type rec struct {
		d   time.Duration
		seq int
	}
	var ran []rec
	done := make(chan struct{})
	const n = 200
	require.NoError(t, c.Submit(func() {
		ids := make([]TimerID, 0, n)
		left := 0
		// One base time: deadlines must not depend on how long creating the
		// timers takes (with time.Now per timer, a slow machine reorders
		// deadlines 1 ms apart).
		base := time.Now()
		for i := 0; i < n; i++ {
			d := time.Duration((i*7919)%23) * time.Millisecond
			r := rec{d, i}
			ids = append(ids, c.createTimerAt(base.Add(d), func() {
				ran = append(ran, r)
				left--
				if left == 0 {
					close(done)
				}
			}))
		}
		for i := 0; i < n; i += 2 {
			c.DeleteTimeEvent(ids[i])
		}
		left = n / 2
	}))
	<-done
	require.NoError(t, c.Submit(func() {
		require.Len(t, ran, n/2)
		for i := 1; i < len(ran); i++ {
			a, b := ran[i-1], ran[i]
			require.True(t, a.d < b.d || (a.d == b.d && a.seq < b.seq), "timer %v ran before %v", a, b)
			require.Equal(t, 1, b.seq%2)
		}
	}))
}

func TestDispatchExternalManyGoroutines(t *testing.T) {
	c := startCenter(t)
	const goroutines, per = 16, 2000
	counter := 0                    // owner goroutine only: -race checks it
	last := make([]int, goroutines) // per-goroutine FIFO check, owner only
	var wg sync.WaitGroup
	var orderErr error
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= per; i++ {
				require.NoError(t, c.DispatchExternal(func() {
					counter++
					if last[g] != i-1 && orderErr == nil {
						orderErr = errors.New("out of order")
					}
					last[g] = i
				}))
			}
		}()
	}
	wg.Wait()
	var got int
	require.NoError(t, c.Submit(func() { got = counter }))
	require.Equal(t, goroutines*per, got)
	require.NoError(t, orderErr)
}

// TestSubmitRunsOnLoop: Submit runs f on the loop and returns after it ran;
// code on the loop may DispatchExternal (it never waits) and use the
// loop-only methods directly.
func TestSubmitRunsOnLoop(t *testing.T) {
	c := startCenter(t)
	ran := false
	again := make(chan struct{})
	require.NoError(t, c.Submit(func() {
		ran = true
		require.NoError(t, c.DispatchExternal(func() { close(again) }))
		c.DeleteTimeEvent(c.CreateTimeEvent(time.Hour, func() {}))
		require.Equal(t, 0, c.PendingTimeEvents())
	}))
	require.True(t, ran)
	<-again
	require.Equal(t, t.Name(), c.Name())
}

func TestStopRunsAcceptedWorkAndRefusesLater(t *testing.T) {
	c, err := NewEventCenter("stop")
	require.NoError(t, err)
	c.Start()
	block := make(chan struct{})
	require.NoError(t, c.DispatchExternal(func() { <-block }))
	ran := 0
	for i := 0; i < 100; i++ {
		require.NoError(t, c.DispatchExternal(func() { ran++ }))
	}
	var timerRan bool
	require.NoError(t, c.DispatchExternal(func() { c.CreateTimeEvent(time.Hour, func() { timerRan = true }) }))
	stopped := make(chan error)
	go func() { stopped <- c.Stop() }()
	close(block)
	require.NoError(t, <-stopped)
	require.Equal(t, 100, ran)
	require.False(t, timerRan)

	err = c.DispatchExternal(func() {})
	require.ErrorIs(t, err, ErrStackStopped)
	require.ErrorIs(t, err, net.ErrClosed)
	require.ErrorIs(t, c.Submit(func() {}), ErrStackStopped)
	require.NoError(t, c.Stop())
	c.Start() // no effect after Stop
	require.ErrorIs(t, c.DispatchExternal(func() {}), ErrStackStopped)
}

func TestStopNeverStarted(t *testing.T) {
	c, err := NewEventCenter("idle")
	require.NoError(t, err)
	require.NoError(t, c.DispatchExternal(func() { t.Error("ran on a centre that never started") }))
	submitted := make(chan error)
	go func() { submitted <- c.Submit(func() { t.Error("ran") }) }()
	require.NoError(t, c.Stop())
	require.ErrorIs(t, <-submitted, ErrStackStopped)
	require.NoError(t, c.Stop())
}

func TestStopLeavesNoGoroutine(t *testing.T) {
	settle := func() int {
		runtime.GC()
		return runtime.NumGoroutine()
	}
	before := settle()
	for i := 0; i < 20; i++ {
		c, err := NewEventCenter("g")
		require.NoError(t, err)
		c.Start()
		c.Start()
		require.NoError(t, c.Submit(func() { c.CreateTimeEvent(time.Hour, func() {}) }))
		var wg sync.WaitGroup
		for j := 0; j < 3; j++ { // concurrent Stops all return after the loop exits
			wg.Add(1)
			go func() { defer wg.Done(); require.NoError(t, c.Stop()) }()
		}
		wg.Wait()
		require.ErrorIs(t, c.Submit(func() {}), ErrStackStopped)
	}
	// The owner goroutines exited before Stop returned, so no waiting is
	// needed; the helper goroutines above may still be unwinding.
	deadline := time.Now().Add(10 * time.Second)
	for settle() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, settle(), before)
}

func TestEventMaskString(t *testing.T) {
	for _, tc := range []struct {
		m    EventMask
		want string
	}{{0, "none"}, {EventReadable, "r"}, {EventWritable, "w"}, {EventReadable | EventWritable, "rw"}} {
		require.Equal(t, tc.want, tc.m.String())
	}
}

// BenchmarkDispatchExternal measures queueing plus the eventfd wake-up; it
// reports allocations (the steady state should allocate nothing).
func BenchmarkDispatchExternal(b *testing.B) {
	c, err := NewEventCenter("bench")
	require.NoError(b, err)
	c.Start()
	defer c.Stop()
	f := func() {}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := c.DispatchExternal(f); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, c.Submit(func() {}))
}

// BenchmarkFileEventPingPong bounces one byte between two fds registered on
// one centre: the cost of one epoll turn plus handler dispatch.
func BenchmarkFileEventPingPong(b *testing.B) {
	c, err := NewEventCenter("bench")
	require.NoError(b, err)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	require.NoError(b, err)
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	c.Start()
	defer c.Stop() // before the fds close: runs first
	done := make(chan struct{})
	n := b.N
	var buf [1]byte
	h := func(fd int, _ EventMask) {
		if m, err := unix.Read(fd, buf[:]); err != nil || m != 1 {
			return
		}
		if fd == sp[0] {
			n--
			if n <= 0 {
				close(done)
				return
			}
		}
		_, _ = unix.Write(fd, buf[:]) // reaches the other end
	}
	b.ReportAllocs()
	b.ResetTimer()
	require.NoError(b, c.Submit(func() {
		require.NoError(b, c.CreateFileEvent(sp[0], EventReadable, h))
		require.NoError(b, c.CreateFileEvent(sp[1], EventReadable, h))
		_, _ = unix.Write(sp[0], buf[:])
	}))
	<-done
}

// TestSteadyStateNoAlloc checks that a file-event round trip through the loop
// and DispatchExternal of a prepared function allocate nothing once warm.
// AllocsPerRun counts the whole process's allocations, so a busy machine
// (other goroutines, the race detector's bookkeeping) can add stray ones to
// one measurement; minAllocs takes the best of a few, which stays above zero
// only when every run allocates.
func TestSteadyStateNoAlloc(t *testing.T) {
	c := startCenter(t)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	require.NoError(t, err)
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	got := make(chan struct{}, 1)
	var rbuf [1]byte
	require.NoError(t, c.Submit(func() {
		require.NoError(t, c.CreateFileEvent(sp[1], EventReadable, func(fd int, _ EventMask) {
			_, _ = unix.Read(fd, rbuf[:])
			got <- struct{}{}
		}))
	}))
	one := []byte{1}
	roundTrip := func() {
		_, _ = unix.Write(sp[0], one)
		<-got
	}
	for i := 0; i < 100; i++ {
		roundTrip()
	}
	require.Zero(t, minAllocs(roundTrip), "file event round trip allocates")

	done := make(chan struct{}, 1)
	f := func() { done <- struct{}{} }
	dispatch := func() {
		_ = c.DispatchExternal(f)
		<-done
	}
	for i := 0; i < 100; i++ {
		dispatch()
	}
	require.Zero(t, minAllocs(dispatch), "DispatchExternal allocates")

	// A time event (which also moves the poller deadline) once warm.
	fire := func() { done <- struct{}{} }
	schedule := func() { c.CreateTimeEvent(50*time.Microsecond, fire) }
	timerTrip := func() {
		_ = c.DispatchExternal(schedule)
		<-done
	}
	for i := 0; i < 100; i++ {
		timerTrip()
	}
	require.Zero(t, minAllocs(timerTrip), "time event allocates")
}

// Time events fire while the loop never parks (an fd stays readable and its
// handler does not drain it), and a chain of zero-delay timers advances on
// an otherwise idle loop: the loop reads the clock whenever a timer may be
// due, not only when its wait times out.
func TestTimeEventsBusyAndIdleLoop(t *testing.T) {
	tests := []struct {
		name string
		busy bool
	}{
		{"idle loop", false},
		{"loop never parks", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := startCenter(t)
			r, w := pipe(t)
			if tc.busy {
				_, err := unix.Write(w, []byte("x")) // readable for good
				require.NoError(t, err)
				require.NoError(t, c.Submit(func() {
					require.NoError(t, c.CreateFileEvent(r, EventReadable, func(int, EventMask) {}))
				}))
			}
			done := make(chan int, 1)
			var hops int
			var hop func()
			hop = func() {
				hops++
				if hops == 100 {
					done <- hops
					return
				}
				c.CreateTimeEvent(0, hop)
			}
			require.NoError(t, c.Submit(func() {
				c.CreateTimeEvent(2*time.Millisecond, func() { c.CreateTimeEvent(0, hop) })
			}))
			select {
			case n := <-done:
				require.Equal(t, 100, n)
			case <-time.After(10 * time.Second):
				t.Fatal("time events did not run")
			}
			require.NoError(t, c.Submit(func() { require.NoError(t, c.DeleteFileEvent(r, EventReadable)) }))
		})
	}
}
