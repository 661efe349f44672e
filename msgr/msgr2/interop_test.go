package msgr2

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/tests/cephmon"
)

// Ceph constants the interop test needs (not part of the codec).
const (
	cephFeaturesAll     = 0x3f01cfbffffdffff // pacific CEPH_FEATURES_ALL
	authModeMon         = 10                 // AUTH_MODE_MON (auth/Auth.h)
	msgMonGetVersion    = 19                 // CEPH_MSG_MON_GET_VERSION
	msgMonGetVersionRep = 20                 // CEPH_MSG_MON_GET_VERSION_REPLY
)

// frameReader reads whole frames with the codec, in two steps as a
// messenger does.
type frameReader struct {
	r *bufio.Reader
}

func (fr *frameReader) next(t *testing.T) (Tag, [MaxSegments][]byte) {
	t.Helper()
	pre := make([]byte, PreambleLen)
	_, err := io.ReadFull(fr.r, pre)
	require.NoError(t, err)
	p, err := ParsePreamble(pre, 16<<20)
	require.NoError(t, err)
	rest := make([]byte, p.RestLen())
	_, err = io.ReadFull(fr.r, rest)
	require.NoError(t, err)
	segs, err := ParseFrameRest(&p, rest)
	require.NoError(t, err)
	return p.Tag, segs
}

// TestInteropCephMon talks to a real Ceph 16.2 monitor with nothing but
// this codec: banner, HELLO, AUTH_REQUEST (none), AUTH_DONE, CLIENT_IDENT,
// SERVER_IDENT, KEEPALIVE2/ACK, and a MESSAGE round trip (MMonGetVersion).
func TestInteropCephMon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ceph-mon; skipped with -short")
	}
	// A throw-away ceph-mon (auth none, msgr2 only) on loopback, leader of
	// monmap epoch 1; ASYNCMSGR_CEPH_MON=ip:port uses a running one.
	mon := netip.MustParseAddrPort(cephmon.Start(t, cephmon.Options{Env: "ASYNCMSGR_CEPH_MON"}).Addr)
	// A monitor that has just become leader closes connections at
	// AUTH_REQUEST until its auth service has committed (its log: "haven't
	// formed initial quorum, EBUSY"); Ceph's clients reconnect, and so does
	// this test, bounded.
	var (
		conn    net.Conn
		fr      *frameReader
		hello   Hello
		monAddr EntityAddr
		local   netip.AddrPort
		tag     Tag
		segs    [MaxSegments][]byte
	)
	for attempt := 1; ; attempt++ {
		var ok bool
		conn, fr, hello, monAddr, local, ok = startSession(t, mon)
		if ok {
			break
		}
		require.Less(t, attempt, 100, "the monitor kept closing the connection at AUTH_REQUEST")
		time.Sleep(100 * time.Millisecond)
	}
	defer conn.Close()
	write := func(b []byte) {
		_, err := conn.Write(b)
		require.NoError(t, err)
	}
	tag, segs = fr.next(t)
	require.Equal(t, TagAuthDone, tag, "got %v", tag)
	var done AuthDone
	require.NoError(t, done.Unmarshal(segs[0]))
	require.NotZero(t, done.GlobalID)
	require.Equal(t, ConModeCRC, done.ConMode)

	// AUTH_SIGNATURE both ways (ProtocolV2::finish_auth): an HMAC of the
	// auth frames with the session key, all zeros without one (auth none).
	write(AppendControlFrame(nil, &AuthSignature{}))
	tag, segs = fr.next(t)
	require.Equal(t, TagAuthSignature, tag)
	require.Len(t, segs[0], 32, "sha256_digest_t is 32 raw bytes")
	var sig AuthSignature
	require.NoError(t, sig.Unmarshal(segs[0]))
	require.Equal(t, [32]byte{}, sig.Signature)

	// CLIENT_IDENT / SERVER_IDENT.
	ident := &ClientIdent{
		Addrs:             AddrVec{{Type: AddrTypeMsgr2, Nonce: 0x1234, Addr: local}},
		TargetAddr:        monAddr,
		GID:               int64(done.GlobalID),
		GlobalSeq:         1,
		SupportedFeatures: cephFeaturesAll,
		Flags:             IdentFlagLossy,
		Cookie:            0xc0ffee,
	}
	write(AppendControlFrame(nil, ident))
	tag, segs = fr.next(t)
	if tag == TagIdentMissingFeatures {
		var m IdentMissingFeatures
		require.NoError(t, m.Unmarshal(segs[0]))
		t.Fatalf("mon wants features %#x", m.Features)
	}
	require.Equal(t, TagServerIdent, tag)
	var sident ServerIdent
	require.NoError(t, sident.Unmarshal(segs[0]))
	require.Equal(t, monAddr.Addr, sident.Addrs.Msgr2Addr().Addr, "server addrs %v", sident.Addrs)
	require.NotZero(t, sident.SupportedFeatures)
	require.Equal(t, IdentFlagLossy, sident.Flags&IdentFlagLossy)

	// KEEPALIVE2 is echoed.
	stamp := time.Unix(1700000000, 123456789)
	write(AppendControlFrame(nil, &Keepalive2{Timestamp: stamp}))
	tag, segs = fr.next(t)
	require.Equal(t, TagKeepalive2Ack, tag)
	var ka Keepalive2Ack
	require.NoError(t, ka.Unmarshal(segs[0]))
	require.True(t, stamp.Equal(ka.Timestamp), "ack %v", ka.Timestamp)

	// A MESSAGE both ways: MMonGetVersion("osdmap") → MMonGetVersionReply.
	front := binary.LittleEndian.AppendUint64(nil, 77) // handle
	front = binary.LittleEndian.AppendUint32(front, uint32(len("osdmap")))
	front = append(front, "osdmap"...)
	h := MsgHeader2{Seq: 1, Tid: 77, Type: msgMonGetVersion, Priority: PrioDefault, Version: 1, CompatVersion: 1}
	write(AppendMessageFrame(nil, &h, front, nil, nil))
	for {
		tag, segs = fr.next(t)
		if tag == TagAck {
			var a Ack
			require.NoError(t, a.Unmarshal(segs[0]))
			require.Equal(t, uint64(1), a.Seq)
			continue
		}
		break
	}
	require.Equal(t, TagMessage, tag)
	rh, rfront, _, _, err := ParseMessage(segs)
	require.NoError(t, err)
	require.Equal(t, uint16(msgMonGetVersionRep), rh.Type)
	require.Equal(t, uint64(1), rh.Seq)
	require.Equal(t, uint64(1), rh.AckSeq, "the reply acks our message")
	require.GreaterOrEqual(t, len(rfront), 24)
	require.Equal(t, uint64(77), binary.LittleEndian.Uint64(rfront), "reply handle")
	t.Logf("mon %v: HELLO peer %v, global_id %d, server addrs %v, osdmap version %d",
		mon, hello.PeerAddr, done.GlobalID, sident.Addrs, binary.LittleEndian.Uint64(rfront[8:]))
}

