package netconn_test

import (
	"fmt"
	"io"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/asyncmsgr/asyncmsgr/netstack/netconn"
	_ "github.com/asyncmsgr/asyncmsgr/posixfallback" // registers "posix"
)

// Example dials a listener over the posix stack and echoes one message, using
// the adapters as an ordinary net.Conn and net.Listener.
func Example() {
	cfg := config.Default()
	cfg.TransportType = "posix"
	stack, err := netstack.New(cfg)
	if err != nil {
		panic(err)
	}
	if err := stack.Start(); err != nil {
		panic(err)
	}
	defer stack.Stop()

	l, err := netconn.Listen(stack, "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) // echo until the client half-closes
	}()

	c, err := netconn.Dial(stack, l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Fprint(c, "hello over "+stack.Name())
	c.CloseWrite()
	reply, err := io.ReadAll(c)
	fmt.Println(string(reply), err)
	// Output: hello over posix <nil>
}
