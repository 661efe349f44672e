package msgr

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// fakeSock accepts every byte sent and has nothing to read.
type fakeSock struct {
	sent int
	keep bool
	out  []byte
}

func (s *fakeSock) Read([]byte) (int, error) { return 0, netstack.ErrWouldBlock }
func (s *fakeSock) Send(b [][]byte, _ bool) (int, error) {
	n := 0
	for _, x := range b {
		n += len(x)
		if s.keep {
			s.out = append(s.out, x...)
		}
	}
	s.sent += n
	return n, nil
}
func (s *fakeSock) Shutdown() error { return nil }
func (s *fakeSock) Close() error    { return nil }
func (s *fakeSock) FD() int         { return 1 << 20 }
func (s *fakeSock) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (s *fakeSock) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6800}
}

func fuzzFrames() [][]byte {
	banner := msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0)
	frame := func(p msgr2.Payload) []byte { return msgr2.AppendFrame(nil, p.Tag(), p.Marshal(nil)) }
	hello := frame(&msgr2.Hello{EntityType: EntityTypeClient})
	req := frame(&msgr2.AuthRequest{Method: 1, PreferredModes: []uint32{1},
		AuthPayload: []byte{1, 8, 0, 0, 0, 1, 0, 0, 0, 'x', 0, 0, 0, 0, 0, 0, 0, 0}})
	sig := msgr2.AppendFrame(nil, msgr2.TagAuthSignature, make([]byte, 32))
	ident := frame(&msgr2.ClientIdent{Addrs: msgr2.AddrVec{{Type: msgr2.AddrTypeMsgr2, Nonce: 7}}, Cookie: 9})
	reconnect := frame(&msgr2.SessionReconnect{Addrs: msgr2.AddrVec{{Type: msgr2.AddrTypeMsgr2, Nonce: 7}}, ClientCookie: 9})
	msg := msgr2.AppendMessageFrame(nil, &msgr2.MsgHeader2{Seq: 1}, []byte("front"), nil, []byte("data"))
	ka := frame(&msgr2.Keepalive2{})
	ack := frame(&msgr2.Ack{Seq: 1})
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	done := frame(&msgr2.AuthDone{GlobalID: 5, ConMode: 1})
	sident := frame(&msgr2.ServerIdent{Addrs: msgr2.AddrVec{{Type: msgr2.AddrTypeMsgr2,
		Addr: netip.MustParseAddrPort("127.0.0.1:6800")}}, Cookie: 3})
	return [][]byte{
		cat(banner, hello, req, sig, ident, msg, ka, ack, msg),
		cat(banner, hello, req, sig, reconnect),
		cat(banner, frame(&msgr2.Hello{EntityType: EntityTypeMon}), done, sig, sident, msg, ack),
		cat(banner, hello[:40]),
		cat(banner, msg),
		[]byte("garbage that is not a banner at all"),
	}
}

// FuzzConnectionInput feeds arbitrary peer bytes to the session state
// machine (both roles); it must never panic, and a connection that stops
// parsing must have been closed or faulted with an error.
func FuzzConnectionInput(f *testing.F) {
	for _, s := range fuzzFrames() {
		f.Add(s, false, 7)
		f.Add(s, true, 3)
	}
	f.Fuzz(func(t *testing.T, data []byte, outgoing bool, chunk int) {
		cfg := config.Default()
		cfg.MaxFrameSegment = 1 << 20
		m := &Messenger{cfg: cfg, log: cfg.Log(), name: EntityName{Type: EntityTypeOSD}, conns: map[string]*Connection{},
			peers: map[peerID]*Connection{}, all: map[*Connection]struct{}{}, policies: map[uint8]Policy{}}
		m.dq = newDispatchQueue(m)
		center, err := netstack.NewEventCenter("fuzz")
		if err != nil {
			t.Fatal(err)
		}
		defer center.Stop()
		c := &Connection{msgr: m, outgoing: outgoing, worker: noDialWorker{center}, center: center, fd: -1,
			iov: make([][]byte, 1), closedCh: make(chan struct{}), target: "127.0.0.1:6800"}
		c.initLocks()
		if outgoing {
			c.peerType = EntityTypeClient
		}
		sock := &fakeSock{}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.sock, c.fd = sock, sock.FD()
		feedLocked(c, data, chunk)
		if c.sock == nil && c.sh.err == nil {
			t.Fatalf("socket dropped without an error (state %s)", c.state)
		}
	})
}