// startSession dials the monitor and runs the exchange up to AUTH_REQUEST
// (banner, HELLO both ways); ok is false if the monitor then closed the
// connection instead of answering (not ready yet).
func startSession(t *testing.T, mon netip.AddrPort) (conn net.Conn, fr *frameReader, hello Hello, monAddr EntityAddr, local netip.AddrPort, ok bool) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", mon.String(), 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
	fr = &frameReader{r: bufio.NewReader(conn)}
	write := func(b []byte) {
		_, err := conn.Write(b)
		require.NoError(t, err)
	}

	// Banner.
	write(AppendBanner(nil, FeatureRevision1, 0))
	banner := make([]byte, BannerLen)
	_, err = io.ReadFull(fr.r, banner)
	require.NoError(t, err)
	sup, req, err := ParseBanner(banner)
	require.NoError(t, err)
	require.NotZero(t, sup&FeatureRevision1, "mon supports msgr2.1")
	require.Zero(t, req&^FeatureRevision1, "mon requires nothing we lack")

	// HELLO both ways.
	monAddr = EntityAddr{Type: AddrTypeMsgr2, Addr: mon}
	write(AppendControlFrame(nil, &Hello{EntityType: EntityTypeClient, PeerAddr: monAddr}))
	tag, segs := fr.next(t)
	require.Equal(t, TagHello, tag)
	require.NoError(t, hello.Unmarshal(segs[0]))
	require.Equal(t, EntityTypeMon, hello.EntityType)
	local = netip.MustParseAddrPort(conn.LocalAddr().String())
	require.Equal(t, local.Addr(), hello.PeerAddr.Addr.Addr(), "mon saw us at %v", hello.PeerAddr)
	require.Equal(t, local.Port(), hello.PeerAddr.Addr.Port())

	// AUTH_REQUEST with method none; payload as MonConnection sends it.
	payload := []byte{authModeMon}
	payload = binary.LittleEndian.AppendUint32(payload, uint32(EntityTypeClient))
	payload = binary.LittleEndian.AppendUint32(payload, uint32(len("admin")))
	payload = append(payload, "admin"...)
	payload = binary.LittleEndian.AppendUint64(payload, 0)
	write(AppendControlFrame(nil, &AuthRequest{Method: AuthMethodNone, PreferredModes: []uint32{ConModeCRC}, AuthPayload: payload}))
	if _, err := fr.r.Peek(1); err == io.EOF {
		conn.Close()
		t.Logf("the monitor closed the connection at AUTH_REQUEST (not ready); retrying")
		return nil, nil, hello, monAddr, local, false
	}
	return conn, fr, hello, monAddr, local, true
}
