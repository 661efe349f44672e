//go:build linux

package verbs

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestWaitHelpers(t *testing.T) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	require.NoError(t, err)
	defer unix.Close(efd)

	ok, err := WaitReadable(efd, 0)
	require.NoError(t, err)
	require.False(t, ok)

	w, err := NewFDWaiter(efd)
	require.NoError(t, err)
	err = w.Wait(time.Now().Add(20 * time.Millisecond))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout())

	done := make(chan error, 1)
	go func() { done <- w.Wait(time.Time{}) }()
	_, err = unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	require.NoError(t, err)
	require.NoError(t, <-done)
	// Wait does not consume: the fd is still readable.
	require.NoError(t, w.Wait(time.Now().Add(time.Second)))
	ok, err = WaitReadable(efd, time.Second)
	require.NoError(t, err)
	require.True(t, ok)

	require.NoError(t, w.Close())
	require.NoError(t, w.Close())
	require.ErrorIs(t, w.Wait(time.Time{}), net.ErrClosed)
	// The original fd stays open.
	var buf [8]byte
	_, err = unix.Read(efd, buf[:])
	require.NoError(t, err)

	_, err = WaitReadable(-1, 0)
	require.ErrorIs(t, err, net.ErrClosed)
}
