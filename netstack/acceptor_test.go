package netstack

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

// captureLog returns a logger writing into a buffer; the loop writes it and
// the test reads it after a Submit, which orders the two.
func captureLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// TestAcceptorBacksOff drives the back-off by hand (no waiting on timers):
// a failure stops watching the still-readable fd and schedules one retry,
// each retry that fails doubles the delay up to 1 s, the episode is logged
// once when it starts and once when accepting works again.
func TestAcceptorBacksOff(t *testing.T) {
	c := startCenter(t)
	r, w := pipe(t)
	_, err := unix.Write(w, []byte("x")) // readable for good, like a listener with a queue
	require.NoError(t, err)
	log, buf := captureLog()
	calls := 0
	fail := true
	var a *Acceptor
	require.NoError(t, c.Submit(func() {
		a = NewAcceptor(c, r, "test", log, func() error {
			calls++
			if fail {
				return os.NewSyscallError("accept4", unix.EMFILE)
			}
			if calls%2 == 0 {
				return nil
			}
			return ErrWouldBlock
		})
		require.NoError(t, a.Watch())
	}))
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	checked := false
	// Everything below runs in one loop turn, so no retry timer fires in
	// between; the test plays the timer's part itself from there on. Before
	// that turn a loaded machine may have let a timer or two fire (5 ms,
	// then 10 ms): the sequence is checked from where it stands.
	check := func() {
		if !a.Paused() {
			return
		}
		checked = true
		if a.watching {
			a.drain() // a retry timer resumed it: the next turn would do this
		}
		require.False(t, a.watching, "accept still watched while the fd stays readable")
		require.Equal(t, 1, c.PendingTimeEvents())
		require.LessOrEqual(t, calls, len(want))
		for i := calls - 1; i < len(want); i++ {
			ms := want[i]
			require.Equal(t, ms*time.Millisecond, a.backoff, "back-off after failure %d", i+1)
			// What the retry timer does, without waiting for it.
			c.DeleteTimeEvent(a.timer)
			a.resume()
			require.True(t, a.watching)
			a.drain() // the fd is readable: the next turn would do this
			require.Equal(t, i+2, calls, "accept called again while the fd stayed readable")
			require.Equal(t, 1, c.PendingTimeEvents())
		}
		fail = false
		c.DeleteTimeEvent(a.timer)
		a.resume()
		a.drain()
		require.False(t, a.Paused())
		require.True(t, a.watching)
		a.Stop()
		a.Stop()
		require.False(t, a.watching)
		require.Equal(t, 0, c.PendingTimeEvents())
	}
	testenv.WaitFor(t, waitLimit, "the first failure", func() bool {
		require.NoError(t, c.Submit(check))
		return checked
	}, func() string { return "" })
	logs := buf.String()
	require.Equal(t, 1, strings.Count(logs, "accept failing"), logs)
	require.Equal(t, 1, strings.Count(logs, "accepting again"), logs)
	require.Contains(t, logs, "too many open files")
}

// TestAcceptorEMFILE: a real listener with a client queued while the
// process is out of descriptors. Accepting must not spin (the listener stays
// readable) and must resume once a descriptor is free.
func TestAcceptorEMFILE(t *testing.T) {
	c := startCenter(t)
	lfd, sa := testenv.LoopbackListener(t, unix.SOCK_NONBLOCK, 16)
	cfd := testenv.TCPSocket(t, 0)
	require.NoError(t, unix.Connect(cfd, sa)) // queued in the backlog

	// Use up every descriptor under a lowered soft limit.
	var lim unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &lim))
	t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &lim) })
	low := lim
	low.Cur = 256
	if lim.Cur < low.Cur {
		low.Cur = lim.Cur
	}
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &low))
	var hogs []int
	t.Cleanup(func() {
		for _, fd := range hogs {
			unix.Close(fd)
		}
	})
	for {
		fd, err := unix.Dup(lfd)
		if err != nil {
			require.ErrorIs(t, err, unix.EMFILE)
			break
		}
		hogs = append(hogs, fd)
	}
	require.GreaterOrEqual(t, len(hogs), 2)

	log, buf := captureLog()
	var calls atomic.Int64
	accepted := make(chan int, 1)
	var a *Acceptor
	require.NoError(t, c.Submit(func() {
		a = NewAcceptor(c, lfd, "emfile", log, func() error {
			calls.Add(1)
			nfd, err := AcceptNonblock(lfd)
			if err == nil {
				accepted <- nfd
			}
			return err
		})
		require.NoError(t, a.Watch())
	}))
	testenv.WaitFor(t, waitLimit, "accept to fail", func() bool { return calls.Load() > 0 }, func() string { return "" })
	// Spinning would make thousands of calls in this time; backing off,
	// at most a handful (fewer still on a slow machine).
	time.Sleep(150 * time.Millisecond)
	require.LessOrEqual(t, calls.Load(), int64(8), "accept retried without backing off")

	// Free two descriptors: the next retry takes the queued client, and the
	// accept after it finds the queue empty (Linux reserves the descriptor
	// before looking at the queue, so with none left it would report EMFILE
	// again, rightly).
	for _, fd := range hogs[len(hogs)-2:] {
		unix.Close(fd)
	}
	hogs = hogs[:len(hogs)-2]
	select {
	case nfd := <-accepted:
		unix.Close(nfd)
	case <-time.After(waitLimit):
		t.Fatal("the queued client was not accepted once a descriptor was free")
	}
	require.NoError(t, c.Submit(func() {
		require.False(t, a.Paused())
		a.Stop()
	}))
	logs := buf.String()
	require.Equal(t, 1, strings.Count(logs, "accept failing"), logs)
	require.Equal(t, 1, strings.Count(logs, "accepting again"), logs)
}
