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

// recorder keeps every byte consumed and written before authentication
// ends: msgr2's AUTH_SIGNATURE is an HMAC over them (ProtocolV2 pre_auth).
// It records what the frame reader consumed, not what the socket returned:
// a read may already hold the peer's next frame (its own signature).
type recorder struct {
	c      net.Conn
	r      *bufio.Reader
	rx, tx bytes.Buffer
	on     bool
	sec    *msgr2.Secure // set once secure mode starts
}

func (r *recorder) control(t *testing.T, m msgr2.Payload) []byte {
	t.Helper()
	if r.sec == nil {
		return msgr2.AppendControlFrame(nil, m)
	}
	b, err := r.sec.AppendSecureControlFrame(nil, m)
	require.NoError(t, err)
	return b
}

// read fills b from the stream, recording it while pre-auth is on.
func (r *recorder) read(t *testing.T, b []byte) {
	t.Helper()
	_, err := io.ReadFull(r.r, b)
	require.NoError(t, err)
	if r.on {
		r.rx.Write(b)
	}
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
	if r.sec != nil {
		pre := make([]byte, msgr2.SecurePreambleLen)
		r.read(t, pre)
		p, inline, err := r.sec.OpenPreamble(pre, 16<<20)
		require.NoError(t, err)
		rest := make([]byte, p.SecureRestLen())
		r.read(t, rest)
		segs, err := r.sec.OpenRest(&p, inline, rest)
		require.NoError(t, err)
		return p.Tag, segs
	}
	pre := make([]byte, msgr2.PreambleLen)
	r.read(t, pre)
	p, err := msgr2.ParsePreamble(pre, 16<<20)
	require.NoError(t, err)
	rest := make([]byte, p.RestLen())
	r.read(t, rest)
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
// The service tickets the monitor issues (mon, osd, mds, mgr) decode.
//
// Then it opens a session by the Phase III authorizer instead, with a
// monitor ticket sealed, as a monitor peer's is, with the "mon." key of the
// keyring (secret_id -1: the monitor verifies authorizers against its
// keyring, not its rotating secrets): Ceph decodes our ticket (AuthTicket,
// caps, session key) and CephXAuthorize, we answer its challenge and open
// its CephXAuthorizeReply (nonce + 1, the connection secret), and
// AUTH_SIGNATURE is keyed by the ticket's session key.
func TestInteropCephMonCephX(t *testing.T) {
	mon := cephmon.Start(t, cephmon.Options{CephX: true})
	modes := map[uint32]string{msgr2.ConModeCRC: "crc", msgr2.ConModeSecure: "secure"}
	var sess *cephx.Session
	for _, mode := range []uint32{msgr2.ConModeCRC, msgr2.ConModeSecure} {
		t.Run(modes[mode], func(t *testing.T) {
			sess = cephxSession(t, mon, mode)
		})
	}
	for _, mode := range []uint32{msgr2.ConModeCRC, msgr2.ConModeSecure} {
		t.Run("authorizer/"+modes[mode], func(t *testing.T) {
			require.NotNil(t, sess, "a cephx session came first")
			for _, svc := range []uint32{cephx.ServiceMon, cephx.ServiceOSD, cephx.ServiceMDS, cephx.ServiceMgr} {
				tk, ok := sess.Services[svc]
				require.True(t, ok, "the monitor issued a ticket for service %d", svc)
				require.Len(t, tk.SessionKey.Secret, cephx.KeyLen)
				require.NotEmpty(t, tk.Blob)
			}
			monKey := keyringKey(t, mon, "mon.")
			now := time.Now()
			who := cephx.AuthTicket{Name: cephx.Name{Type: uint32(msgr2.EntityTypeClient), ID: "admin"},
				GlobalID: sess.GlobalID, Created: now, Expires: now.Add(time.Hour), AllowAll: true}
			tk, err := cephx.NewServiceTicket(cephx.ServiceMon, monKey.Secret, cephx.GeneralSecretID, who, time.Hour)
			require.NoError(t, err)
			authorizerSession(t, mon, sess.GlobalID, tk, mode)
		})
	}
}

// cephxSession runs one client session with the monitor in the given
// connection mode; in secure mode everything after AUTH_DONE is AES-GCM
// records, so the monitor's frames decrypting proves the record layout. It
// returns what the cephx exchange gave.
func cephxSession(t *testing.T, mon *cephmon.Mon, mode uint32) *cephx.Session {
	key := keyringKey(t, mon, "client.admin")

	addr := netip.MustParseAddrPort(mon.Addr)
	monAddr := msgr2.EntityAddr{Type: msgr2.AddrTypeMsgr2, Addr: addr}
	cli := &cephx.MonClient{Name: cephx.Name{Type: uint32(msgr2.EntityTypeClient), ID: "admin"}, Secret: key}
	step := func(name string) { t.Logf("step: %s", name) }
	// A new monitor answers AUTH_REQUEST by closing the connection until its
	// auth service has committed (its log: "haven't formed initial quorum,
	// EBUSY"); Ceph's MonClient reconnects, and so does this test, bounded.
	var rec *recorder
	var more msgr2.AuthReplyMore
	for attempt := 1; ; attempt++ {
		var ok bool
		rec, ok = startCephX(t, mon.Addr, monAddr, cli, mode, step, &more)
		if ok {
			break
		}
		require.Less(t, attempt, 100, "the monitor kept closing the connection at AUTH_REQUEST")
		time.Sleep(100 * time.Millisecond)
	}
	defer rec.c.Close()

	step("AUTH_REQUEST_MORE (CephXAuthenticate)")
	reqMore, err := cli.HandleReplyMore(more.AuthPayload)
	require.NoError(t, err)
	rec.write(t, msgr2.AppendControlFrame(nil, &msgr2.AuthRequestMore{AuthPayload: reqMore}))
	tag, segs := rec.frame(t)
	require.Equal(t, msgr2.TagAuthDone, tag, "the mon accepted the challenge key (got %v)", tag)
	var done msgr2.AuthDone
	require.NoError(t, done.Unmarshal(segs[0]))
	require.Equal(t, mode, done.ConMode)

	step("AUTH_DONE: session key, connection secret, tickets")
	sess, err := cli.HandleDone(done.GlobalID, done.AuthPayload)
	require.NoError(t, err)
	require.Len(t, sess.Auth.SessionKey.Secret, cephx.KeyLen)
	require.NotZero(t, sess.Auth.Validity)
	t.Logf("global_id %d, AUTH ticket secret_id %d valid %v, %d service tickets, connection secret %d bytes",
		sess.GlobalID, sess.Auth.SecretID, sess.Auth.Validity, len(sess.Services), len(sess.ConnectionSecret))

	finishSession(t, rec, monAddr, step, mode, done.GlobalID, sess.Auth.SessionKey.Secret, sess.ConnectionSecret)
	return sess
}

// keyringKey is name's key in the keyring ceph-authtool wrote for mon.
func keyringKey(t *testing.T, mon *cephmon.Mon, name string) cephx.Key {
	t.Helper()
	f, err := os.Open(mon.Keyring)
	require.NoError(t, err)
	defer f.Close()
	kr, err := cephx.ParseKeyring(f)
	require.NoError(t, err, "the keyring ceph-authtool wrote parses")
	key, err := kr.Lookup(name)
	require.NoError(t, err)
	if name == "client.admin" {
		require.Equal(t, "allow *", kr[name].Caps["mon"])
	}
	return key
}

// finishSession ends a session whose auth exchange is through (AUTH_DONE
// read): secure mode from the connection secret, AUTH_SIGNATURE both ways
// keyed by key, the idents, and MMonGetVersion answered.
func finishSession(t *testing.T, rec *recorder, monAddr msgr2.EntityAddr, step func(string), mode uint32, gid uint64, key, connSecret []byte) {
	t.Helper()
	c := rec.c
	var err error
	if mode == msgr2.ConModeSecure {
		require.GreaterOrEqual(t, len(connSecret), msgr2.ConnectionSecretLen)
		rec.sec, err = msgr2.NewSecure(connSecret, false)
		require.NoError(t, err)
	}

	step("AUTH_SIGNATURE both ways")
	mine := cephx.Sign(key, rec.rx.Bytes())
	txSoFar := append([]byte(nil), rec.tx.Bytes()...)
	rec.write(t, rec.control(t, &msgr2.AuthSignature{Signature: mine}))
	rec.on = false
	tag, segs := rec.frame(t)
	require.Equal(t, msgr2.TagAuthSignature, tag, "got %v: the mon rejected our signature", tag)
	var sig msgr2.AuthSignature
	require.NoError(t, sig.Unmarshal(segs[0]))
	require.True(t, cephx.VerifySignature(key, txSoFar, sig.Signature[:]),
		"the mon's signature is the HMAC of what we sent")

	step("CLIENT_IDENT / SERVER_IDENT")
	local := netip.MustParseAddrPort(c.LocalAddr().String())
	rec.write(t, rec.control(t, &msgr2.ClientIdent{
		Addrs: msgr2.AddrVec{{Type: msgr2.AddrTypeMsgr2, Nonce: 0x4321, Addr: local}}, TargetAddr: monAddr,
		GID: int64(gid), GlobalSeq: 1, SupportedFeatures: 0x3f01cfbffffdffff, Flags: msgr2.IdentFlagLossy, Cookie: 7,
	}))
	tag, _ = rec.frame(t)
	require.Equal(t, msgr2.TagServerIdent, tag, "got %v", tag)

	step("MMonGetVersion answered")
	front := binary.LittleEndian.AppendUint64(nil, 5)
	front = binary.LittleEndian.AppendUint32(front, uint32(len("osdmap")))
	front = append(front, "osdmap"...)
	h := msgr2.MsgHeader2{Seq: 1, Tid: 5, Type: 19, Priority: msgr2.PrioDefault, Version: 1, CompatVersion: 1}
	if rec.sec != nil {
		b, err := rec.sec.AppendSecureFrame(nil, msgr2.TagMessage, h.Marshal(nil), front)
		require.NoError(t, err)
		rec.write(t, b)
	} else {
		rec.write(t, msgr2.AppendMessageFrame(nil, &h, front, nil, nil))
	}
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

// authorizerSession opens a session with the monitor by the authorizer of
// ticket tk (issued to global id gid) and runs it as finishSession does.
func authorizerSession(t *testing.T, mon *cephmon.Mon, gid uint64, tk cephx.Ticket, mode uint32) {
	addr := netip.MustParseAddrPort(mon.Addr)
	monAddr := msgr2.EntityAddr{Type: msgr2.AddrTypeMsgr2, Addr: addr}
	step := func(name string) { t.Logf("step: %s", name) }
	a, req, err := cephx.NewAuthorizer(gid, tk)
	require.NoError(t, err)
	rec := hello(t, mon.Addr, monAddr, step)
	defer rec.c.Close()

	step("AUTH_REQUEST cephx authorizer")
	rec.write(t, msgr2.AppendControlFrame(nil, &msgr2.AuthRequest{Method: msgr2.AuthMethodCephX,
		PreferredModes: []uint32{mode}, AuthPayload: req}))
	tag, segs := rec.frame(t)
	require.Equal(t, msgr2.TagAuthReplyMore, tag, "the monitor challenges the authorizer (got %v)", tag)
	var more msgr2.AuthReplyMore
	require.NoError(t, more.Unmarshal(segs[0]))

	step("AUTH_REQUEST_MORE: the challenge answered")
	answer, err := a.HandleChallenge(more.AuthPayload)
	require.NoError(t, err, "the challenge opens with the ticket's session key")
	rec.write(t, msgr2.AppendControlFrame(nil, &msgr2.AuthRequestMore{AuthPayload: answer}))
	tag, segs = rec.frame(t)
	require.Equal(t, msgr2.TagAuthDone, tag, "the monitor accepted the authorizer (got %v)", tag)
	var done msgr2.AuthDone
	require.NoError(t, done.Unmarshal(segs[0]))
	require.Equal(t, mode, done.ConMode)
	require.Equal(t, gid, done.GlobalID, "the session is the ticket's global id")

	step("AUTH_DONE: CephXAuthorizeReply")
	secret, err := a.HandleReply(done.AuthPayload)
	require.NoError(t, err, "the reply opens and returns our nonce + 1")
	finishSession(t, rec, monAddr, step, mode, gid, a.SessionKey(), secret)
}

// hello connects to the monitor and exchanges banners and HELLO, recording
// for AUTH_SIGNATURE.
func hello(t *testing.T, monHost string, monAddr msgr2.EntityAddr, step func(string)) *recorder {
	t.Helper()
	c, err := net.DialTimeout("tcp", monHost, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	rec := &recorder{c: c, r: bufio.NewReader(c), on: true}

	step("banner")
	rec.write(t, msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0))
	banner := make([]byte, msgr2.BannerLen)
	rec.read(t, banner)
	_, _, err = msgr2.ParseBanner(banner)
	require.NoError(t, err)

	step("hello")
	rec.write(t, msgr2.AppendControlFrame(nil, &msgr2.Hello{EntityType: msgr2.EntityTypeClient, PeerAddr: monAddr}))
	tag, _ := rec.frame(t)
	require.Equal(t, msgr2.TagHello, tag)
	return rec
}

// startCephX connects, exchanges banners and HELLO, and sends AUTH_REQUEST
// (cephx); it returns false if the monitor closed the connection instead of
// answering (not ready yet), and fails the test on anything else.
func startCephX(t *testing.T, monHost string, monAddr msgr2.EntityAddr, cli *cephx.MonClient, mode uint32,
	step func(string), more *msgr2.AuthReplyMore) (*recorder, bool) {
	t.Helper()
	rec := hello(t, monHost, monAddr, step)
	c := rec.c

	step("AUTH_REQUEST cephx")
	rec.write(t, msgr2.AppendControlFrame(nil, &msgr2.AuthRequest{Method: msgr2.AuthMethodCephX,
		PreferredModes: []uint32{mode}, AuthPayload: cli.InitialRequest()}))
	if _, err := rec.r.Peek(1); err == io.EOF {
		c.Close()
		t.Logf("the monitor closed the connection at AUTH_REQUEST (not ready); retrying")
		return nil, false
	}
	tag, segs := rec.frame(t)
	if tag == msgr2.TagAuthBadMethod {
		var bm msgr2.AuthBadMethod
		require.NoError(t, bm.Unmarshal(segs[0]))
		t.Fatalf("mon refused cephx: %+v", bm)
	}
	require.Equal(t, msgr2.TagAuthReplyMore, tag)
	require.NoError(t, more.Unmarshal(segs[0]))
	return rec, true
}
