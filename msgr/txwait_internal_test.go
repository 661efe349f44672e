package msgr

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// spaceSock behaves like an rdma socket whose TX pool is empty: its FD is an
// eventfd (always writable) that turns readable when send space returns, so
// it reports (EventReadable, EventReadable) as its readiness masks. Send
// refuses every byte until space is given.
type spaceSock struct {
	fakeSock
	efd   int
	mu    sync.Mutex
	space bool
	sends int
	got   []byte
}

func (s *spaceSock) FD() int { return s.efd }
func (s *spaceSock) ReadinessMasks() (read, write netstack.EventMask) {
	return netstack.EventReadable, netstack.EventReadable
}

func (s *spaceSock) Send(b [][]byte, more bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends++
	if !s.space {
		return 0, netstack.ErrWouldBlock
	}
	n := 0
	for _, x := range b {
		s.got = append(s.got, x...)
		n += len(x)
	}
	return n, nil
}

// counts returns the Send calls so far and the bytes accepted.
func (s *spaceSock) counts() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sends, len(s.got)
}

// giveSpace lets Send accept bytes and signals it as the rdma stack does
// (the eventfd turns readable).
func (s *spaceSock) giveSpace() {
	s.mu.Lock()
	s.space = true
	s.mu.Unlock()
	var one = [8]byte{1}
	_, _ = unix.Write(s.efd, one[:])
}

// TestTxExhaustionWaitsForSpaceSignal: when a socket whose FD is always
// writable (rdma: an eventfd) cannot take bytes, the connection waits for
// the socket's own send-space signal (its readiness masks) instead of
// registering writability, which would make the event centre call Send on
// every loop turn. Counted in Send calls and centre turns, never in time.
func TestTxExhaustionWaitsForSpaceSignal(t *testing.T) {
	tests := []struct {
		name   string
		direct bool
	}{
		{"sent from the centre", false},
		{"sent from the caller, then the centre", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ls := readyServerConn(t, tc.direct)
			efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
			require.NoError(t, err)
			t.Cleanup(func() { _ = unix.Close(efd) })
			sock := &spaceSock{efd: efd}
			center := c.center
			c.mu.Lock()
			c.sock, c.fd = sock, efd
			c.sockDirect = tc.direct && ls.direct
			c.handler = c.handlerFor(c.gen)
			c.mu.Unlock()
			center.Start()
			require.NoError(t, center.Submit(func() {
				require.NoError(t, center.CreateFileEvent(efd, netstack.EventReadable, c.handler))
			}))

			require.NoError(t, c.SendMessage(&Message{Type: 5, Front: []byte("blocked")}))
			require.NoError(t, center.Submit(func() {})) // the kick ran
			blocked, n := sock.counts()
			require.Zero(t, n)
			require.NotZero(t, blocked, "a send was tried")
			c.mu.Lock()
			require.True(t, c.wantWrite, "the connection waits for send space")
			c.mu.Unlock()

			// Many loop turns with no space: nobody calls Send again.
			const turns = 200
			for i := 0; i < turns; i++ {
				require.NoError(t, center.Submit(func() {}))
			}
			sends, _ := sock.counts()
			require.Equal(t, blocked, sends, "Send calls during %d centre turns while the socket had no space", turns)

			// Space returns: the readable signal flushes the message.
			sock.giveSpace()
			for i := 0; ; i++ {
				require.NoError(t, center.Submit(func() {}))
				if _, n := sock.counts(); n > 0 {
					break
				}
				require.Less(t, i, 100000, "the message was not flushed after the space signal")
			}
			var buf [8]byte
			_, _ = unix.Read(efd, buf[:]) // space signal consumed
			require.NoError(t, center.Submit(func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				require.False(t, c.wantWrite)
				tags, _, fronts := messageFrames(t, sock.got)
				require.Contains(t, tags, msgr2.TagMessage)
				require.Contains(t, fronts, "blocked")
			}))
		})
	}
}
