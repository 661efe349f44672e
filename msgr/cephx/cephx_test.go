package cephx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

func testKey(b byte) Key {
	return Key{Type: CryptoKeyAES, CreatedSec: 1700000000, CreatedNsec: 5, Secret: bytes.Repeat([]byte{b}, KeyLen)}
}

func TestKeyRoundTrip(t *testing.T) {
	k := testKey(7)
	got, err := ParseKey(k.String())
	require.NoError(t, err)
	require.Equal(t, k, got)
	for name, bad := range map[string][]byte{
		"short":    k.Marshal(nil)[:10],
		"trailing": append(k.Marshal(nil), 0),
		"type":     Key{Type: 2, Secret: k.Secret}.Marshal(nil),
		"length":   Key{Type: 1, Secret: k.Secret[:8]}.Marshal(nil),
	} {
		_, err := DecodeKey(bad)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	_, err = ParseKey("not base64!")
	require.Error(t, err)
}

// TestKeyFromCephAuthtool decodes keys made by Ceph's own ceph-authtool, in
// a keyring it wrote and as --print-key prints them.
func TestKeyFromCephAuthtool(t *testing.T) {
	testenv.RequireTools(t, testenv.Tool{Name: "ceph-authtool", Package: "ceph-common"})
	dir := t.TempDir()
	kr := filepath.Join(dir, "keyring")
	out, err := exec.Command("ceph-authtool", "--create-keyring", kr, "--gen-key", "-n", "client.alice",
		"--cap", "mon", "allow r", "--cap", "osd", "allow rw pool=x").CombinedOutput()
	require.NoError(t, err, "%s", out)
	printed, err := exec.Command("ceph-authtool", kr, "-n", "client.alice", "--print-key").Output()
	require.NoError(t, err)
	k, err := ParseKey(string(printed))
	require.NoError(t, err)
	require.Len(t, k.Secret, KeyLen)
	require.WithinDuration(t, time.Now(), k.Created(), time.Hour, "created stamp decodes")

	f, err := os.Open(kr)
	require.NoError(t, err)
	defer f.Close()
	ring, err := ParseKeyring(f)
	require.NoError(t, err)
	got, err := ring.Lookup("client.alice")
	require.NoError(t, err)
	require.Equal(t, k, got)
	require.Equal(t, "allow r", ring["client.alice"].Caps["mon"])
	require.Equal(t, "allow rw pool=x", ring["client.alice"].Caps["osd"])
	_, err = ring.Lookup("client.bob")
	require.ErrorIs(t, err, ErrNoKey)
}

func TestParseKeyringErrors(t *testing.T) {
	good := testKey(1).String()
	for name, text := range map[string]string{
		"outside section": "key = " + good,
		"bad section":     "[client.x\n",
		"no key":          "[client.x]\ncaps mon = \"allow *\"\n",
		"bad key":         "[client.x]\nkey = AAAA\n",
		"unknown":         "[client.x]\nkey = " + good + "\ncolor = red\n",
		"no equals":       "[client.x]\nkey\n",
	} {
		_, err := ParseKeyring(strings.NewReader(text))
		require.Error(t, err, name)
		require.NotContains(t, err.Error(), "\n", "one-line error")
	}
	kr, err := ParseKeyring(strings.NewReader("# c\n; c\n[client.x]\n\tkey = " + good + "\n\tcaps  mon = 'allow *'\n"))
	require.NoError(t, err)
	require.Equal(t, "allow *", kr["client.x"].Caps["mon"])
}

func TestLoadKeySearchList(t *testing.T) {
	dir := t.TempDir()
	k := testKey(3)
	p := filepath.Join(dir, "ceph.client.x.keyring")
	require.NoError(t, os.WriteFile(p, []byte("[client.x]\nkey = "+k.String()+"\n"), 0o600))
	list := filepath.Join(dir, "missing") + "," + filepath.Join(dir, "$cluster.$name.keyring")
	got, err := LoadKey("", "", list, "", "client.x")
	require.NoError(t, err)
	require.Equal(t, k, got)
	_, err = LoadKey("", "", filepath.Join(dir, "none"), "ceph", "client.x")
	require.ErrorIs(t, err, ErrNoKey)
	require.Contains(t, err.Error(), filepath.Join(dir, "none"), "names where it looked")
	got, err = LoadKey(k.String(), "", "", "", "client.x")
	require.NoError(t, err)
	require.Equal(t, k, got)
	kf := filepath.Join(dir, "kf")
	require.NoError(t, os.WriteFile(kf, []byte(k.String()+"\n"), 0o600))
	got, err = LoadKey("", kf, "", "", "client.x")
	require.NoError(t, err)
	require.Equal(t, k, got)
	require.Equal(t, []string{"/etc/ceph/ceph.client.admin.keyring", "/etc/ceph/ceph.keyring", "/etc/ceph/keyring", "/etc/ceph/keyring.bin"},
		ExpandKeyringPaths(DefaultKeyringPath, "", "client.admin"))
}

func TestEnvelope(t *testing.T) {
	k := testKey(9).Secret
	for _, n := range []int{0, 1, 6, 7, 8, 100} {
		payload := bytes.Repeat([]byte{0xab}, n)
		ct, err := Seal(k, payload)
		require.NoError(t, err)
		require.Zero(t, len(ct)%16)
		got, err := Open(k, ct)
		require.NoError(t, err)
		require.Equal(t, payload, got)
		_, err = Open(testKey(8).Secret, ct)
		require.ErrorIs(t, err, ErrBadKey, "wrong key")
		bad := append([]byte(nil), ct...)
		bad[0] ^= 1
		_, err = Open(k, bad)
		require.ErrorIs(t, err, ErrBadKey, "flipped bit")
	}
	_, err := Decrypt(k, make([]byte, 15))
	require.ErrorIs(t, err, ErrBadKey)
}

func TestSignature(t *testing.T) {
	k := testKey(4).Secret
	s := Sign(k, []byte("bytes"))
	require.True(t, VerifySignature(k, []byte("bytes"), s[:]))
	require.False(t, VerifySignature(k, []byte("bytez"), s[:]))
	require.False(t, VerifySignature(testKey(5).Secret, []byte("bytes"), s[:]))
}

// serverDone builds an AUTH_DONE payload as a monitor does, for the tests of
// HandleDone's decoder.
func serverDone(t *testing.T, secret Key, session Key, connSecret []byte, status int32) []byte {
	t.Helper()
	b := binary.LittleEndian.AppendUint16(nil, opGetAuthSessionKey)
	b = binary.LittleEndian.AppendUint32(b, uint32(status))
	b = testTicketReply(t, b, secret.Secret, ServiceAuth, session)
	var cbl []byte
	if connSecret != nil {
		var err error
		cbl, err = AppendSealed(nil, session.Secret, appendBlob(nil, connSecret))
		require.NoError(t, err)
	}
	b = appendBlob(b, cbl)
	svc := testTicketReply(t, nil, session.Secret, ServiceOSD, testKey(6))
	return appendBlob(b, svc)
}

func testTicketReply(t *testing.T, b, secret []byte, service uint32, session Key) []byte {
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, service)
	b = append(b, 1)
	mine := []byte{1}
	mine = session.Marshal(mine)
	mine = binary.LittleEndian.AppendUint32(mine, 3600)
	mine = binary.LittleEndian.AppendUint32(mine, 0)
	var err error
	b, err = AppendSealed(b, secret, mine)
	require.NoError(t, err)
	b = append(b, 0) // ticket not encrypted
	return appendBlob(b, appendTicketBlob(nil, 42, []byte("opaque")))
}

