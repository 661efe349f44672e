package msgr_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// exampleServer starts an OSD-named messenger on loopback that answers
// every message (pong).
func exampleServer() *msgr.Messenger {
	server, err := msgr.New(config.Default(), msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 0})
	if err != nil {
		panic(err)
	}
	server.AddDispatcherTail(&pong{})
	if err := server.Bind("127.0.0.1:0"); err != nil {
		panic(err)
	}
	if err := server.Start(); err != nil {
		panic(err)
	}
	return server
}

func exampleClient(ds ...msgr.Dispatcher) *msgr.Messenger {
	client, err := msgr.New(config.Default(), msgr.EntityName{Type: msgr.EntityTypeClient, Num: 1})
	if err != nil {
		panic(err)
	}
	for _, d := range ds {
		client.AddDispatcherTail(d)
	}
	if err := client.Start(); err != nil {
		panic(err)
	}
	return client
}

// Waiting until a connection's session is established, with a deadline.
func ExampleConnection_WaitReady() {
	server := exampleServer()
	defer server.Shutdown()
	client := exampleClient()
	defer client.Shutdown()

	conn, _ := client.ConnectTo(msgr.EntityTypeOSD, server.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.WaitReady(ctx); err != nil {
		fmt.Println("not ready:", err)
		return
	}
	fmt.Println("ready:", conn.IsConnected(), conn.PeerName())
	// Output: ready: true osd.0
}

// Connecting with a deadline: nothing listens on the second address, so
// the lossless connection keeps retrying until the context ends.
func ExampleMessenger_ConnectContext() {
	server := exampleServer()
	defer server.Shutdown()
	client := exampleClient()
	defer client.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.ConnectContext(ctx, server.Addr().String())
	fmt.Println(conn.IsConnected(), err)

	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	nowhere := "127.0.0.1:1"
	_, err = client.ConnectContext(short, nowhere)
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	client.MarkDown(nowhere) // stop its retries
	// Output:
	// true <nil>
	// true
}

// Sending with back-pressure: SendMessageContext waits while the
// connection's send queue holds WithSendQueueBytes or more (SendMessage
// never waits).
func ExampleConnection_SendMessageContext() {
	server := exampleServer()
	defer server.Shutdown()
	replies := make(chan *msgr.Message, 100)
	client, _ := msgr.New(config.Default(), msgr.EntityName{Type: msgr.EntityTypeClient, Num: 1},
		msgr.WithSendQueueBytes(256<<10))
	client.AddDispatcherTail(&catcher{ch: replies})
	_ = client.Start()
	defer client.Shutdown()

	conn, _ := client.Connect(server.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 100; i++ {
		m := &msgr.Message{Type: 1, Front: []byte("chunk"), Data: make([]byte, 64<<10)}
		if err := conn.SendMessageContext(ctx, m); err != nil {
			fmt.Println("send:", err)
			return
		}
	}
	for i := 0; i < 100; i++ {
		<-replies
	}
	fmt.Println("100 replies")
	// Output: 100 replies
}

// Shutting down with a deadline.
func ExampleMessenger_ShutdownContext() {
	server := exampleServer()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Println("shut down:", server.ShutdownContext(ctx))
	// Output: shut down: <nil>
}

// giveUp stops connecting to a peer that refuses (Ceph's
// ms_handle_refused).
type giveUp struct {
	msgr.BaseDispatcher
	refused chan string
}

func (g *giveUp) MsHandleRefused(c *msgr.Connection) bool {
	c.MarkDown() // a lossless connection would retry forever, backing off
	g.refused <- c.Target()
	return true
}

// Hearing that a peer refuses connections.
func ExampleRefusedHandler() {
	g := &giveUp{refused: make(chan string, 1)}
	client := exampleClient(g)
	defer client.Shutdown()

	conn, _ := client.Connect("127.0.0.1:1") // nothing listens there
	fmt.Println("refused:", <-g.refused)
	<-conn.Closed()
	fmt.Println("closed:", errors.Is(conn.Err(), syscall.ECONNREFUSED))
	// Output:
	// refused: 127.0.0.1:1
	// closed: true
}

// Knowing when a sent message's buffers may be reused: OnDone runs once the
// peer acknowledged it (lossless), it was written (lossy), or it was
// dropped.
func ExampleMessage_OnDone() {
	server := exampleServer()
	defer server.Shutdown()
	client := exampleClient()
	defer client.Shutdown()

	done := make(chan error, 1)
	buf := []byte("reuse me once done")
	m := &msgr.Message{Type: 1, Data: buf, OnDone: func(_ *msgr.Message, err error) { done <- err }}
	_ = client.SendMessage(m, server.Addr().String())
	fmt.Println("done:", <-done)
	copy(buf, "free to overwrite")
	// Output: done: <nil>
}