// feedLocked runs data through c's parser in chunks, as reads would.
func feedLocked(c *Connection, data []byte, chunk int) (delivered []*Message) {
	if c.rbuf == nil {
		c.rbuf, c.state = make([]byte, 256), stBanner
	}
	if chunk <= 0 || chunk > 4096 {
		chunk = 4096
	}
	for len(data) > 0 && c.sock != nil {
		if c.rend == len(c.rbuf) {
			c.makeRoomLocked(0)
		}
		n := copy(c.rbuf[c.rend:], data[:min(chunk, len(data))])
		data = data[n:]
		c.rend += n
		c.parseLocked()
		for _, it := range c.post {
			if it.kind == dqMessage {
				delivered = append(delivered, it.m)
			}
		}
		c.post = c.post[:0]
		if c.state == stReady {
			c.writeReadyLocked()
		}
	}
	return delivered
}

// noDialWorker is a scripted connection's worker: its centre, and dials
// that fail (a lossless session that faults reconnects, also the server
// side of one).
type noDialWorker struct{ center *netstack.EventCenter }

func (w noDialWorker) ID() int                       { return 0 }
func (w noDialWorker) Center() *netstack.EventCenter { return w.center }
func (w noDialWorker) Load() int                     { return 0 }
func (w noDialWorker) Listen(string, netstack.SocketOptions) (netstack.ServerSocket, error) {
	return nil, errNoDial
}
func (w noDialWorker) Connect(string, netstack.SocketOptions) (netstack.ConnectedSocket, error) {
	return nil, errNoDial
}

var errNoDial = errors.New("scripted connection: no dials")

func newScriptConn(t *testing.T, outgoing bool) (*Connection, *fakeSock) {
	cfg := config.Default()
	m := &Messenger{cfg: cfg, log: cfg.Log(), nonce: 77, name: EntityName{Type: EntityTypeOSD, Num: 3}, conns: map[string]*Connection{},
		peers: map[peerID]*Connection{}, all: map[*Connection]struct{}{}, policies: map[uint8]Policy{}}
	m.dq = newDispatchQueue(m)
	center, err := netstack.NewEventCenter("script")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = center.Stop() })
	c := &Connection{msgr: m, outgoing: outgoing, worker: noDialWorker{center}, center: center, fd: -1,
		iov: make([][]byte, 1), closedCh: make(chan struct{}), target: "127.0.0.1:6800"}
	c.initLocks()
	sock := &fakeSock{}
	c.sock, c.fd = sock, sock.FD()
	return c, sock
}

