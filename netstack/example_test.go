package netstack_test

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// ExampleEventCenter registers a pipe's read end on an event centre, then
// uses a time event and external work, all of which run on the centre's one
// goroutine.
func ExampleEventCenter() {
	c, err := netstack.NewEventCenter("example")
	if err != nil {
		panic(err)
	}
	c.Start()
	defer c.Stop()

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		panic(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])

	done := make(chan struct{})
	// File and time events are created on the owner goroutine, so from a
	// function handed to Submit (or DispatchExternal).
	c.Submit(func() {
		c.CreateFileEvent(p[0], netstack.EventReadable, func(fd int, _ netstack.EventMask) {
			buf := make([]byte, 16)
			n, _ := unix.Read(fd, buf)
			fmt.Printf("readable: %s\n", buf[:n])
			c.DeleteFileEvent(fd, netstack.EventReadable)
			c.CreateTimeEvent(time.Millisecond, func() {
				fmt.Println("timer fired")
				close(done)
			})
		})
	})
	unix.Write(p[1], []byte("ping"))
	<-done
	// Output:
	// readable: ping
	// timer fired
}
