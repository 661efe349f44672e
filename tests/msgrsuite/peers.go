package msgrsuite

// This file is the peer-behaviour group: a session continued on a new
// socket, misbehaving peers, the handshake timeout and keepalives.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/stretchr/testify/require"
)

// testSessionContinuation: a lossless client whose connection broke before
// it got SERVER_IDENT comes back with CLIENT_IDENT and the same cookie; the
// server continues the same session, so what the application queued on it
// in between is delivered, and nothing is reset.
func testSessionContinuation(t *testing.T, stack string) {
	cfg := Config(stack)
	cfg.ConnectionIdleTimeout = 30 * time.Second // the raw peer sends no keepalives
	srvRec := newRecorder(true)
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", false, srvRec)
	srv.m.SetPolicy(msgr.EntityTypeMgr, msgr.StatefulServer())
	require.NoError(t, srv.m.Start())
	rawStack := startRawStack(t, stack)

	hs := clientHandshake(msgr.EntityTypeMgr, 4242, 777)
	p1 := dialRaw(t, rawStack, srv.addr)
	p1.write(t, hs)
	waitFor(t, 10*time.Second, "session accepted", func() bool { return len(srvRec.acceptedList()) == 1 })
	sess := srvRec.acceptedList()[0]
	for i := 0; i < 3; i++ {
		require.NoError(t, sess.SendMessage(&msgr.Message{Type: 9, Front: []byte{byte('a' + i)}}))
	}
	// the first socket dies before the client read anything
	require.NoError(t, p1.w.Center().Submit(func() { _ = p1.s.Close() }))
	waitFor(t, 10*time.Second, "fault noticed", func() bool { return sess.Stats().Faults == 1 })

	p2 := dialRaw(t, rawStack, srv.addr)
	p2.write(t, hs)
	msgs := 0
	tags, segs := p2.readFrames(t, 10*time.Second, func(tags []msgr2.Tag) bool {
		n := 0
		for _, tg := range tags {
			if tg == msgr2.TagMessage {
				n++
			}
		}
		msgs = n
		return n == 3
	})
	require.Equal(t, 3, msgs)
	require.Contains(t, tags, msgr2.TagServerIdent)
	var fronts []string
	for i, tg := range tags {
		if tg == msgr2.TagMessage {
			h, front, _, _, err := msgr2.ParseMessage(segs[i])
			require.NoError(t, err)
			require.Equal(t, uint16(9), h.Type)
			fronts = append(fronts, string(front))
		}
	}
	require.Equal(t, []string{"a", "b", "c"}, fronts)
	require.Zero(t, srvRec.remoteResetCount())
	// MsHandleAccept goes through the dispatch queue: it may come after the
	// frames reached the peer.
	waitFor(t, 10*time.Second, "second accept reported", func() bool { return len(srvRec.acceptedList()) >= 2 })
	require.Len(t, srvRec.acceptedList(), 2)
	require.Same(t, sess, srvRec.acceptedList()[1], "the same session continued")
	require.True(t, sess.IsConnected())
}

// badPeerHang bounds BadPeers' waits for the server to cut a bad peer: far
// above the idle timeout that cuts the silent ones, so only a server that
// never cuts fails.
const badPeerHang = time.Minute

