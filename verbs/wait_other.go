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

// FDWaiter waits for an event fd through the netpoller; not supported off Linux.
type FDWaiter struct{}

// NewFDWaiter is not supported off Linux.
func NewFDWaiter(fd int) (*FDWaiter, error) { return nil, notSupported("netpoller") }

// Wait is not supported off Linux.
func (w *FDWaiter) Wait(deadline time.Time) error { return notSupported("netpoller") }

// Close is a no-op off Linux.
func (w *FDWaiter) Close() error { return nil }
