package netconn

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// startedStack is a started one-worker stack the test stops itself.
func startedStack(t *testing.T) netstack.Stack {
	t.Helper()
	cfg := config.Default()
	cfg.OpThreads = 1
	s, err := netstack.New(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	return s
}

// returnsWithin runs f and fails the test if it has not returned after d.
func returnsWithin(t *testing.T, d time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s still blocked after %v", what, d)
		return nil
	}
}

// TestStopUnblocks: a Read, Write or Accept waiting when the stack stops
// returns an error matching net.ErrClosed (nothing would ever wake it), and
// Close after Stop does not block.
func TestStopUnblocks(t *testing.T) {
	s := startedStack(t)
	c1, c2 := pipe(t, s, "127.0.0.1:0") // c1 reads, c2 sends nothing
	c3, c4 := pipe(t, s, "127.0.0.1:0") // c3 writes, c4 reads nothing
	l, err := Listen(s, "127.0.0.1:0")
	require.NoError(t, err)

	readErr := make(chan error, 1)
	go func() { _, err := c1.Read(make([]byte, 1)); readErr <- err }()
	acceptErr := make(chan error, 1)
	go func() { _, err := l.Accept(); acceptErr <- err }()
	writeErr := make(chan error, 1)
	go func() {
		// Nobody reads c4: the write fills both buffers and waits.
		_, err := c3.Write(make([]byte, 64<<20))
		writeErr <- err
	}()
	time.Sleep(100 * time.Millisecond) // let them block (a later start only tests less)
	require.NoError(t, s.Stop())
	for what, ch := range map[string]chan error{"Read": readErr, "Accept": acceptErr, "Write": writeErr} {
		select {
		case err := <-ch:
			require.ErrorIs(t, err, net.ErrClosed, what)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s still blocked after the stack stopped", what)
		}
	}
	for what, f := range map[string]func() error{"Conn.Close": c1.Close, "Conn.Close (peer)": c2.Close,
		"Conn.Close (writer)": c3.Close, "Conn.Close (4)": c4.Close, "Listener.Close": l.Close} {
		require.NoError(t, returnsWithin(t, 10*time.Second, what, f), what)
	}
}
