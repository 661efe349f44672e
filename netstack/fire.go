package netstack

import "golang.org/x/sys/unix"

// FireReadable runs fd's read handler now, as a readiness event from epoll
// would (nothing when none is registered). Loop goroutine only: a Poller
// that learnt on the loop that a socket became readable (an RDMA receive
// completion) calls it to run the socket's handler inline, without a
// round trip through the socket's eventfd and epoll.
func (c *EventCenter) FireReadable(fd int) {
	c.dispatchFile(fd, unix.EPOLLIN)
}
