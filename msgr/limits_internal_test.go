package msgr

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

// allocatedBy is how many bytes f allocated (runtime.MemStats.TotalAlloc
// counts an allocation whether or not its pages are ever touched).
func allocatedBy(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// What a peer announces is not what it makes us allocate: frames are
// bounded by who the peer is (before the session is ready only handshake
// frames of a few KiB are valid) and, after, by ms_max_frame_segment for
// the whole frame; the read buffer grows with the bytes that arrived.
func TestPreambleClaimsAreBounded(t *testing.T) {
	const mib = 1 << 20
	banner := msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0)
	session := fuzzFrames()[0] // a whole server session up to its first MESSAGE (seq 1)
	tests := []struct {
		name    string
		ready   bool // after the session's handshake
		pre     []byte
		body    int    // bytes of body sent after the preamble
		wantErr string // "" stays open, waiting for the rest
	}{
		{"unauthenticated 4 x 511 MiB", false, msgr2.AppendPreamble(nil, msgr2.TagHello, 511*mib, 511*mib, 511*mib, 511*mib), 0,
			"from a peer not yet authenticated (state hello; handshake frames are at most 65536 bytes): msgr2: segment 0 length 535822336 exceeds limit 65536"},
		{"unauthenticated 2 GiB segment", false, msgr2.AppendPreamble(nil, msgr2.TagHello, 1<<31), 0, "not yet authenticated (state hello; handshake frames are at most 65536 bytes): msgr2: segment 0 length 2147483648 exceeds limit 65536"},
		{"unauthenticated 65 KiB in small segments", false, msgr2.AppendPreamble(nil, msgr2.TagAuthRequest, 20000, 20000, 20000, 20000), 100,
			"not yet authenticated (state hello; handshake frames are at most 65536 bytes): AUTH_REQUEST frame of 80000 bytes exceeds the handshake frame limit"},
		{"ready 4 x 511 MiB message", true, msgr2.AppendPreamble(nil, msgr2.TagMessage, 511*mib, 511*mib, 511*mib, 511*mib), 0,
			"frame of 2143289344 bytes (all segments) exceeds ms_max_frame_segment 536870912"},
		{"ready 2 GiB segment", true, msgr2.AppendPreamble(nil, msgr2.TagMessage, 41, 1<<31), 0, "segment 1 length 2147483648 exceeds limit 536870912"},
		{"ready big control frame", true, msgr2.AppendPreamble(nil, msgr2.TagKeepalive2, 1<<20), 0, "KEEPALIVE2 control frame of 1048576 bytes exceeds"},
		{"ready 500 MiB message, 100 KiB sent", true, msgr2.AppendPreamble(nil, msgr2.TagMessage, 41, 0, 0, 500*mib), 100 << 10, ""},
		{"ready 500 MiB message, nothing sent", true, msgr2.AppendPreamble(nil, msgr2.TagMessage, 41, 0, 0, 500*mib), 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newScriptConn(t, false)
			c.msgr.cfg.DispatchThrottleBytes = 0
			c.msgr.dq = newDispatchQueue(c.msgr)
			c.mu.Lock()
			defer c.mu.Unlock()
			c.rbuf, c.state = make([]byte, handshakeRBuf), stBanner
			if tc.ready {
				feedLocked(c, session, 4096)
				require.Equal(t, stReady, c.state, "%v", c.sh.err)
			} else {
				feedLocked(c, banner, 4096)
				require.Equal(t, stHello, c.state)
			}
			stream := append(append([]byte{}, tc.pre...), make([]byte, tc.body)...)
			n := allocatedBy(func() { feedLocked(c, stream, 4096) })
			t.Logf("allocated %d bytes for a %d-byte stream (read buffer %d)", n, len(stream), cap(c.rbuf))
			require.Less(t, n, uint64(4*mib), "allocation follows what arrived, not what was announced")
			if tc.wantErr == "" {
				require.Equal(t, stReady, c.state, "%v", c.sh.err)
				require.LessOrEqual(t, cap(c.rbuf), max(ownFrameStep, 2*len(stream)))
				return
			}
			require.Nil(t, c.sock, "closed (a lossless session waits for its peer in standby)")
			require.ErrorContains(t, c.sh.err, tc.wantErr)
			require.NotContains(t, c.sh.err.Error(), "\n", "one line")
		})
	}
}

// A truncated frame (the rest never comes) leaves the connection waiting
// with a buffer the size of what arrived; a frame cut short by a preamble
// that lies about its length fails its crc.
func TestTruncatedFrames(t *testing.T) {
	session := fuzzFrames()[0]
	msg := msgr2.AppendMessageFrame(nil, &msgr2.MsgHeader2{Seq: 2}, []byte("front"), nil, make([]byte, 300<<10))
	for _, cut := range []int{1, msgr2.PreambleLen - 1, msgr2.PreambleLen + 10, len(msg) / 2, len(msg) - 1} {
		c, _ := newScriptConn(t, false)
		c.mu.Lock()
		c.rbuf, c.state = make([]byte, handshakeRBuf), stBanner
		feedLocked(c, session, 4096)
		got := feedLocked(c, msg[:cut], 4096)
		require.Empty(t, got, "cut at %d", cut)
		require.Equal(t, stReady, c.state, "cut at %d: %v", cut, c.sh.err)
		require.LessOrEqual(t, cap(c.rbuf), max(ownFrameStep, 2*cut), "cut at %d", cut)
		c.mu.Unlock()
	}
}

