package rdmastack

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// TestHeldSenderDoesNotStallPoller: while one connection's Send is held in
// the middle of its copy into TX chunks (with the socket's lock held) and
// that connection has receive completions waiting, another connection on
// the same dispatcher keeps receiving. The poller hands completions to the
// held connection's inbox and moves on; the sender takes them over when it
// lets go. Once released, everything held arrives too.
func TestHeldSenderDoesNotStallPoller(t *testing.T) {
	cfg := testConfig(t)
	s := startStack(t, cfg) // one stack: every socket below shares its dispatcher
	held, heldPeer := pairOn(t, s, s)
	other, otherPeer := pairOn(t, s, s)

	// Hold held's Send after its first copy into a TX chunk.
	entered := make(chan struct{})
	release := make(chan struct{})
	var once, releaseOnce sync.Once
	hook := func(c *conn) {
		if c != held.(*conn) {
			return
		}
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	sendCopyHook.Store(&hook)
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(func() { letGo(); sendCopyHook.Store(nil) })

	big := pattern(1, 256<<10)
	sent := make(chan error, 1)
	go func() {
		defer close(sent)
		b := big
		deadline := time.Now().Add(60 * time.Second)
		for len(b) > 0 && time.Now().Before(deadline) {
			n, err := held.Send([][]byte{b}, false)
			b = b[n:]
			if err != nil && err != netstack.ErrWouldBlock {
				sent <- err
				return
			}
			if n == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("Send never reached the hook")
	}

	// A receive completion for the held connection: the poller must not
	// wait for the held sender's lock to hand it over.
	rxBefore := s.Stats().RXCompletions
	toHeld := pattern(2, 1000)
	sendAll(t, heldPeer, toHeld)
	testenv.WaitFor(t, 20*time.Second, "the poller to take the held connection's receive completion",
		func() bool { return s.Stats().RXCompletions > rxBefore }, nil)

	// The other connection still receives, while the sender is held.
	toOther := pattern(3, 4000)
	sendAll(t, otherPeer, toOther)
	got, err := readUntil(t, other, len(toOther), 20*time.Second)
	require.NoError(t, err)
	require.True(t, bytes.Equal(toOther, got), "the other connection's stream differs")
	select {
	case <-sent:
		t.Fatal("Send returned while held")
	default:
	}

	// Released: the held sender finishes, and what was handed to its
	// inbox meanwhile is delivered in order.
	letGo()
	got, err = readUntil(t, held, len(toHeld), 30*time.Second)
	require.NoError(t, err)
	require.True(t, bytes.Equal(toHeld, got), "the held connection's stream differs")
	got, err = readUntil(t, heldPeer, len(big), 60*time.Second)
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, got), "the held sender's stream differs")
	require.NoError(t, <-sent)
}
