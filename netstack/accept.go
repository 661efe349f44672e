package netstack

import (
	"os"

	"golang.org/x/sys/unix"
)

// AcceptNonblock accepts one pending connection on the non-blocking
// listening socket fd, returning a non-blocking, close-on-exec fd. It
// retries EINTR and ECONNABORTED (a peer that gave up while queued), and
// returns ErrWouldBlock when nothing is pending; other errors are wrapped as
// *os.SyscallError. Stacks whose ServerSocket sits on a TCP listener (posix,
// and rdma's side channel) share it.
func AcceptNonblock(fd int) (int, error) {
	for {
		nfd, _, err := unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
			return nfd, nil
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EAGAIN:
			return -1, ErrWouldBlock
		default:
			return -1, os.NewSyscallError("accept4", err)
		}
	}
}
