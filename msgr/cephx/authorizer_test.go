package cephx

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serviceSecrets answers ParseAuthorizer's secret look-up with the general
// secret of one service.
func serviceSecrets(service uint32, secret []byte) func(uint32, uint64) ([]byte, error) {
	return func(s uint32, id uint64) ([]byte, error) {
		if s != service || id != GeneralSecretID {
			return nil, errors.New("no such secret")
		}
		return secret, nil
	}
}

// osdTicket is a monitor's OSD ticket for client.admin (global id 77), as
// the client decodes it from AUTH_DONE.
func osdTicket(t *testing.T, osdSecret []byte, expires time.Time) Ticket {
	t.Helper()
	who := AuthTicket{Name: Name{Type: 8, ID: "admin"}, GlobalID: 77, Created: time.Now(), Expires: expires, AllowAll: true}
	tk, err := NewServiceTicket(ServiceOSD, osdSecret, GeneralSecretID, who, time.Hour)
	require.NoError(t, err)
	secret, session := testKey(1), testKey(2)
	done, err := AuthDonePayload(secret.Secret, session, time.Hour, 1, nil, nil, []Ticket{tk})
	require.NoError(t, err)
	c := &MonClient{Name: who.Name, Secret: secret}
	_, err = c.HandleReplyMore([]byte{1, 1, 2, 3, 4, 5, 6, 7, 8})
	require.NoError(t, err)
	s, err := c.HandleDone(77, done)
	require.NoError(t, err)
	got, ok := s.Services[ServiceOSD]
	require.True(t, ok, "the OSD ticket is in the reply")
	require.Equal(t, tk.SessionKey.Secret, got.SessionKey.Secret)
	require.Equal(t, GeneralSecretID, got.SecretID)
	return got
}

// TestAuthorizerExchange: a ticket the monitor issued goes through
// AUTH_DONE to the client, whose authorizer the service opens with its
// secret; the challenge is answered, the reply checked, and both ends hold
// the same session key and connection secret.
func TestAuthorizerExchange(t *testing.T) {
	osdSecret := testKey(9).Secret
	tk := osdTicket(t, osdSecret, time.Now().Add(time.Hour))
	a, req, err := NewAuthorizer(77, tk)
	require.NoError(t, err)
	require.Equal(t, byte(AuthModeAuthorizer), req[0], "the service tells an authorizer by its first byte")

	srv, err := ParseAuthorizer(req, time.Now(), serviceSecrets(ServiceOSD, osdSecret))
	require.NoError(t, err)
	require.False(t, srv.HaveChallenge)
	require.Equal(t, "client.admin", srv.Ticket.Name.String())
	require.Equal(t, uint64(77), srv.GlobalID)
	require.True(t, srv.Ticket.AllowAll)
	require.Equal(t, tk.SessionKey.Secret, srv.SessionKey.Secret)

	ch, chPayload, err := AuthorizerChallenge(srv.SessionKey.Secret)
	require.NoError(t, err)
	more, err := a.HandleChallenge(chPayload)
	require.NoError(t, err)
	srv2, err := ParseAuthorizer(more, time.Now(), serviceSecrets(ServiceOSD, osdSecret))
	require.NoError(t, err)
	require.True(t, srv2.HaveChallenge)
	require.Equal(t, ch+1, srv2.ChallengePlus)
	require.Equal(t, srv.Nonce, srv2.Nonce)

	conn := bytes.Repeat([]byte{3}, 64)
	reply, err := AuthorizerReply(srv2.SessionKey.Secret, srv2.Nonce, conn)
	require.NoError(t, err)
	got, err := a.HandleReply(reply)
	require.NoError(t, err)
	require.Equal(t, conn, got)
	require.Equal(t, srv2.SessionKey.Secret, a.SessionKey())

	crc, err := AuthorizerReply(srv2.SessionKey.Secret, srv2.Nonce, nil)
	require.NoError(t, err)
	got, err = a.HandleReply(crc)
	require.NoError(t, err)
	require.Empty(t, got, "crc mode: no connection secret")

	bad, err := AuthorizerReply(srv2.SessionKey.Secret, srv2.Nonce+1, nil)
	require.NoError(t, err)
	_, err = a.HandleReply(bad)
	require.ErrorIs(t, err, ErrBadKey, "a reply to another authorizer")
}

