package cephx

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"
)

// This file is the monitor side of the cephx exchange: what an asyncmsgr
// messenger that authenticates its clients does (Ceph's CephxServiceHandler
// for GET_AUTH_SESSION_KEY).

// ParseInitialRequest decodes an AUTH_REQUEST payload (cephx or none):
// auth mode, entity name, global id.
func ParseInitialRequest(b []byte) (mode uint8, name Name, globalID uint64, err error) {
	d := newDecoder(b)
	mode = d.U8("auth mode")
	name.Type = d.U32("entity type")
	name.ID = string(d.BlobRef("entity id"))
	globalID = d.U64("global_id")
	return mode, name, globalID, d.Err
}

// ServerChallenge returns a fresh challenge and its CephXServerChallenge
// encoding (the AUTH_REPLY_MORE payload).
func ServerChallenge() (uint64, []byte, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return 0, nil, fmt.Errorf("cephx: server challenge: %w", err)
	}
	ch := binary.LittleEndian.Uint64(rnd[:])
	return ch, binary.LittleEndian.AppendUint64([]byte{1}, ch), nil
}

// Authenticate is a decoded CephXAuthenticate with its request header.
type Authenticate struct {
	ClientChallenge uint64
	Key             uint64
	OldSecretID     uint64
	WantKeys        uint32
}

// ParseAuthenticate decodes an AUTH_REQUEST_MORE payload: the request header
// (it must be GET_AUTH_SESSION_KEY) and CephXAuthenticate (struct_v 1..3).
func ParseAuthenticate(b []byte) (Authenticate, error) {
	var a Authenticate
	d := newDecoder(b)
	op := d.U16("request type")
	v := d.version("CephXAuthenticate", 1, 3)
	a.ClientChallenge = d.U64("client_challenge")
	a.Key = d.U64("key")
	d.version("old ticket", 1, 1)
	a.OldSecretID = d.U64("old ticket secret_id")
	_ = d.BlobRef("old ticket blob")
	if v >= 2 {
		a.WantKeys = d.U32("other_keys")
	}
	if d.Err != nil {
		return a, d.Err
	}
	if op != opGetAuthSessionKey {
		return a, fmt.Errorf("%w: request type %#x, only GET_AUTH_SESSION_KEY (%#x) is served", ErrMalformed, op, opGetAuthSessionKey)
	}
	return a, nil
}

// Verify reports whether a proves knowledge of secret for serverChallenge.
func (a Authenticate) Verify(secret []byte, serverChallenge uint64) (bool, error) {
	want, err := ChallengeKey(secret, serverChallenge, a.ClientChallenge)
	return want == a.Key, err
}

// NewSessionKey makes a random AES session key.
func NewSessionKey() (Key, error) {
	k := Key{Type: CryptoKeyAES, CreatedSec: uint32(time.Now().Unix()), Secret: make([]byte, KeyLen)}
	if _, err := rand.Read(k.Secret); err != nil {
		return Key{}, fmt.Errorf("cephx: session key: %w", err)
	}
	return k, nil
}

// AuthDonePayload is the AUTH_DONE payload a monitor sends after a good
// CephXAuthenticate: the response header, the AUTH ticket (its "for me"
// part sealed with the client's secret: session key and validity), the
// connection secret sealed with the session key (empty: none), and the
// service tickets (NewServiceTicket; their "for me" parts sealed with the
// AUTH session key). ticket is the opaque blob the client shows back.
func AuthDonePayload(clientSecret []byte, session Key, validity time.Duration, secretID uint64, ticket, connSecret []byte, services []Ticket) ([]byte, error) {
	b := binary.LittleEndian.AppendUint16(nil, opGetAuthSessionKey)
	b = binary.LittleEndian.AppendUint32(b, 0)
	auth := Ticket{Service: ServiceAuth, SessionKey: session, Validity: validity, SecretID: secretID, Blob: ticket}
	b, err := appendTicketReply(b, clientSecret, []Ticket{auth})
	if err != nil {
		return nil, err
	}
	var cbl []byte
	if len(connSecret) > 0 {
		if cbl, err = AppendSealed(nil, session.Secret, appendBlob(nil, connSecret)); err != nil {
			return nil, err
		}
	}
	b = appendBlob(b, cbl)
	var extra []byte
	if len(services) > 0 {
		if extra, err = appendTicketReply(nil, session.Secret, services); err != nil {
			return nil, err
		}
	}
	return appendBlob(b, extra), nil
}

// appendTicketReply appends CephXServiceTicketReply-s (struct_v 1, count,
// tickets): each ticket's "for me" part (CephXServiceTicket: session key,
// validity) sealed with key, its service blob in the clear.
func appendTicketReply(b, key []byte, tickets []Ticket) ([]byte, error) {
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(tickets)))
	for _, t := range tickets {
		b = binary.LittleEndian.AppendUint32(b, t.Service)
		b = append(b, 1)
		mine := t.SessionKey.Marshal([]byte{1})
		mine = binary.LittleEndian.AppendUint32(mine, uint32(t.Validity/time.Second))
		mine = binary.LittleEndian.AppendUint32(mine, uint32(t.Validity%time.Second))
		var err error
		if b, err = AppendSealed(b, key, mine); err != nil {
			return nil, err
		}
		b = append(b, 0) // the service blob goes in the clear
		b = appendBlob(b, appendTicketBlob(nil, t.SecretID, t.Blob))
	}
	return b, nil
}