func TestMonClientExchange(t *testing.T) {
	secret, session := testKey(1), testKey(2)
	c := &MonClient{Name: Name{Type: 8, ID: "admin"}, Secret: secret}
	req := c.InitialRequest()
	require.Equal(t, byte(AuthModeMon), req[0])
	_, err := c.HandleDone(1, nil)
	require.Error(t, err, "done before challenge")
	more, err := c.HandleReplyMore([]byte{1, 1, 2, 3, 4, 5, 6, 7, 8})
	require.NoError(t, err)
	require.Equal(t, uint16(opGetAuthSessionKey), binary.LittleEndian.Uint16(more))
	key, err := ChallengeKey(secret.Secret, 0x0807060504030201, binary.LittleEndian.Uint64(more[3:]))
	require.NoError(t, err)
	require.Equal(t, key, binary.LittleEndian.Uint64(more[11:]), "the proof is the folded envelope")

	s, err := c.HandleDone(77, serverDone(t, secret, session, bytes.Repeat([]byte{5}, 64), 0))
	require.NoError(t, err)
	require.Equal(t, session, s.Auth.SessionKey)
	require.Equal(t, uint64(42), s.Auth.SecretID)
	require.Equal(t, []byte("opaque"), s.Auth.Blob)
	require.Equal(t, time.Hour, s.Auth.Validity)
	require.Len(t, s.ConnectionSecret, 64)
	require.Contains(t, s.Services, uint32(ServiceOSD))

	_, err = c.HandleDone(77, serverDone(t, testKey(3), session, nil, 0))
	require.ErrorIs(t, err, ErrBadKey, "a reply for another key")
	_, err = c.HandleDone(77, serverDone(t, secret, session, nil, -13))
	require.ErrorContains(t, err, "status -13")
	full := serverDone(t, secret, session, nil, 0)
	// A pre-nautilus monitor ends after the AUTH ticket; any other cut fails.
	preNautilus := len(testTicketReply(t, make([]byte, 6), secret.Secret, ServiceAuth, session))
	for i := 0; i < len(full); i++ {
		s, err := c.HandleDone(77, full[:i])
		if i == preNautilus {
			require.NoError(t, err)
			require.Nil(t, s.ConnectionSecret)
			continue
		}
		require.Error(t, err, "truncated at %d", i)
	}
	_, err = c.HandleReplyMore([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0})
	require.True(t, errors.Is(err, ErrMalformed))
}