func TestAuthorizerRefused(t *testing.T) {
	osdSecret := testKey(9).Secret
	tk := osdTicket(t, osdSecret, time.Now().Add(time.Hour))
	_, req, err := NewAuthorizer(77, tk)
	require.NoError(t, err)

	_, err = ParseAuthorizer(req, time.Now(), serviceSecrets(ServiceOSD, testKey(10).Secret))
	require.ErrorIs(t, err, ErrBadKey, "another service secret")
	require.ErrorContains(t, err, "does not open with our secret")
	_, err = ParseAuthorizer(req, time.Now(), serviceSecrets(ServiceMgr, osdSecret))
	require.ErrorContains(t, err, "no such secret", "a ticket for another service")
	_, err = ParseAuthorizer(req, time.Now().Add(2*time.Hour), serviceSecrets(ServiceOSD, osdSecret))
	require.ErrorContains(t, err, "expired")

	_, other, err := NewAuthorizer(78, tk)
	require.NoError(t, err)
	_, err = ParseAuthorizer(other, time.Now(), serviceSecrets(ServiceOSD, osdSecret))
	require.ErrorContains(t, err, "used by global id 78", "a ticket shown under another global id")

	// The clear part (version, global id, service, ticket secret_id and
	// length) is checked byte for byte. cephx's CBC envelope has nothing but
	// its magic to detect tampering inside (a flipped ciphertext bit may only
	// garble a time or a cap); msgr2's AUTH_SIGNATURE over every byte
	// exchanged is what catches that on the wire.
	for i := range authorizerClearLen {
		tampered := bytes.Clone(req)
		tampered[i] ^= 0x10
		_, err := ParseAuthorizer(tampered, time.Now(), serviceSecrets(ServiceOSD, osdSecret))
		require.Error(t, err, "byte %d flipped", i)
	}
	for n := 0; n < len(req); n++ {
		_, err := ParseAuthorizer(req[:n], time.Now(), serviceSecrets(ServiceOSD, osdSecret))
		require.Error(t, err, "cut to %d bytes", n)
	}
}

// authorizerClearLen is the authorizer's bytes before the ticket's
// ciphertext: authorizer_v, global_id, service_id, then CephXTicketBlob's
// struct_v, secret_id and the blob's length.
const authorizerClearLen = 1 + 8 + 4 + 1 + 8 + 4

// FuzzParseAuthorizer: whatever a client sends a service, the decoder never
// panics, and an authorizer it accepts holds a whole session key.
func FuzzParseAuthorizer(f *testing.F) {
	osdSecret := testKey(9).Secret
	tk := osdTicket(&testing.T{}, osdSecret, time.Unix(1<<31, 0))
	_, req, _ := NewAuthorizer(77, tk)
	f.Add(req)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAuthorizer(b, time.Unix(1700000000, 0), serviceSecrets(ServiceOSD, osdSecret))
		if err == nil && len(a.SessionKey.Secret) != KeyLen {
			t.Fatalf("session key of %d bytes accepted", len(a.SessionKey.Secret))
		}
	})
}

// FuzzAuthorizerClientPayloads feeds a client's authorizer what a service
// answers (the challenge, the reply): decoding never panics, and a reply it
// accepts answered its nonce.
func FuzzAuthorizerClientPayloads(f *testing.F) {
	osdSecret := testKey(9).Secret
	tk := osdTicket(&testing.T{}, osdSecret, time.Unix(1<<31, 0))
	ch, _ := Seal(tk.SessionKey.Secret, []byte{1, 1, 2, 3, 4, 5, 6, 7, 8})
	reply, _ := AuthorizerReply(tk.SessionKey.Secret, 41, bytes.Repeat([]byte{3}, 64))
	f.Add(ch, reply)
	f.Fuzz(func(t *testing.T, challenge, reply []byte) {
		a, _, err := NewAuthorizer(77, tk)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = a.HandleChallenge(challenge)
		if _, err := a.HandleReply(reply); err == nil {
			t.Fatalf("a reply accepted without our nonce (it is random)")
		}
	})
}
