package cephx_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/tests/cephmon"
)

// recorder keeps every byte read and written before authentication ends:
// msgr2's AUTH_SIGNATURE is an HMAC over them (ProtocolV2 pre_auth).
type recorder struct {
	c      net.Conn
	r      *bufio.Reader
	rx, tx bytes.Buffer
	on     bool
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.c.Read(p)
	if r.on {
		r.rx.Write(p[:n])
	}
	return n, err
}

func (r *recorder) write(t *testing.T, b []byte) {
	t.Helper()
	if r.on {
		r.tx.Write(b)
	}
	_, err := r.c.Write(b)
	require.NoError(t, err)
}

func (r *recorder) frame(t *testing.T) (msgr2.Tag, [msgr2.MaxSegments][]byte) {
	t.Helper()
	pre := make([]byte, msgr2.PreambleLen)
	_, err := io.ReadFull(r.r, pre)
	require.NoError(t, err)
	p, err := msgr2.ParsePreamble(pre, 16<<20)
	require.NoError(t, err)
	rest := make([]byte, p.RestLen())
	_, err = io.ReadFull(r.r, rest)
	require.NoError(t, err)
	segs, err := msgr2.ParseFrameRest(&p, rest)
	require.NoError(t, err)
	return p.Tag, segs
}

// TestInteropCephMonCephX authenticates as client.admin with a real Ceph 16.2
// monitor that requires cephx, with nothing but the msgr2 codec and this
// package: the server challenge, CephXAuthenticate (the challenge key proves
// the envelope and the key decoding), AUTH_DONE (the session key and tickets
// open with our secret), and AUTH_SIGNATURE both ways (the HMAC over exactly
// the bytes Ceph signs), then CLIENT_IDENT/SERVER_IDENT in crc mode.
func TestInteropCephMonCephX(t *testing.T) {
	mon := cephmon.Start(t, cephmon.Options{CephX: true})
	f, err := os.Open(mon.Keyring)
	require.NoError(t, err)
	kr, err := cephx.ParseKeyring(f)
	f.Close()
	require.NoError(t, err, "the keyring ceph-authtool wrote parses")
	key, err := kr.Lookup("client.admin")
	require.NoError(t, err)
	require.Equal(t, "allow *", kr["client.admin"].Caps["mon"])

	addr := netip.MustParseAddrPort(mon.Addr)
	c, err := net.DialTimeout("tcp", mon.Addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	rec := &recorder{c: c, on: true}
	rec.r = bufio.NewReader(rec)

	step := func(name string) { t.Logf("step: %s", name) }
	step("banner")
	rec.write(t, msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0))
	banner := make([]byte, msgr2.BannerLen)
	_, err = io.ReadFull(rec.r, banner)
	require.NoError(t, err)
	_, _, err = msgr2.ParseBanner(banner)
	require.NoError(t, err)

	step("hello")
	monAddr := msgr2.EntityAddr{Type: msgr2.AddrTypeMsgr2, Addr: addr}
	rec.write(t, msgr2.AppendControlFrame(nil, &msgr2.Hello{EntityType: msgr2.EntityTypeClient, PeerAddr: monAddr}))
	tag, _ := rec.frame(t)
	require.Equal(t, msgr2.TagHello, tag)

	step("AUTH_REQUEST cephx")
	cli := &cephx.MonClient{Name: cephx.Name{Type: uint32(msgr2.EntityTypeClient), ID: "admin"}, Secret: key}
	rec.write(t, msgr2.AppendControlFrame(nil, &msgr2.AuthRequest{Method: msgr2.AuthMethodCephX,
		PreferredModes: []uint32{msgr2.ConModeCRC}, AuthPayload: cli.InitialRequest()}))
	tag, segs := rec.frame(t)
	if tag == msgr2.TagAuthBadMethod {
		var bm msgr2.AuthBadMethod
		require.NoError(t, bm.Unmarshal(segs[0]))
		t.Fatalf("mon refused cephx: %+v", bm)
	}
	require.Equal(t, msgr2.TagAuthReplyMore, tag)
	var more msgr2.AuthReplyMore
	require.NoError(t, more.Unmarshal(segs[0]))

	step("AUTH_REQUEST_MORE (CephXAuthenticate)")
	reqMore, err := cli.HandleReplyMore(more.AuthPayload)
	require.NoError(t, err)
	rec.write(t, msgr2.AppendControlFrame(nil, &msgr2.AuthRequestMore{AuthPayload: reqMore}))
	tag, segs = rec.frame(t)
	require.Equal(t, msgr2.TagAuthDone, tag, "the mon accepted the challenge key (got %v)", tag)
	var done msgr2.AuthDone
	require.NoError(t, done.Unmarshal(segs[0]))
	require.Equal(t, msgr2.ConModeCRC, done.ConMode)

	step("AUTH_DONE: session key, connection secret, tickets")
	sess, err := cli.HandleDone(done.GlobalID, done.AuthPayload)
	require.NoError(t, err)
	require.Len(t, sess.Auth.SessionKey.Secret, cephx.KeyLen)
	require.NotZero(t, sess.Auth.Validity)
	t.Logf("global_id %d, AUTH ticket secret_id %d valid %v, %d service tickets, connection secret %d bytes",
		sess.GlobalID, sess.Auth.SecretID, sess.Auth.Validity, len(sess.Services), len(sess.ConnectionSecret))

	step("AUTH_SIGNATURE both ways")
	mine := cephx.Sign(sess.Auth.SessionKey.Secret, rec.rx.Bytes())
	txSoFar := append([]byte(nil), rec.tx.Bytes()...)
	rec.write(t, msgr2.AppendControlFrame(nil, &msgr2.AuthSignature{Signature: mine}))
	rec.on = false
	tag, segs = rec.frame(t)
	require.Equal(t, msgr2.TagAuthSignature, tag, "got %v: the mon rejected our signature", tag)
	var sig msgr2.AuthSignature
	require.NoError(t, sig.Unmarshal(segs[0]))
	require.True(t, cephx.VerifySignature(sess.Auth.SessionKey.Secret, txSoFar, sig.Signature[:]),
		"the mon's signature is the HMAC of what we sent")

	step("CLIENT_IDENT / SERVER_IDENT")
	local := netip.MustParseAddrPort(c.LocalAddr().String())
	rec.write(t, msgr2.AppendControlFrame(nil, &msgr2.ClientIdent{
		Addrs: msgr2.AddrVec{{Type: msgr2.AddrTypeMsgr2, Nonce: 0x4321, Addr: local}}, TargetAddr: monAddr,
		GID: int64(done.GlobalID), GlobalSeq: 1, SupportedFeatures: 0x3f01cfbffffdffff, Flags: msgr2.IdentFlagLossy, Cookie: 7,
	}))
	tag, _ = rec.frame(t)
	require.Equal(t, msgr2.TagServerIdent, tag, "got %v", tag)

	step("MMonGetVersion answered")
	front := binary.LittleEndian.AppendUint64(nil, 5)
	front = binary.LittleEndian.AppendUint32(front, uint32(len("osdmap")))
	front = append(front, "osdmap"...)
	h := msgr2.MsgHeader2{Seq: 1, Tid: 5, Type: 19, Priority: msgr2.PrioDefault, Version: 1, CompatVersion: 1}
	rec.write(t, msgr2.AppendMessageFrame(nil, &h, front, nil, nil))
	for {
		tag, segs = rec.frame(t)
		if tag != msgr2.TagAck {
			break
		}
	}
	require.Equal(t, msgr2.TagMessage, tag)
	rh, _, _, _, err := msgr2.ParseMessage(segs)
	require.NoError(t, err)
	require.Equal(t, uint16(20), rh.Type, "MMonGetVersionReply")
}