func TestThrottleCephRule(t *testing.T) {
	th := NewThrottle("t", 100)
	require.True(t, th.GetOrFail(60))
	require.False(t, th.GetOrFail(50), "60+50 > 100")
	require.True(t, th.GetOrFail(40))
	require.False(t, th.GetOrFail(1))
	th.Put(100)
	require.True(t, th.GetOrFail(250), "larger than the budget: let through when not overdrawn")
	require.False(t, th.GetOrFail(250), "overdrawn")
	woke := 0
	require.False(t, th.getOrWait(10, func() { woke++ }))
	th.Put(250)
	require.Equal(t, 1, woke)
	require.Zero(t, th.Current())
	th.Put(5)
	require.Zero(t, th.Current(), "never below zero")
	unlimited := NewThrottle("u", 0)
	require.True(t, unlimited.GetOrFail(1<<40))
}

// The dispatch throttle admits message bodies up to its budget; the rest
// stay unread (the connection stops reading) until dispatched messages
// give theirs back, and then arrive in order.
func TestDispatchThrottleHoldsBodies(t *testing.T) {
	c, _ := newScriptConn(t, false)
	c.msgr.cfg.DispatchThrottleBytes = 100 << 10
	c.msgr.dq = newDispatchQueue(c.msgr)
	pol := NewThrottle("policy-msgs", 3)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rbuf, c.state = make([]byte, handshakeRBuf), stBanner
	got := feedLocked(c, fuzzFrames()[0], 4096)
	require.Len(t, got, 1)
	base := c.msgr.dq.thr.Current() // that message's, never put back here
	c.policy.ThrottlerMessages = pol
	var stream []byte
	for i := 0; i < 6; i++ {
		stream = msgr2.AppendMessageFrame(stream, &msgr2.MsgHeader2{Seq: uint64(2 + i), Tid: uint64(i)}, nil, nil, make([]byte, 40<<10))
	}
	var items []dqItem
	collect := func() {
		for _, it := range c.post {
			if it.kind == dqMessage {
				items = append(items, it)
			}
		}
		c.post = c.post[:0]
	}
	c.post = c.post[:0]
	// feed it the way reads do: nothing is read while blocked
	feed := func() {
		for len(stream) > 0 && !c.rx.blocked {
			if c.rend == len(c.rbuf) {
				c.makeRoomLocked(0)
			}
			n := copy(c.rbuf[c.rend:], stream[:min(4096, len(stream))])
			stream = stream[n:]
			c.rend += n
			c.parseLocked()
			collect()
		}
	}
	feed()
	require.True(t, c.rx.blocked)
	require.Less(t, c.rend-c.rstart, 8<<10, "the blocked body is not read")
	require.Len(t, items, 2, "two 40 KiB bodies fit in 100 KiB")
	require.InDelta(t, 80<<10, c.msgr.dq.thr.Current()-base, 200, "two bodies and their headers")
	require.Equal(t, int64(2), pol.Current())
	for _, it := range items {
		it.rx.put()
	}
	require.Equal(t, base, c.msgr.dq.thr.Current())
	require.Zero(t, pol.Current())
	c.rx.blocked = false // (resumeRx's work, without its centre)
	items = items[:0]
	c.parseLocked()
	collect()
	feed()
	require.True(t, c.rx.blocked)
	require.Len(t, items, 2, "the pending frame and the next, admitted now")
	require.Equal(t, uint64(2), items[0].m.Tid)
	require.Equal(t, uint64(3), items[1].m.Tid)
}

// Admitting a message through the throttles costs no allocation (the
// wake-up a blocked connection leaves with a throttle is made once).
func TestAdmitFrameAllocatesNothing(t *testing.T) {
	c, _ := newScriptConn(t, false)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rbuf, c.state = make([]byte, handshakeRBuf), stBanner
	feedLocked(c, fuzzFrames()[0], 4096)
	require.Equal(t, stReady, c.state)
	c.policy.ThrottlerBytes, c.policy.ThrottlerMessages = NewThrottle("b", 1<<20), NewThrottle("m", 10)
	c.pre, c.havePre = msgr2.Preamble{Tag: msgr2.TagMessage, NumSegments: 1}, true
	c.pre.Segments[0].Length = 1000
	allocs := testing.AllocsPerRun(100, func() {
		if !c.admitFrameLocked() {
			t.Fatal("blocked")
		}
		c.releaseRxLocked()
	})
	require.Zero(t, allocs)
	c.havePre = false
}