func TestScriptedServerSession(t *testing.T) {
	for _, chunk := range []int{1, 5, 4096} {
		c, sock := newScriptConn(t, false)
		sock.keep = true
		c.mu.Lock()
		c.wbuf = msgr2.AppendBanner(c.wbuf, msgr2.FeatureRevision1, 0) // as attachLocked does
		c.flushLocked(false)
		got := feedLocked(c, fuzzFrames()[0], chunk)
		require.Equal(t, stReady, c.state, "chunk %d: %v", chunk, c.sh.err)
		require.Len(t, got, 1, "the second MESSAGE repeats seq 1 and is dropped")
		require.Equal(t, []byte("front"), got[0].Front)
		require.Equal(t, []byte("data"), got[0].Data)
		require.Equal(t, uint64(1), c.inSeq)
		require.Equal(t, uint64(1), c.stats.dups.Load())
		require.Equal(t, uint64(9), c.clientCookie)
		require.NotZero(t, c.serverCookie)
		tags, payloads := sentFrames(t, sock.out)
		require.GreaterOrEqual(t, len(tags), 5)
		require.Equal(t, []msgr2.Tag{msgr2.TagHello, msgr2.TagAuthDone, msgr2.TagAuthSignature,
			msgr2.TagServerIdent}, tags[:4])
		kaAcks := 0
		for _, tg := range tags[4:] {
			if tg == msgr2.TagKeepalive2Ack {
				kaAcks++
			} else {
				require.Equal(t, msgr2.TagAck, tg)
			}
		}
		require.Equal(t, 1, kaAcks)
		var si msgr2.ServerIdent
		require.NoError(t, si.Unmarshal(payloads[3]))
		require.Equal(t, c.serverCookie, si.Cookie)
		require.Equal(t, int64(3), si.GID)
		c.mu.Unlock()
	}
}

// sentFrames splits what a connection wrote into banner + frames.
func sentFrames(t *testing.T, out []byte) (tags []msgr2.Tag, payloads [][]byte) {
	t.Helper()
	_, _, err := msgr2.ParseBanner(out[:msgr2.BannerLen])
	require.NoError(t, err)
	out = out[msgr2.BannerLen:]
	for len(out) > 0 {
		p, segs, n, err := msgr2.ParseFrame(out, 0)
		require.NoError(t, err)
		tags = append(tags, p.Tag)
		payloads = append(payloads, segs[0])
		out = out[n:]
	}
	return tags, payloads
}

func TestScriptedClientSession(t *testing.T) {
	c, sock := newScriptConn(t, true)
	sock.keep = true
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peerType = EntityTypeMon
	c.globalSeq = 1
	c.wbuf = msgr2.AppendBanner(c.wbuf, msgr2.FeatureRevision1, 0) // as attachLocked does
	c.flushLocked(false)
	got := feedLocked(c, fuzzFrames()[2], 3)
	require.Equal(t, stReady, c.state, "%v", c.sh.err)
	require.Len(t, got, 1)
	require.Equal(t, uint64(3), c.serverCookie)
	require.Equal(t, uint64(5), c.globalID)

	// What a Ceph client sends: HELLO, AUTH_REQUEST (after the peer's
	// HELLO), AUTH_SIGNATURE (after AUTH_DONE), CLIENT_IDENT; then an ACK for
	// the message received on this lossless session. The ACK is delayed (a
	// message sent meanwhile would carry it): the ack timer is armed, and
	// when it runs the bare ACK goes out.
	tags, _ := sentFrames(t, sock.out)
	require.Equal(t, []msgr2.Tag{msgr2.TagHello, msgr2.TagAuthRequest, msgr2.TagAuthSignature,
		msgr2.TagClientIdent}, tags)
	require.True(t, c.ackArmed)
	require.Equal(t, uint64(1), c.ackLeft)
	c.sendDelayedAckLocked()
	require.Zero(t, c.ackLeft)
	tags, payloads := sentFrames(t, sock.out)
	require.Equal(t, uint64(1), binary.LittleEndian.Uint64(payloads[4]), "ACK carries in_seq")
	require.Equal(t, []msgr2.Tag{msgr2.TagHello, msgr2.TagAuthRequest, msgr2.TagAuthSignature,
		msgr2.TagClientIdent, msgr2.TagAck}, tags)
	var req msgr2.AuthRequest
	require.NoError(t, req.Unmarshal(payloads[1]))
	require.Equal(t, uint32(1), req.Method)
	require.Equal(t, []uint32{1}, req.PreferredModes)
	require.Equal(t, byte(authModeMon), req.AuthPayload[0])
	require.Equal(t, make([]byte, 32), payloads[2])
	var ci msgr2.ClientIdent
	require.NoError(t, ci.Unmarshal(payloads[3]))
	require.Equal(t, "127.0.0.1:6800", ci.TargetAddr.Addr.String())
	require.Len(t, ci.Addrs, 1)
	require.NotZero(t, ci.Addrs[0].Nonce)
	require.Equal(t, DefaultFeatures, ci.SupportedFeatures)
	require.NotZero(t, ci.Cookie, "lossless client cookie")
	require.Zero(t, ci.Flags, "not lossy")
}

