//go:build linux

package verbs

import (
	"errors"
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
