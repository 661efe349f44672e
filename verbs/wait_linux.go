//go:build linux

package verbs

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const ebusy = unix.EBUSY

// WaitReadable waits until fd (a non-blocking completion-channel, async-event
// or rdma_cm event fd) is readable, for at most timeout (negative: forever).
// It parks the goroutine in poll(2), never inside a C call. It reports false
// on timeout.
func WaitReadable(fd int, timeout time.Duration) (bool, error) {
	if fd < 0 {
		return false, closedErr("poll")
	}
	deadline := time.Now().Add(timeout)
	for {
		ms := -1
		if timeout >= 0 {
			left := time.Until(deadline)
			if left < 0 {
				left = 0
			}
			ms = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds[:], ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, opErr("poll", err)
		}
		if n == 0 {
			return false, nil
		}
		if fds[0].Revents&(unix.POLLNVAL) != 0 {
			return false, closedErr("poll")
		}
		return true, nil
	}
}

// FDWaiter waits for a non-blocking event fd (completion channel, async
// events, rdma_cm channel) to become readable through the Go netpoller: the
// waiting goroutine is parked by the runtime, no OS thread is blocked. It
// watches a duplicate of the fd, so Close never closes the original; close the
// waiter before the object owning the fd.
type FDWaiter struct {
	f  *os.File
	rc syscall.RawConn
}

// NewFDWaiter registers (a duplicate of) fd with the netpoller.
func NewFDWaiter(fd int) (*FDWaiter, error) {
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, opErr("dup event fd", err)
	}
	if err := unix.SetNonblock(d, true); err != nil {
		unix.Close(d)
		return nil, opErr("fcntl O_NONBLOCK", err)
	}
	f := os.NewFile(uintptr(d), fmt.Sprintf("verbs-event-fd-%d", fd))
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, opErr("netpoller", err)
	}
	return &FDWaiter{f: f, rc: rc}, nil
}

// Wait returns nil once the fd is readable, or an error with Timeout() true
// (os.ErrDeadlineExceeded) when deadline passes first; a zero deadline waits
// forever. It does not consume anything: call the matching GetEvent next.
func (w *FDWaiter) Wait(deadline time.Time) error {
	if w == nil || w.f == nil {
		return closedErr("wait event fd")
	}
	if err := w.f.SetReadDeadline(deadline); err != nil {
		return err
	}
	var perr error
	err := w.rc.Read(func(fd uintptr) bool {
		fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds[:], 0)
		if err != nil && !errors.Is(err, unix.EINTR) {
			perr = err
			return true
		}
		return n > 0 // not readable yet: park in the netpoller until it is
	})
	if err != nil {
		return err
	}
	return opErr("poll", perr)
}

// Close unregisters the waiter; idempotent and nil-safe.
func (w *FDWaiter) Close() error {
	if w == nil || w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
