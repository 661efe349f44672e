package netstack

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestErrorsOneLine: the closed and joined errors print on one line and
// still match every error they carry.
func TestErrorsOneLine(t *testing.T) {
	require.Equal(t, "netstack: stack stopped", ErrStackStopped.Error())
	require.ErrorIs(t, ErrStackStopped, net.ErrClosed)
	wrapped := fmt.Errorf("read: %w", ErrStackStopped)
	require.Equal(t, "read: netstack: stack stopped", wrapped.Error())
	require.ErrorIs(t, wrapped, ErrStackStopped)
	require.ErrorIs(t, wrapped, net.ErrClosed)

	eof := Closed(io.EOF)
	require.Equal(t, "EOF", eof.Error())
	require.ErrorIs(t, eof, io.EOF)
	require.ErrorIs(t, eof, net.ErrClosed)
	require.NoError(t, Closed(nil))

	require.NoError(t, JoinErrors(nil, nil))
	require.Equal(t, io.EOF, JoinErrors(nil, io.EOF))
	j := JoinErrors(io.EOF, nil, fmt.Errorf("close: %w", unix.EBADF))
	require.Equal(t, "EOF; close: bad file descriptor", j.Error())
	require.ErrorIs(t, j, io.EOF)
	require.ErrorIs(t, j, unix.EBADF)
	var errno unix.Errno
	require.True(t, errors.As(j, &errno))
}
