package msgr2

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

func securePair(t testing.TB) (client, server *Secure) {
	secret := make([]byte, 64)
	for i := range secret {
		secret[i] = byte(i * 7)
	}
	var err error
	client, err = NewSecure(secret, false)
	require.NoError(t, err)
	server, err = NewSecure(secret, true)
	require.NoError(t, err)
	return client, server
}

// readSecure decodes one secure frame from the front of b.
func readSecure(s *Secure, b []byte) (Tag, [MaxSegments][]byte, int, error) {
	if len(b) < SecurePreambleLen {
		return 0, [MaxSegments][]byte{}, 0, protoErr("short")
	}
	pre := append([]byte(nil), b[:SecurePreambleLen]...)
	p, inline, err := s.OpenPreamble(pre, 0)
	if err != nil {
		return 0, [MaxSegments][]byte{}, 0, err
	}
	n := p.SecureRestLen()
	if len(b)-SecurePreambleLen < n {
		return 0, [MaxSegments][]byte{}, 0, protoErr("short rest")
	}
	rest := append([]byte(nil), b[SecurePreambleLen:SecurePreambleLen+n]...)
	segs, err := s.OpenRest(&p, inline, rest)
	return p.Tag, segs, SecurePreambleLen + n, err
}

func TestSecureFrameRoundTrip(t *testing.T) {
	c, s := securePair(t)
	for _, sizes := range [][]int{{0}, {1}, {48}, {49}, {200}, {41, 0, 0, 5}, {41, 100, 7, 4096}, {60, 0, 0, 1}} {
		segs := make([][]byte, len(sizes))
		for i, n := range sizes {
			segs[i] = bytes.Repeat([]byte{byte(i + 1)}, n)
		}
		b, err := c.AppendSecureFrame(nil, TagMessage, segs...)
		require.NoError(t, err)
		tag, got, n, err := readSecure(s, b)
		require.NoError(t, err, "sizes %v", sizes)
		require.Equal(t, len(b), n)
		require.Equal(t, TagMessage, tag)
		for i := range segs {
			require.Equal(t, len(segs[i]), len(got[i]), "sizes %v seg %d", sizes, i)
			require.True(t, bytes.Equal(segs[i], got[i]))
		}
	}
	// and the other way, with the crossed nonces
	b, err := s.AppendSecureControlFrame(nil, &Keepalive2{})
	require.NoError(t, err)
	tag, _, _, err := readSecure(c, b)
	require.NoError(t, err)
	require.Equal(t, TagKeepalive2, tag)
}

// TestSecureRejectsTampering: a flipped bit anywhere, a replayed record, a
// reordered pair and a truncated frame are each refused, naming the cause.
func TestSecureRejectsTampering(t *testing.T) {
	frame := func(c *Secure, fill byte) []byte {
		b, err := c.AppendSecureFrame(nil, TagMessage, bytes.Repeat([]byte{fill}, 41), bytes.Repeat([]byte{fill}, 300))
		require.NoError(t, err)
		return b
	}
	c, _ := securePair(t)
	n := len(frame(c, 1))
	for i := 0; i < n; i += 7 {
		c, s := securePair(t)
		b := frame(c, 1)
		b[i] ^= 0x10
		_, _, _, err := readSecure(s, b)
		require.ErrorIs(t, err, ErrSecureAuth, "bit flipped at %d", i)
	}
	t.Run("replay", func(t *testing.T) {
		c, s := securePair(t)
		b := frame(c, 1)
		_, _, _, err := readSecure(s, b)
		require.NoError(t, err)
		_, _, _, err = readSecure(s, b)
		require.ErrorIs(t, err, ErrSecureAuth)
	})
	t.Run("reorder", func(t *testing.T) {
		c, s := securePair(t)
		f1, f2 := frame(c, 1), frame(c, 2)
		_, _, _, err := readSecure(s, f2)
		require.ErrorIs(t, err, ErrSecureAuth)
		_ = f1
	})
	t.Run("truncated", func(t *testing.T) {
		c, s := securePair(t)
		b := frame(c, 1)
		pre := append([]byte(nil), b[:SecurePreambleLen]...)
		p, inline, err := s.OpenPreamble(pre, 0)
		require.NoError(t, err)
		_, err = s.OpenRest(&p, inline, b[SecurePreambleLen:len(b)-1])
		require.ErrorIs(t, err, ErrProtocol)
	})
	t.Run("secret too short", func(t *testing.T) {
		_, err := NewSecure(make([]byte, ConnectionSecretLen-1), false)
		require.Error(t, err)
	})
}

func TestSecureNonceNeverReused(t *testing.T) {
	c, _ := securePair(t)
	// Put the counter one step before its start value: the next record
	// uses the last fresh nonce, the one after would reuse the first.
	binary.LittleEndian.PutUint64(c.tx.b[4:], c.tx.start-1)
	c.tx.used = true
	_, err := c.AppendSecureControlFrame(nil, &Keepalive2{})
	require.NoError(t, err)
	_, err = c.AppendSecureControlFrame(nil, &Keepalive2{})
	require.ErrorIs(t, err, ErrNonceExhausted)
}

func FuzzSecureFrame(f *testing.F) {
	c, _ := securePair(f)
	b, _ := c.AppendSecureFrame(nil, TagMessage, make([]byte, 41), make([]byte, 100))
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, s := securePair(t)
		_, _, _, _ = readSecure(s, b)
	})
}

// Sealing a message frame into a buffer with room, and opening it in
// place, allocate nothing: the AEAD and both nonces are the session's.
func TestSecureFrameNoAllocation(t *testing.T) {
	c, s := securePair(t)
	data := bytes.Repeat([]byte{7}, 64<<10)
	h := MsgHeader2{Seq: 1, Type: 9}
	wire := make([]byte, 0, 2*len(data))
	var err error
	allocs := testing.AllocsPerRun(100, func() {
		wire, err = c.AppendSecureMessageFrame(wire[:0], &h, []byte("front"), nil, data)
		if err != nil {
			t.Fatal(err)
		}
		p, inline, err := s.OpenPreamble(wire[:SecurePreambleLen], 0)
		if err != nil {
			t.Fatal(err)
		}
		segs, err := s.OpenRest(&p, inline, wire[SecurePreambleLen:])
		if err != nil || len(segs[3]) != len(data) || len(segs[0]) != MsgHeader2Len {
			t.Fatalf("open: %v (data %d bytes)", err, len(segs[3]))
		}
	})
	require.Zero(t, allocs)
	// and it is the frame AppendSecureFrame makes
	c2, _ := securePair(t)
	for range 101 { // as many records as c sealed
		_, err := c2.AppendSecureMessageFrame(nil, &h, []byte("front"), nil, data)
		require.NoError(t, err)
	}
	want, err := c2.AppendSecureFrame(nil, TagMessage, h.Marshal(nil), []byte("front"), nil, data)
	require.NoError(t, err)
	got, err := c.AppendSecureMessageFrame(nil, &h, []byte("front"), nil, data)
	require.NoError(t, err)
	require.Equal(t, want, got)
}
