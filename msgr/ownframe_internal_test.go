package msgr

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

// frameEncoder encodes a ready session's MESSAGE frames as the peer of a
// scripted server connection sends them: crc mode, or secure mode with the
// client's half of the connection secret the server's half was made from.
type frameEncoder func(dst []byte, h *msgr2.MsgHeader2, front, middle, data []byte) []byte

// scriptedModes makes each mode's encoder and puts the scripted server
// connection c (ready, c.mu held) into that mode.
var scriptedModes = []struct {
	name  string
	setup func(t *testing.T, c *Connection) frameEncoder
}{
	{"crc", func(*testing.T, *Connection) frameEncoder { return msgr2.AppendMessageFrame }},
	{"secure", func(t *testing.T, c *Connection) frameEncoder {
		secret := make([]byte, msgr2.ConnectionSecretLen)
		for i := range secret {
			secret[i] = byte(i*13 + 1)
		}
		srv, err := msgr2.NewSecure(secret, true)
		require.NoError(t, err)
		cli, err := msgr2.NewSecure(secret, false)
		require.NoError(t, err)
		c.auth.sec = srv
		return func(dst []byte, h *msgr2.MsgHeader2, front, middle, data []byte) []byte {
			b, err := cli.AppendSecureMessageFrame(dst, h, front, middle, data)
			require.NoError(t, err)
			return b
		}
	}},
}

// readyScripted is a scripted server connection in a ready session (its
// one message had seq 1) put into a mode by setup, with c.mu held until
// the test ends.
func readyScripted(t *testing.T, setup func(*testing.T, *Connection) frameEncoder) (*Connection, frameEncoder) {
	c, _ := newScriptConn(t, false)
	c.mu.Lock()
	t.Cleanup(c.mu.Unlock)
	feedLocked(c, fuzzFrames()[0], 4096)
	require.Equal(t, stReady, c.state, "%v", c.sh.err)
	return c, setup(t, c)
}

// A big message frame is read into a buffer of its own that the message
// then owns, in secure mode too (decrypted in place there): the frame costs
// about one buffer its size, not a read buffer grown to it and a copy out.
// Bytes after it (the next frames) survive the buffer switch.
func TestScriptedBigFrameOwnBuffer(t *testing.T) {
	for _, mode := range scriptedModes {
		for _, tc := range []struct {
			name        string
			size, chunk int
			oneBuffer   bool // allocation bounded by one frame-sized buffer
		}{
			{"64KiB in 4KiB reads", 64 << 10, 4096, true},
			{"64KiB in 1000-byte reads", 64 << 10, 1000, true},
			{"3MiB in 4KiB reads", 3 << 20, 4096, false},
			{"below the own-buffer size", 8 << 10, 777, false},
		} {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				c, enc := readyScripted(t, mode.setup)
				big := make([]byte, tc.size)
				for i := range big {
					big[i] = byte(i * 7)
				}
				warm := enc(nil, &msgr2.MsgHeader2{Seq: 2}, nil, nil, []byte("warm"))
				require.Len(t, feedLocked(c, warm, tc.chunk), 1)
				frame := enc(nil, &msgr2.MsgHeader2{Seq: 3}, []byte("big"), nil, big)
				var got []*Message
				n := allocatedBy(func() { got = feedLocked(c, frame, tc.chunk) })
				require.Equal(t, stReady, c.state, "%v", c.sh.err)
				require.Len(t, got, 1)
				if tc.oneBuffer {
					t.Logf("%s: %d bytes allocated for a %d-byte frame", mode.name, n, len(frame))
					require.Less(t, n, uint64(len(frame))*3/2, "one buffer for the frame, no copy out")
				}
				var stream []byte
				stream = enc(stream, &msgr2.MsgHeader2{Seq: 4}, []byte("after"), nil, []byte("tail"))
				stream = enc(stream, &msgr2.MsgHeader2{Seq: 5}, nil, nil, big[:tc.size/2])
				got = append(got, feedLocked(c, stream, tc.chunk)...)
				require.Equal(t, stReady, c.state, "%v", c.sh.err)
				require.Len(t, got, 3)
				requireBigFrameStream(t, c, got, big)
			})
		}
	}
}
