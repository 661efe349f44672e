package testenv

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TCPSocket is a raw IPv4 TCP socket (SOCK_CLOEXEC and the socket type
// flags extra, e.g. unix.SOCK_NONBLOCK), closed when the test ends.
func TCPSocket(t testing.TB, extra int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|extra, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// LoopbackListener is a raw TCPSocket listening on 127.0.0.1 (a port the
// kernel picks) with backlog; it returns the fd and the bound address.
func LoopbackListener(t testing.TB, extra, backlog int) (int, *unix.SockaddrInet4) {
	t.Helper()
	fd := TCPSocket(t, extra)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatalf("listen: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return fd, sa.(*unix.SockaddrInet4)
}
