package cephx

import (
	"bytes"
	"testing"
)

func FuzzDecodeKey(f *testing.F) {
	f.Add(testKey(1).Marshal(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := DecodeKey(b)
		if err == nil && !bytes.Equal(k.Marshal(nil), b) {
			t.Fatalf("%x decodes to %+v which encodes differently", b, k)
		}
	})
}

func FuzzParseKeyring(f *testing.F) {
	f.Add("[client.admin]\n\tkey = " + testKey(1).String() + "\n\tcaps mon = \"allow *\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		kr, err := ParseKeyring(bytes.NewReader([]byte(s)))
		if err == nil {
			for name, e := range kr {
				if len(e.Key.Secret) != KeyLen {
					t.Fatalf("%s: key of %d bytes accepted", name, len(e.Key.Secret))
				}
			}
		}
	})
}

// FuzzMonClientPayloads feeds the monitor's two payloads (the server
// challenge, AUTH_DONE) to a client holding the key the seed was made with:
// decoding must never panic or accept a ticket that did not open.
func FuzzMonClientPayloads(f *testing.F) {
	secret, session := testKey(1), testKey(2)
	f.Add([]byte{1, 1, 2, 3, 4, 5, 6, 7, 8}, serverDone(&testing.T{}, secret, session, bytes.Repeat([]byte{5}, 64), 0))
	f.Fuzz(func(t *testing.T, challenge, done []byte) {
		c := &MonClient{Name: Name{Type: 8, ID: "admin"}, Secret: secret}
		if _, err := c.HandleReplyMore(challenge); err != nil {
			return
		}
		s, err := c.HandleDone(1, done)
		if err == nil && len(s.Auth.SessionKey.Secret) != KeyLen {
			t.Fatalf("session key of %d bytes accepted", len(s.Auth.SessionKey.Secret))
		}
	})
}

func FuzzOpen(f *testing.F) {
	ct, _ := Seal(testKey(1).Secret, []byte("payload"))
	f.Add(ct)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Open(testKey(1).Secret, b)
	})
}

func FuzzServerPayloads(f *testing.F) {
	c := &MonClient{Name: Name{Type: 8, ID: "admin"}, Secret: testKey(1)}
	req, _ := c.HandleReplyMore([]byte{1, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(c.InitialRequest(), req)
	f.Fuzz(func(t *testing.T, initial, more []byte) {
		_, _, _, _ = ParseInitialRequest(initial)
		if a, err := ParseAuthenticate(more); err == nil {
			_, _ = a.Verify(testKey(1).Secret, 1)
		}
	})
}