func testBadPeers(t *testing.T, stack string) {
	cfg := Config(stack)
	srvRec := newRecorder(true)
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", true, srvRec)
	srv.m.SetPolicy(msgr.EntityTypeMDS, msgr.StatelessServer())

	// A healthy client keeps talking while the bad peers are handled.
	cli := newEndpoint(t, cfg, clientName(1), "", true, nil)
	good, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	stop := make(chan struct{})
	var sent atomic.Int64
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if good.SendMessage(&msgr.Message{Type: 1, Front: payload(9, uint64(i), 32)}) != nil {
				return
			}
			sent.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()

	rawStack := startRawStack(t, stack)

	banner := msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0)
	badCRC := helloFrame()
	badCRC[28] ^= 0xff
	oversized := helloFrame()
	binary.LittleEndian.PutUint32(oversized[2:], 1<<30)
	binary.LittleEndian.PutUint32(oversized[28:], msgr2.CRC32C(0, oversized[:28]))
	cases := []struct {
		name  string
		bytes []byte
		want  string
	}{
		{"garbage", bytes.Repeat([]byte("this is not ceph "), 4), "banner"},
		{"wrong crc", append(append([]byte{}, banner...), badCRC...), "crc mismatch"},
		{"oversized segment", append(append([]byte{}, banner...), oversized[:32]...), "exceeds limit"},
		{"half frame then silence", append(append([]byte{}, banner...), helloFrame()[:20]...), "no incoming bytes"},
		{"half preamble after hello", append(append(append([]byte{}, banner...), helloFrame()...), helloFrame()[:40]...), "no incoming bytes"},
		// a whole client handshake (as an MDS, which this server treats as
		// lossy), then silence: the ready session times out
		{"silent after handshake", silentClient(), fmt.Sprintf("(idle timeout %v) in state ready", cfg.ConnectionIdleTimeout)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(srvRec.resetList())
			p := dialRaw(t, rawStack, srv.addr)
			p.write(t, tc.bytes)
			// The server's own report is the event to wait for; the bound
			// only ends a hung test (a loaded machine may take many idle
			// timeouts to fire the timer and close), it asserts no timing.
			waitFor(t, badPeerHang, "reset reported", func() bool { return len(srvRec.resetList()) > before })
			p.waitClosed(t, badPeerHang)
			ev := srvRec.resetList()[before]
			require.Error(t, ev.err)
			require.Contains(t, ev.err.Error(), tc.want)
			t.Logf("server closed the bad peer: %v", ev.err)
		})
	}
	close(stop)
	sender.Wait()
	waitFor(t, 20*time.Second, "healthy client's messages", func() bool { return int64(srvRec.count()) == sent.Load() })
	require.True(t, good.IsConnected())
	require.Zero(t, good.Stats().Faults)
}

// testHandshakeTimeout: a peer that keeps trickling bytes (so it is never
// idle) but never finishes the handshake is cut at ConnectionReadyTimeout.
func testHandshakeTimeout(t *testing.T, stack string) {
	cfg := Config(stack)
	cfg.ConnectionReadyTimeout = 400 * time.Millisecond
	cfg.ConnectionIdleTimeout = 5 * time.Second
	srvRec := newRecorder(true)
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", true, srvRec)
	rawStack := startRawStack(t, stack)
	p := dialRaw(t, rawStack, srv.addr)
	p.write(t, msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0))
	hello := helloFrame()
	for i := 0; i < len(hello)-1 && len(srvRec.resetList()) == 0; i++ {
		p.write(t, hello[i:i+1])
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, 10*time.Second, "reset reported", func() bool { return len(srvRec.resetList()) == 1 })
	err := srvRec.resetList()[0].err
	require.ErrorContains(t, err, "handshake not finished within 400ms")
	var te interface{ Timeout() bool }
	require.ErrorAs(t, err, &te)
	require.True(t, te.Timeout())
	p.waitClosed(t, 10*time.Second)
}

// testKeepalive: an idle session exchanges KEEPALIVE2/KEEPALIVE2_ACK and
// outlives several idle timeouts.
func testKeepalive(t *testing.T, stack string) {
	cfg := Config(stack)
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", true, newRecorder(true))
	cliRec := newRecorder(true)
	cli := newEndpoint(t, cfg, clientName(1), "", true, cliRec)
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 1}))
	waitFor(t, 10*time.Second, "message", func() bool { return srv.rec.count() == 1 })
	// enough keepalive round trips to span more than two idle timeouts
	acks := uint64(2*cfg.ConnectionIdleTimeout/cfg.KeepaliveInterval) + 1
	waitFor(t, 30*time.Second, "keepalive acks", func() bool { return c.Stats().KeepaliveAcks >= acks })
	st := c.Stats()
	require.GreaterOrEqual(t, st.KeepalivesSent, st.KeepaliveAcks)
	require.Zero(t, st.Faults)
	require.True(t, c.IsConnected())
	require.Empty(t, cliRec.resetList())
	require.Empty(t, srv.rec.resetList())
}
