package netstack

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// CreateFileEvent adds mask to the interest set of fd and makes h the handler
// for the bits in mask (replacing an earlier handler for the same bit).
// Events are level-triggered. Loop goroutine only.
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
// an error. Loop goroutine only.
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

// dispatchFiles runs the handlers of the first n collected epoll events and
// reports whether the wake-up eventfd was among them.
func (c *EventCenter) dispatchFiles(n int) (woken bool) {
	for i := 0; i < n; i++ {
		ev := c.events[i]
		fd := int(ev.Fd)
		if fd == c.wakefd {
			woken = true
			continue
		}
		c.dispatchFile(fd, ev.Events)
	}
	return woken
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