// TestServerSide runs our monitor side against our client side: what the
// client proves the server accepts, and what the server returns the client
// opens; a wrong key is caught by Verify.
func TestServerSide(t *testing.T) {
	secret := testKey(1)
	c := &MonClient{Name: Name{Type: 8, ID: "admin"}, Secret: secret}
	mode, name, gid, err := ParseInitialRequest(c.InitialRequest())
	require.NoError(t, err)
	require.Equal(t, uint8(AuthModeMon), mode)
	require.Equal(t, "client.admin", name.String())
	require.Zero(t, gid)
	ch, more, err := ServerChallenge()
	require.NoError(t, err)
	req, err := c.HandleReplyMore(more)
	require.NoError(t, err)
	a, err := ParseAuthenticate(req)
	require.NoError(t, err)
	ok, err := a.Verify(secret.Secret, ch)
	require.NoError(t, err)
	require.True(t, ok)
	ok, _ = a.Verify(testKey(2).Secret, ch)
	require.False(t, ok, "another key does not verify")
	ok, _ = a.Verify(secret.Secret, ch+1)
	require.False(t, ok, "another challenge does not verify")
	session, err := NewSessionKey()
	require.NoError(t, err)
	done, err := AuthDonePayload(secret.Secret, session, time.Hour, 1, []byte("tkt"), bytes.Repeat([]byte{9}, 64), nil)
	require.NoError(t, err)
	s, err := c.HandleDone(5, done)
	require.NoError(t, err)
	require.Equal(t, session.Secret, s.Auth.SessionKey.Secret)
	require.Len(t, s.ConnectionSecret, 64)
}
