package cephx

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"
)

// This file is cephx Phase III: service tickets (what a monitor issues for
// other services, sealed with the service's secret) and the authorizer a
// client builds from one to open a session with a service, answered with
// the service's challenge (CephXAuthorizer, cephx_verify_authorizer).

// GeneralSecretID is the secret_id of a ticket sealed with a service's
// general secret: the key of the entity "<type>." in the keyring (as Ceph's
// "mon." key), not one of the monitor's rotating secrets.
const GeneralSecretID = ^uint64(0)

// authUIDDefault is CEPH_AUTH_UID_DEFAULT, the auid AuthTicket carries.
const authUIDDefault = ^uint64(0)

// AuthTicket is Ceph's AuthTicket: whom a service ticket speaks for.
type AuthTicket struct {
	Name     Name
	GlobalID uint64
	Created  time.Time
	Expires  time.Time
	AllowAll bool   // AuthCapsInfo.allow_all
	Caps     []byte // AuthCapsInfo.caps, opaque here
	Flags    uint32
}

func appendUtime(dst []byte, t time.Time) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(t.Unix()))
	return binary.LittleEndian.AppendUint32(dst, uint32(t.Nanosecond()))
}

func (d *decoder) utime(what string) time.Time {
	sec := d.U32(what + " sec")
	nsec := d.U32(what + " nsec")
	return time.Unix(int64(sec), int64(nsec))
}

func (a *AuthTicket) marshal(dst []byte) []byte {
	dst = append(dst, 2) // struct_v
	dst = a.Name.marshal(dst)
	dst = binary.LittleEndian.AppendUint64(dst, a.GlobalID)
	dst = binary.LittleEndian.AppendUint64(dst, authUIDDefault)
	dst = appendUtime(dst, a.Created)
	dst = appendUtime(dst, a.Expires)
	allow := byte(0)
	if a.AllowAll {
		allow = 1
	}
	dst = append(dst, 1, allow) // AuthCapsInfo struct_v, allow_all
	dst = appendBlob(dst, a.Caps)
	return binary.LittleEndian.AppendUint32(dst, a.Flags)
}

func decodeAuthTicket(d *decoder) AuthTicket {
	var a AuthTicket
	v := d.version("AuthTicket", 1, 2)
	a.Name.Type = d.U32("AuthTicket name type")
	a.Name.ID = string(d.BlobRef("AuthTicket name id"))
	a.GlobalID = d.U64("AuthTicket global_id")
	if v >= 2 {
		_ = d.U64("AuthTicket auid")
	}
	a.Created = d.utime("AuthTicket created")
	a.Expires = d.utime("AuthTicket expires")
	d.version("AuthCapsInfo", 1, 1)
	a.AllowAll = d.U8("AuthCapsInfo allow_all") != 0
	a.Caps = append([]byte(nil), d.BlobRef("AuthCapsInfo caps")...)
	a.Flags = d.U32("AuthTicket flags")
	return a
}

// NewServiceTicket issues a ticket for service (a Service* id) to the
// holder of who: a fresh session key, and the blob the service opens with
// serviceSecret (CephXServiceTicketInfo: the AuthTicket and the session
// key, sealed). The client's copy of the session key travels in the ticket
// reply (AuthDonePayload).
func NewServiceTicket(service uint32, serviceSecret []byte, secretID uint64, who AuthTicket, validity time.Duration) (Ticket, error) {
	session, err := NewSessionKey()
	if err != nil {
		return Ticket{}, err
	}
	info := who.marshal([]byte{1}) // CephXServiceTicketInfo struct_v
	info = session.Marshal(info)
	blob, err := Seal(serviceSecret, info)
	if err != nil {
		return Ticket{}, err
	}
	return Ticket{Service: service, SessionKey: session, Validity: validity, SecretID: secretID, Blob: blob}, nil
}

// Authorizer is the client side of a session with a service, made from the
// ticket for it (CephXAuthorizer): NewAuthorizer gives the AUTH_REQUEST
// payload, HandleChallenge answers the service's AUTH_REPLY_MORE, and
// HandleReply checks its AUTH_DONE. Owned by one connection's handshake.
type Authorizer struct {
	ticket Ticket
	base   []byte // authorizer_v, global_id, service_id, CephXTicketBlob
	nonce  uint64
}

// NewAuthorizer builds the authorizer for ticket t of the client with
// global id globalID, and its first AUTH_REQUEST payload (no challenge).
func NewAuthorizer(globalID uint64, t Ticket) (*Authorizer, []byte, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, nil, fmt.Errorf("cephx: authorizer nonce: %w", err)
	}
	a := &Authorizer{ticket: t, nonce: binary.LittleEndian.Uint64(rnd[:])}
	a.base = []byte{AuthModeAuthorizer} // authorizer_v 1, read as the auth mode
	a.base = binary.LittleEndian.AppendUint64(a.base, globalID)
	a.base = binary.LittleEndian.AppendUint32(a.base, t.Service)
	a.base = appendTicketBlob(a.base, t.SecretID, t.Blob)
	p, err := a.payload(false, 0)
	return a, p, err
}

// payload is the authorizer with CephXAuthorize (struct_v 2) sealed with
// the ticket's session key.
func (a *Authorizer) payload(haveChallenge bool, challenge uint64) ([]byte, error) {
	msg := binary.LittleEndian.AppendUint64([]byte{2}, a.nonce)
	have := byte(0)
	if haveChallenge {
		have = 1
	}
	msg = append(msg, have)
	msg = binary.LittleEndian.AppendUint64(msg, challenge+1)
	return AppendSealed(append([]byte(nil), a.base...), a.ticket.SessionKey.Secret, msg)
}

