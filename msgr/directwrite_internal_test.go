package msgr

import (
	"errors"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// limitSock accepts up to budget bytes (negative: unlimited), then reports
// would-block, or fails with err; direct is what SendFromAnyGoroutine says.
type limitSock struct {
	fakeSock
	budget int
	err    error
	direct bool
	sends  int
}

func (s *limitSock) SendFromAnyGoroutine() bool { return s.direct }

func (s *limitSock) Send(b [][]byte, more bool) (int, error) {
	s.sends++
	if s.err != nil {
		return 0, s.err
	}
	var flat []byte
	for _, x := range b {
		flat = append(flat, x...)
	}
	if s.budget >= 0 && len(flat) > s.budget {
		flat = flat[:s.budget]
	}
	if len(flat) == 0 {
		return 0, netstack.ErrWouldBlock
	}
	if s.budget >= 0 {
		s.budget -= len(flat)
	}
	return s.fakeSock.Send([][]byte{flat}, more)
}

// readyServerConn is a server connection whose session is ready (one
// message received, seq 1, not yet acknowledged) over a limitSock.
func readyServerConn(t *testing.T, direct bool) (*Connection, *limitSock) {
	t.Helper()
	c, _ := newScriptConn(t, false)
	sock := &limitSock{budget: -1, direct: direct}
	sock.keep = true
	c.mu.Lock()
	c.sock, c.fd = sock, sock.FD()
	c.sockDirect = netstack.SendsFromAnyGoroutine(sock)
	got := feedLocked(c, fuzzFrames()[0], 4096)
	require.Equal(t, stReady, c.state, "%v", c.sh.err)
	require.Len(t, got, 1)
	c.mu.Unlock()
	sock.out = nil // forget the handshake
	return c, sock
}

// messageFrames parses what was written after the handshake.
func messageFrames(t *testing.T, out []byte) (tags []msgr2.Tag, hdrs []msgr2.MsgHeader2, fronts []string) {
	t.Helper()
	for len(out) > 0 {
		p, segs, n, err := msgr2.ParseFrame(out, 0)
		require.NoError(t, err)
		tags = append(tags, p.Tag)
		if p.Tag == msgr2.TagMessage {
			var h msgr2.MsgHeader2
			require.NoError(t, h.Unmarshal(segs[0]))
			hdrs = append(hdrs, h)
			fronts = append(fronts, string(segs[1]))
		}
		out = out[n:]
	}
	return tags, hdrs, fronts
}

func TestSendMessageWritesDirectlyWhenIdle(t *testing.T) {
	c, sock := readyServerConn(t, true)
	require.Equal(t, uint64(1), c.ackLeft)
	require.NoError(t, c.SendMessage(&Message{Type: 5, Front: []byte("hi")}))
	tags, hdrs, _ := messageFrames(t, sock.out)
	require.Equal(t, []msgr2.Tag{msgr2.TagMessage}, tags, "written by the caller, no bare ACK")
	require.Equal(t, uint64(1), hdrs[0].Seq)
	require.Equal(t, uint64(1), hdrs[0].AckSeq, "the message carries the pending ack")
	c.mu.Lock()
	defer c.mu.Unlock()
	require.False(t, c.sh.kicked, "the centre was not needed")
	require.Zero(t, c.ackLeft)
	require.Len(t, c.sent, 1, "kept until acked (lossless)")
	require.Equal(t, stReady, c.state)
}

func TestSendMessageFallsBackToCentre(t *testing.T) {
	tests := []struct {
		name   string
		direct bool // the socket allows sends from any goroutine
		budget int
		err    error
		sent   int // bytes the socket took
	}{
		{"socket only for its centre", false, -1, nil, 0},
		{"would block at once", true, 0, nil, 0},
		{"would block midway", true, 10, nil, 10},
		{"send fails", true, -1, syscall.EPIPE, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, sock := readyServerConn(t, tc.direct)
			sock.budget, sock.err = tc.budget, tc.err
			sends := sock.sends
			require.NoError(t, c.SendMessage(&Message{Type: 5, Front: []byte("first")}))
			require.Equal(t, tc.direct, sock.sends > sends, "a direct write was tried")
			sends = sock.sends
			require.NoError(t, c.SendMessage(&Message{Type: 5, Front: []byte("second")}))
			require.Equal(t, sends, sock.sends, "the second message waits behind the first")
			require.Equal(t, tc.sent, len(sock.out))
			c.mu.Lock()
			require.True(t, c.sh.kicked, "the centre takes over")
			require.False(t, c.wantWrite, "writability is registered by the centre, not the caller")
			require.Equal(t, stReady, c.state, "no fault on the caller's goroutine")
			if tc.direct {
				require.Equal(t, 1, c.sh.outQ.len(), "the first was encoded, the second queued")
			} else {
				require.Equal(t, 2, c.sh.outQ.len())
			}
			c.mu.Unlock()

			// The kick, run as the centre would: it finishes the job or
			// faults the connection with the send error.
			sock.budget = -1
			c.writeKick()
			c.mu.Lock()
			defer c.mu.Unlock()
			if tc.err != nil {
				require.NotEqual(t, stReady, c.state)
				require.True(t, errors.Is(c.sh.err, tc.err), "%v", c.sh.err)
				return
			}
			require.Equal(t, stReady, c.state)
			tags, hdrs, fronts := messageFrames(t, sock.out)
			require.Equal(t, []msgr2.Tag{msgr2.TagMessage, msgr2.TagMessage}, tags, "in order, no bare ACK")
			require.Equal(t, []string{"first", "second"}, fronts)
			require.Equal(t, uint64(1), hdrs[0].Seq)
			require.Equal(t, uint64(2), hdrs[1].Seq)
			require.Equal(t, uint64(1), hdrs[0].AckSeq)
			require.Zero(t, c.wlenLocked()-c.wpos, "everything flushed")
			require.Zero(t, c.sh.outQ.len())
		})
	}
}

