//go:build !linux

package verbs

import (
	"syscall"
	"time"
)

const ebusy = syscall.EBUSY

// WaitReadable waits until fd is readable; not supported off Linux.
func WaitReadable(fd int, timeout time.Duration) (bool, error) {
	return false, notSupported("poll")
}