// SessionKey is the ticket's session key: it keys AUTH_SIGNATURE.
func (a *Authorizer) SessionKey() []byte { return a.ticket.SessionKey.Secret }

// HandleChallenge opens the service's CephXAuthorizeChallenge and returns
// the AUTH_REQUEST_MORE payload answering it (server_challenge + 1).
func (a *Authorizer) HandleChallenge(payload []byte) ([]byte, error) {
	p, err := Open(a.ticket.SessionKey.Secret, payload)
	if err != nil {
		return nil, fmt.Errorf("cephx: authorizer challenge: %w", err)
	}
	d := newDecoder(p)
	d.version("CephXAuthorizeChallenge", 1, 1)
	ch := d.U64("server_challenge")
	if d.Err != nil {
		return nil, d.Err
	}
	return a.payload(true, ch)
}

// HandleReply checks the service's CephXAuthorizeReply (AUTH_DONE): it must
// return our nonce plus one. It returns the connection secret it carries
// (empty in crc mode).
func (a *Authorizer) HandleReply(payload []byte) ([]byte, error) {
	d := newDecoder(payload)
	p, err := openBlob(&d, a.ticket.SessionKey.Secret, "CephXAuthorizeReply")
	if err != nil {
		return nil, fmt.Errorf("cephx: %w", err)
	}
	rd := newDecoder(p)
	v := rd.version("CephXAuthorizeReply", 1, 2)
	n := rd.U64("nonce_plus_one")
	var secret []byte
	if v >= 2 {
		secret = append([]byte(nil), rd.BlobRef("connection_secret")...)
	}
	if rd.Err != nil {
		return nil, rd.Err
	}
	if n != a.nonce+1 {
		return nil, fmt.Errorf("%w: the service's reply is not for our authorizer (nonce)", ErrBadKey)
	}
	return secret, nil
}

// Authorize is an authorizer as the service reads it.
type Authorize struct {
	GlobalID      uint64
	Service       uint32
	Ticket        AuthTicket // whom the monitor issued the ticket to
	SessionKey    Key        // the ticket's session key
	Nonce         uint64
	HaveChallenge bool
	ChallengePlus uint64 // server_challenge + 1
}

// ParseAuthorizer opens an authorizer (the AUTH_REQUEST or AUTH_REQUEST_MORE
// payload of a client to a service): the ticket with the service secret
// secretFor returns for its service and secret_id, then CephXAuthorize with
// the ticket's session key. It checks the ticket is for the global id the
// authorizer names and has not expired at now.
func ParseAuthorizer(b []byte, now time.Time, secretFor func(service uint32, secretID uint64) ([]byte, error)) (Authorize, error) {
	var a Authorize
	d := newDecoder(b)
	d.version("authorizer", 1, 1)
	a.GlobalID = d.U64("authorizer global_id")
	a.Service = d.U32("authorizer service_id")
	d.version("CephXTicketBlob", 1, 1)
	secretID := d.U64("ticket secret_id")
	blob := d.BlobRef("ticket blob")
	if d.Err != nil {
		return a, d.Err
	}
	secret, err := secretFor(a.Service, secretID)
	if err != nil {
		return a, err
	}
	info, err := Open(secret, blob)
	if err != nil {
		return a, fmt.Errorf("cephx: ticket for %s does not open with our secret: %w", typeName(a.Service), err)
	}
	id := newDecoder(info)
	id.version("CephXServiceTicketInfo", 1, 1)
	a.Ticket = decodeAuthTicket(&id)
	if id.Err != nil {
		return a, id.Err
	}
	if a.SessionKey, err = decodeKey(&id); err != nil {
		return a, err
	}
	msg, err := openBlob(&d, a.SessionKey.Secret, "CephXAuthorize")
	if err != nil {
		return a, fmt.Errorf("cephx: %w", err)
	}
	md := newDecoder(msg)
	v := md.version("CephXAuthorize", 1, 2)
	a.Nonce = md.U64("nonce")
	if v >= 2 {
		a.HaveChallenge = md.U8("have_challenge") != 0
		a.ChallengePlus = md.U64("server_challenge_plus_one")
	}
	if md.Err != nil {
		return a, md.Err
	}
	if a.Ticket.GlobalID != a.GlobalID {
		return a, fmt.Errorf("%w: ticket of global id %d used by global id %d", ErrBadKey, a.Ticket.GlobalID, a.GlobalID)
	}
	if now.After(a.Ticket.Expires) {
		return a, fmt.Errorf("cephx: ticket of %s expired at %v", a.Ticket.Name, a.Ticket.Expires.UTC())
	}
	return a, nil
}

// AuthorizerChallenge is a service's challenge to an authorizer and its
// AUTH_REPLY_MORE payload (CephXAuthorizeChallenge sealed with the ticket's
// session key, as encode_encrypt_enc_bl writes it: no length prefix).
func AuthorizerChallenge(sessionKey []byte) (uint64, []byte, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return 0, nil, fmt.Errorf("cephx: authorizer challenge: %w", err)
	}
	ch := binary.LittleEndian.Uint64(rnd[:])
	p, err := Seal(sessionKey, binary.LittleEndian.AppendUint64([]byte{1}, ch))
	return ch, p, err
}

// AuthorizerReply is a service's AUTH_DONE payload for a good authorizer:
// CephXAuthorizeReply (nonce + 1 and, in secure mode, the connection
// secret) sealed with the ticket's session key.
func AuthorizerReply(sessionKey []byte, nonce uint64, connSecret []byte) ([]byte, error) {
	v := byte(1)
	if len(connSecret) > 0 {
		v = 2
	}
	r := binary.LittleEndian.AppendUint64([]byte{v}, nonce+1)
	if v == 2 {
		r = appendBlob(r, connSecret)
	}
	return AppendSealed(nil, sessionKey, r)
}