func TestScriptedReconnectUnknownSessionIsReset(t *testing.T) {
	c, sock := newScriptConn(t, false)
	c.mu.Lock()
	defer c.mu.Unlock()
	before := 0
	feedLocked(c, fuzzFrames()[1], 4096)
	require.Equal(t, stSession, c.state, "waits for CLIENT_IDENT after SESSION_RESET: %v", c.sh.err)
	require.Greater(t, sock.sent, before)
}

func TestScriptedMessageBeforeHandshake(t *testing.T) {
	c, _ := newScriptConn(t, false)
	c.mu.Lock()
	defer c.mu.Unlock()
	feedLocked(c, fuzzFrames()[4], 4096)
	require.Equal(t, stClosed, c.state)
	require.ErrorContains(t, c.sh.err, "unexpected MESSAGE frame in state hello")
}

// A frame larger than the kept read buffer is handed to its message without
// a copy; bytes after it (the next frame) must survive the buffer switch.
func TestScriptedBigFrameDonatesBuffer(t *testing.T) {
	tests := []struct {
		name        string
		size, chunk int
	}{
		{"3MiB in 4KiB reads", 3 << 20, 4096},
		{"64KiB in 1000-byte reads", 64 << 10, 1000},
		{"20KiB in one read", 20 << 10, 1 << 20},
		{"below the own-buffer size", 8 << 10, 777},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setup := fuzzFrames()[0] // a whole server session; its message has seq 1
			c, _ := newScriptConn(t, false)
			c.mu.Lock()
			defer c.mu.Unlock()
			big := make([]byte, tc.size)
			for i := range big {
				big[i] = byte(i * 7)
			}
			var stream []byte
			stream = append(stream, setup...)
			stream = msgr2.AppendMessageFrame(stream, &msgr2.MsgHeader2{Seq: 2}, []byte("big"), nil, big)
			stream = msgr2.AppendMessageFrame(stream, &msgr2.MsgHeader2{Seq: 3}, []byte("after"), nil, []byte("tail"))
			stream = msgr2.AppendMessageFrame(stream, &msgr2.MsgHeader2{Seq: 4}, nil, nil, big[:tc.size/2])
			got := feedLocked(c, stream, tc.chunk)
			require.Equal(t, stReady, c.state, "%v", c.sh.err)
			require.Len(t, got, 4)
			requireBigFrameStream(t, c, got[1:], big)
		})
	}
}

// requireBigFrameStream checks what the big-frame tests feed after their
// setup: got is the big message (front "big", data big), then "after"/"tail",
// then the first half of big; the read buffer is back to its normal size
// and the big message owns its storage (big is changed here to prove it).
func requireBigFrameStream(t *testing.T, c *Connection, got []*Message, big []byte) {
	t.Helper()
	require.Equal(t, []byte("big"), got[0].Front)
	require.Equal(t, big, got[0].Data)
	require.Equal(t, []byte("after"), got[1].Front)
	require.Equal(t, []byte("tail"), got[1].Data)
	require.Equal(t, big[:len(big)/2], got[2].Data)
	require.LessOrEqual(t, len(c.rbuf), maxKeepRBuf, "read buffer back to normal size")
	require.False(t, c.ownFrame)
	big[0] ^= 1
	require.NotEqual(t, big[0], got[0].Data[0], "the message owns its storage")
}
