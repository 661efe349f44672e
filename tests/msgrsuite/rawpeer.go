package msgrsuite

// This file is a hand-driven msgr2 peer on the stack under test, for the
// tests that need to say exactly what goes on the wire.

import (
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/stretchr/testify/require"
)

// rawPeer is a socket of the suite's own stack that writes raw bytes. Its
// Send/Read/Close run on its worker's event centre (through Submit), as the
// netstack contract asks, so the same code drives posix and rdma sockets.
type rawPeer struct {
	s netstack.ConnectedSocket
	w netstack.Worker
}

// startRawStack is a started stack of the named kind for raw peers,
// stopped when t ends.
func startRawStack(t *testing.T, stack string) netstack.Stack {
	t.Helper()
	st, err := netstack.New(clientConfig(stack))
	require.NoError(t, err)
	require.NoError(t, st.Start())
	t.Cleanup(func() { _ = st.Stop() })
	return st
}

func dialRaw(t *testing.T, st netstack.Stack, addr string) *rawPeer {
	t.Helper()
	w := st.PickWorker()
	s, err := w.Connect(addr, netstack.SocketOptions{NoDelay: true})
	require.NoError(t, err)
	p := &rawPeer{s: s, w: w}
	t.Cleanup(func() {
		if err := w.Center().Submit(func() { _ = s.Close() }); err != nil {
			_ = s.Close()
		}
	})
	return p
}

func (p *rawPeer) send(b []byte) (n int, err error) {
	if serr := p.w.Center().Submit(func() { n, err = p.s.Send([][]byte{b}, false) }); serr != nil {
		return 0, serr
	}
	return n, err
}

func (p *rawPeer) read(b []byte) (n int, err error) {
	if serr := p.w.Center().Submit(func() { n, err = p.s.Read(b) }); serr != nil {
		return 0, serr
	}
	return n, err
}

func (p *rawPeer) write(t *testing.T, b []byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(b) > 0 {
		n, err := p.send(b)
		b = b[n:]
		if err != nil && !errors.Is(err, netstack.ErrWouldBlock) {
			t.Fatalf("raw send: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("raw send stuck")
		}
		if len(b) > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// waitClosed reads (and discards) until the server closes the socket.
func (p *rawPeer) waitClosed(t *testing.T, within time.Duration) {
	t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(within)
	for {
		_, err := p.read(buf)
		if err != nil && !errors.Is(err, netstack.ErrWouldBlock) {
			if !errors.Is(err, io.EOF) {
				t.Logf("raw peer read ended with %v", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not close the raw connection within %v", within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// silentClient is everything a client sends to open a session (banner,
// HELLO, AUTH_REQUEST for auth none, AUTH_SIGNATURE, CLIENT_IDENT), sent at
// once; the raw peer then never reads nor writes again.
func silentClient() []byte {
	b := msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0)
	b = msgr2.AppendControlFrame(b, &msgr2.Hello{EntityType: msgr.EntityTypeMDS})
	auth := []byte{1, byte(msgr.EntityTypeMDS), 0, 0, 0, 1, 0, 0, 0, 'x'}
	auth = binary.LittleEndian.AppendUint64(auth, 0)
	b = msgr2.AppendControlFrame(b, &msgr2.AuthRequest{Method: msgr2.AuthMethodNone,
		PreferredModes: []uint32{msgr2.ConModeCRC}, AuthPayload: auth})
	b = msgr2.AppendControlFrame(b, &msgr2.AuthSignature{})
	b = msgr2.AppendControlFrame(b, &msgr2.ClientIdent{
		Addrs: msgr2.AddrVec{{Type: msgr2.AddrTypeAny, Nonce: 99}}, GID: 5, GlobalSeq: 1,
		SupportedFeatures: msgr.DefaultFeatures, Flags: 1})
	return b
}

// clientHandshake is what a client sends to open a session of the given
// entity type with the given cookie (0: lossy), all at once.
func clientHandshake(entityType uint8, nonce uint32, cookie uint64) []byte {
	b := msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0)
	b = msgr2.AppendControlFrame(b, &msgr2.Hello{EntityType: entityType})
	auth := []byte{1, entityType, 0, 0, 0, 1, 0, 0, 0, 'x'}
	auth = binary.LittleEndian.AppendUint64(auth, 0)
	b = msgr2.AppendControlFrame(b, &msgr2.AuthRequest{Method: msgr2.AuthMethodNone,
		PreferredModes: []uint32{msgr2.ConModeCRC}, AuthPayload: auth})
	b = msgr2.AppendControlFrame(b, &msgr2.AuthSignature{})
	var flags uint64
	if cookie == 0 {
		flags = msgr2.IdentFlagLossy
	}
	return msgr2.AppendControlFrame(b, &msgr2.ClientIdent{
		Addrs: msgr2.AddrVec{{Type: msgr2.AddrTypeAny, Nonce: nonce}}, GID: 5, GlobalSeq: 1,
		SupportedFeatures: msgr.DefaultFeatures, Flags: flags, Cookie: cookie})
}

// readFrames reads the server's banner and frames until done(frames) holds.
func (p *rawPeer) readFrames(t *testing.T, within time.Duration, done func(tags []msgr2.Tag) bool) (tags []msgr2.Tag, segs [][msgr2.MaxSegments][]byte) {
	t.Helper()
	var buf []byte
	tmp := make([]byte, 64<<10)
	banner := false
	deadline := time.Now().Add(within)
	for !done(tags) {
		n, err := p.read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil && !errors.Is(err, netstack.ErrWouldBlock) {
			t.Fatalf("raw read after %v: %v", tags, err)
		}
		if !banner && len(buf) >= msgr2.BannerLen {
			_, _, err := msgr2.ParseBanner(buf[:msgr2.BannerLen])
			require.NoError(t, err)
			buf, banner = buf[msgr2.BannerLen:], true
		}
		for banner && len(buf) >= msgr2.PreambleLen {
			pre, fsegs, used, err := msgr2.ParseFrame(buf, 0)
			if err != nil {
				break // incomplete
			}
			tags = append(tags, pre.Tag)
			var own [msgr2.MaxSegments][]byte
			for i := range fsegs {
				own[i] = append([]byte(nil), fsegs[i]...)
			}
			segs = append(segs, own)
			buf = buf[used:]
		}
		if time.Now().After(deadline) {
			t.Fatalf("raw peer: got %v so far", tags)
		}
		if n == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	return tags, segs
}

func helloFrame() []byte {
	h := msgr2.Hello{EntityType: msgr.EntityTypeClient}
	return msgr2.AppendFrame(nil, msgr2.TagHello, h.Marshal(nil))
}