// A big data segment is sent by reference; partial sends may stop anywhere
// (in the head, the data, the epilogue) and a control frame queued meanwhile
// must still follow the whole message.
func TestZeroCopyDataSegmentPartialSends(t *testing.T) {
	data := make([]byte, zeroCopyMin+123)
	for i := range data {
		data[i] = byte(i * 13)
	}
	frame := msgr2.AppendMessageFrame(nil, &msgr2.MsgHeader2{}, []byte("f"), nil, data)
	headLen := len(frame) - len(data) - msgr2.EpilogueLen
	tests := []struct {
		name  string
		first int // bytes the socket takes at the first send
		chunk int // then per send
	}{
		{"all at once", -1, -1},
		{"stops in the head", 10, 1000},
		{"stops at the data", headLen, 4096},
		{"stops in the data", headLen + 5000, 7},
		{"stops in the epilogue", len(frame) - 3, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, sock := readyServerConn(t, true)
			sock.budget = tc.first
			require.NoError(t, c.SendMessage(&Message{Type: 5, Front: []byte("f"), Data: data}))
			c.mu.Lock()
			c.appendFrameLocked(msgr2.TagKeepalive2Ack, (&msgr2.Keepalive2Ack{}).Marshal(nil))
			c.mu.Unlock()
			c.mu.Lock()
			defer c.mu.Unlock()
			for i := 0; i < 100000 && c.wlenLocked() > c.wpos; i++ {
				sock.budget = tc.chunk
				c.writeDirectLocked() // as the centre's kick would, minus epoll
			}
			require.Zero(t, c.wlenLocked()-c.wpos, "everything flushed")
			tags, hdrs, fronts := messageFrames(t, sock.out)
			require.Equal(t, []msgr2.Tag{msgr2.TagMessage, msgr2.TagKeepalive2Ack}, tags)
			require.Equal(t, []string{"f"}, fronts)
			require.Equal(t, uint64(1), hdrs[0].Seq)
			_, segs, _, err := msgr2.ParseFrame(sock.out, 0)
			require.NoError(t, err)
			require.Equal(t, data, segs[3])
		})
	}
}

// A small received message (header and payload) costs one allocation; a
// larger one two (Message and payload).
func TestReceivedMessageAllocations(t *testing.T) {
	tests := []struct {
		name   string
		front  int
		data   int
		allocs float64
	}{
		{"2-byte front", 2, 0, 1},
		{"front and data at the limit", smallPayload - 10, 10, 1},
		{"above the limit", smallPayload, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := readyServerConn(t, true)
			c.mu.Lock()
			defer c.mu.Unlock()
			front, data := make([]byte, tc.front), make([]byte, tc.data)
			for i := range front {
				front[i] = byte(i + 1)
			}
			seq := c.inSeq
			frames := make([][4][]byte, 0, 200)
			for i := 0; i < 200; i++ {
				seq++
				wire := msgr2.AppendMessageFrame(nil, &msgr2.MsgHeader2{Seq: seq}, front, nil, data)
				_, segs, _, err := msgr2.ParseFrame(wire, 0)
				require.NoError(t, err)
				frames = append(frames, segs)
			}
			c.post = make([]dqItem, 0, 4)
			i := 0
			allocs := testing.AllocsPerRun(100, func() {
				c.handleMessageLocked(frames[i])
				i++
				c.post = c.post[:0]
			})
			require.Equal(t, tc.allocs, allocs)
			c.handleMessageLocked(frames[i])
			m := c.post[0].m
			require.Equal(t, front, m.Front)
			require.Equal(t, len(m.Front), cap(m.Front), "a message cannot grow into its neighbour")
			if tc.data > 0 {
				require.Equal(t, data, m.Data)
			}
		})
	}
}
