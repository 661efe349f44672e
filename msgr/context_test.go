package msgr_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
)

func TestWaitReady(t *testing.T) {
	srv, cli := newPair(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cli.ConnectContext(ctx, srv.Addr().String())
	require.NoError(t, err)
	require.True(t, c.IsConnected())
	require.NoError(t, c.WaitReady(ctx), "already ready")

	// A lossless connection to nowhere: the deadline ends the wait, not the
	// connection.
	short, cancel2 := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel2()
	addr := closedPort(t)
	_, err = cli.ConnectContext(short, addr)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	nc, err := cli.Connect(addr)
	require.NoError(t, err)
	select {
	case <-nc.Closed():
		t.Fatal("the deadline closed the connection")
	default:
	}
	// Closing it ends a wait with its error.
	errc := make(chan error, 1)
	go func() { errc <- nc.WaitReady(context.Background()) }()
	nc.MarkDown()
	select {
	case err := <-errc:
		require.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("WaitReady did not return when the connection closed")
	}
	canceled, cancel3 := context.WithCancel(context.Background())
	cancel3()
	_, err = cli.ConnectContext(canceled, srv.Addr().String())
	require.ErrorIs(t, err, context.Canceled)
}

// stall blocks the server's event centre in the first message's fast
// dispatch until released, so the client's socket fills and its send queue
// stops draining.
type stall struct {
	msgr.BaseDispatcher
	held    chan struct{}
	release chan struct{}
	got     chan struct{}
	first   bool
}

func (s *stall) CanFastDispatch(*msgr.Message) bool { return true }
func (s *stall) FastDispatch(*msgr.Message) {
	if !s.first {
		s.first = true
		close(s.held)
		<-s.release
	}
	s.got <- struct{}{}
}

// TestSendMessageContextWaits: SendMessageContext waits for queue space
// under the bound (and gives up with the context), SendMessage does not
// wait, nothing is lost.
func TestSendMessageContextWaits(t *testing.T) {
	st := &stall{held: make(chan struct{}), release: make(chan struct{}), got: make(chan struct{}, 1<<14)}
	srv := startMessenger(t, nil, osd1, true, st)
	const bound = 256 << 10
	cli, err := msgr.New(testConfig(), client2, msgr.WithSendQueueBytes(bound))
	require.NoError(t, err)
	t.Cleanup(func() { shutdownWithin(t, cli, 10*time.Second) })
	require.NoError(t, cli.Start())
	c, err := cli.Connect(srv.Addr().String())
	require.NoError(t, err)
	msg := func() *msgr.Message { return &msgr.Message{Type: 1, Data: make([]byte, 64<<10)} }
	require.NoError(t, c.SendMessage(msg()))
	<-st.held
	sent := 1
	var blocked error
	for sent < 4096 { // 256 MiB: far beyond any socket buffer
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.SendMessageContext(ctx, msg())
		cancel()
		if err != nil {
			blocked = err
			break
		}
		sent++
	}
	require.ErrorIs(t, blocked, context.DeadlineExceeded, "SendMessageContext never waited (%d sent)", sent)
	t.Logf("SendMessageContext waited after %d messages of 64 KiB", sent)
	// SendMessage does not wait for room: it returns while the peer is
	// still stalled.
	plain := make(chan error, 1)
	go func() {
		for i := 0; i < 8; i++ {
			if err := c.SendMessage(msg()); err != nil {
				plain <- err
				return
			}
		}
		plain <- nil
	}()
	select {
	case err := <-plain:
		require.NoError(t, err)
		sent += 8
	case <-time.After(20 * time.Second):
		t.Fatal("SendMessage waited for room")
	}
	// A waiting sender goes once the peer reads again.
	done := make(chan error, 1)
	go func() { done <- c.SendMessageContext(context.Background(), msg()) }()
	sent++
	close(st.release)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting SendMessageContext was never let through")
	}
	for i := 0; i < sent; i++ {
		select {
		case <-st.got:
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d messages arrived", i, sent)
		}
	}
}

// doneLog records OnDone calls.
type doneLog struct {
	mu   sync.Mutex
	tids []uint64
	errs []error
}

func (d *doneLog) onDone(m *msgr.Message, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tids = append(d.tids, m.Tid)
	d.errs = append(d.errs, err)
}

func (d *doneLog) n() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.tids)
}

// TestOnDone: a sent message's OnDone says when its buffers may be reused:
// acked (lossless), written (lossy), or dropped with the connection's error.
func TestOnDone(t *testing.T) {
	for _, lossy := range []bool{false, true} {
		t.Run(fmt.Sprintf("lossy=%v", lossy), func(t *testing.T) {
			srv, cli := newPair(t, nil)
			if lossy {
				srv.SetPolicy(msgr.EntityTypeClient, msgr.StatelessServer())
			}
			got := make(chan *msgr.Message, 64)
			srv.AddDispatcherTail(&catcher{ch: got})
			c, err := cli.Connect(srv.Addr().String())
			require.NoError(t, err)
			d := &doneLog{}
			const n = 40
			for i := 0; i < n; i++ {
				data := make([]byte, (i%2)*(64<<10)) // every other one big (by reference unless lossy)
				require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Tid: uint64(i), Data: data, OnDone: d.onDone}))
			}
			for i := 0; i < n; i++ {
				<-got
			}
			testenv.WaitFor(t, 10*time.Second, "every OnDone", func() bool { return d.n() == n }, func() string { return fmt.Sprint(d.n()) })
			d.mu.Lock()
			defer d.mu.Unlock()
			for i := 0; i < n; i++ {
				require.Equal(t, uint64(i), d.tids[i], "in sending order")
				require.NoError(t, d.errs[i])
			}
			require.Equal(t, lossy, c.IsLossy())
		})
	}
	t.Run("dropped", func(t *testing.T) {
		cli := startMessenger(t, nil, client2, false)
		c, err := cli.Connect(unanswered(t))
		require.NoError(t, err)
		d := &doneLog{}
		for i := 0; i < 3; i++ {
			require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Tid: uint64(i), OnDone: d.onDone}))
		}
		c.MarkDown()
		testenv.WaitFor(t, 10*time.Second, "every OnDone", func() bool { return d.n() == 3 }, func() string { return fmt.Sprint(d.n()) })
		for _, err := range d.errs {
			require.ErrorIs(t, err, msgr.ErrMarkedDown)
		}
	})
}
