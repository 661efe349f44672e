package cephx

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

// Auth modes of an AUTH_REQUEST payload (AUTH_MODE_* in auth/Auth.h).
const (
	AuthModeAuthorizer = 1  // to a service (OSD, MGR, MDS): an authorizer
	AuthModeMon        = 10 // to a monitor: a cephx exchange
)

// Request types of CephXRequestHeader.
const (
	opGetAuthSessionKey      = 0x0100
	opGetPrincipalSessionKey = 0x0200
)

// Service ids (CEPH_ENTITY_TYPE_*) a client wants tickets for.
const (
	ServiceMon  = 0x01
	ServiceMDS  = 0x02
	ServiceOSD  = 0x04
	ServiceMgr  = 0x10
	ServiceAuth = 0x20
	// DefaultWantKeys is what a Ceph client asks the monitor for.
	DefaultWantKeys = ServiceMon | ServiceOSD | ServiceMDS | ServiceMgr
)

// Name is Ceph's EntityName as cephx encodes it: le32 type, then the id
// as a string ("admin" of client.admin).
type Name struct {
	Type uint32
	ID   string
}

// String is "client.admin".
func (n Name) String() string { return typeName(n.Type) + "." + n.ID }

func typeName(t uint32) string {
	if t <= 0xff {
		if n := msgr2.EntityTypeName(uint8(t)); n != "" {
			return n
		}
	}
	return fmt.Sprintf("type%d", t)
}

func (n Name) marshal(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, n.Type)
	return appendBlob(dst, []byte(n.ID))
}

// Ticket is one service ticket: the session key shared with that service,
// its validity, and the opaque blob the service decrypts.
type Ticket struct {
	Service    uint32
	SessionKey Key
	Validity   time.Duration
	SecretID   uint64
	Blob       []byte
}

// Session is what a finished cephx exchange with a monitor gives: the AUTH
// ticket (its session key keys AUTH_SIGNATURE and secure mode), the
// connection secret (secure mode's keys and nonces; empty in crc mode) and
// the service tickets asked for.
type Session struct {
	GlobalID         uint64
	Auth             Ticket
	ConnectionSecret []byte
	Services         map[uint32]Ticket
}

// MonClient runs the client side of cephx against a monitor, one payload at
// a time: InitialRequest for AUTH_REQUEST, HandleReplyMore for each
// AUTH_REPLY_MORE (its result goes in AUTH_REQUEST_MORE), HandleDone for
// AUTH_DONE. It is owned by one connection's handshake and not safe for
// concurrent use.
type MonClient struct {
	Name     Name
	Secret   Key
	GlobalID uint64
	WantKeys uint32

	serverChallenge uint64
	clientChallenge uint64
	haveChallenge   bool
}

// InitialRequest is the AUTH_REQUEST auth payload of a client to a monitor:
// AUTH_MODE_MON, the entity name, the global id (0 on first contact).
func (c *MonClient) InitialRequest() []byte {
	c.haveChallenge = false
	b := []byte{AuthModeMon}
	b = c.Name.marshal(b)
	return binary.LittleEndian.AppendUint64(b, c.GlobalID)
}

// HandleReplyMore takes the monitor's CephXServerChallenge and returns the
// AUTH_REQUEST_MORE payload: CephXRequestHeader (GET_AUTH_SESSION_KEY) and
// CephXAuthenticate proving we hold the secret.
func (c *MonClient) HandleReplyMore(payload []byte) ([]byte, error) {
	d := newDecoder(payload)
	d.version("CephXServerChallenge", 1, 1)
	c.serverChallenge = d.U64("server_challenge")
	if d.Err != nil {
		return nil, d.Err
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("cephx: client challenge: %w", err)
	}
	c.clientChallenge = binary.LittleEndian.Uint64(rnd[:])
	c.haveChallenge = true
	key, err := ChallengeKey(c.Secret.Secret, c.serverChallenge, c.clientChallenge)
	if err != nil {
		return nil, err
	}
	want := c.WantKeys
	if want == 0 {
		want = DefaultWantKeys
	}
	b := binary.LittleEndian.AppendUint16(nil, opGetAuthSessionKey)
	b = append(b, 3) // CephXAuthenticate struct_v 3: old ticket may be omitted
	b = binary.LittleEndian.AppendUint64(b, c.clientChallenge)
	b = binary.LittleEndian.AppendUint64(b, key)
	b = appendTicketBlob(b, 0, nil) // no old ticket
	b = binary.LittleEndian.AppendUint32(b, want&^ServiceAuth)
	return b, nil
}

// ChallengeKey is cephx's proof of the secret (cephx_calc_client_server_challenge):
// the envelope of {server_challenge, client_challenge}, as a bufferlist
// (length prefix included), folded by XOR into 64 bits.
func ChallengeKey(secret []byte, server, client uint64) (uint64, error) {
	blob := binary.LittleEndian.AppendUint64(nil, server)
	blob = binary.LittleEndian.AppendUint64(blob, client)
	enc, err := AppendSealed(nil, secret, blob)
	if err != nil {
		return 0, err
	}
	var k uint64
	for i := 0; i+8 <= len(enc); i += 8 {
		k ^= binary.LittleEndian.Uint64(enc[i:])
	}
	return k, nil
}

func appendTicketBlob(dst []byte, secretID uint64, blob []byte) []byte {
	dst = append(dst, 1)
	dst = binary.LittleEndian.AppendUint64(dst, secretID)
	return appendBlob(dst, blob)
}

// HandleDone decodes the monitor's AUTH_DONE payload for GET_AUTH_SESSION_KEY:
// the response header, the AUTH ticket (its "for me" part opened with our
// secret), the connection secret (opened with the AUTH session key) and
// the service tickets.
func (c *MonClient) HandleDone(globalID uint64, payload []byte) (*Session, error) {
	if !c.haveChallenge {
		return nil, fmt.Errorf("cephx: AUTH_DONE before the server challenge")
	}
	d := newDecoder(payload)
	op := d.U16("CephXResponseHeader request_type")
	status := int32(d.U32("CephXResponseHeader status"))
	if d.Err != nil {
		return nil, d.Err
	}
	if op != opGetAuthSessionKey {
		return nil, fmt.Errorf("%w: response to request type %#x, want %#x", ErrMalformed, op, opGetAuthSessionKey)
	}
	if status != 0 {
		return nil, fmt.Errorf("cephx: monitor refused %s: status %d", c.Name, status)
	}
	tickets, err := decodeTicketReply(&d, c.Secret.Secret, nil)
	if err != nil {
		return nil, fmt.Errorf("cephx: AUTH ticket: %w", err)
	}
	s := &Session{GlobalID: globalID, Services: map[uint32]Ticket{}}
	var ok bool
	if s.Auth, ok = tickets[ServiceAuth]; !ok {
		return nil, fmt.Errorf("%w: ticket reply has no AUTH ticket", ErrMalformed)
	}
	if d.Remaining() == 0 { // pre-nautilus monitors stop here
		return s, nil
	}
	cbl := d.BlobRef("connection secret")
	if d.Err != nil {
		return nil, d.Err
	}
	if len(cbl) > 0 {
		cd := newDecoder(cbl)
		p, err := openBlob(&cd, s.Auth.SessionKey.Secret, "connection secret")
		if err != nil {
			return nil, fmt.Errorf("cephx: %w", err)
		}
		pd := newDecoder(p)
		sec := pd.BlobRef("connection secret string")
		if pd.Err != nil {
			return nil, pd.Err
		}
		s.ConnectionSecret = append([]byte(nil), sec...)
	}
	extra := d.BlobRef("service tickets")
	if d.Err != nil {
		return nil, d.Err
	}
	if len(extra) > 0 {
		ed := newDecoder(extra)
		svc, err := decodeTicketReply(&ed, s.Auth.SessionKey.Secret, nil)
		if err != nil {
			return nil, fmt.Errorf("cephx: service tickets: %w", err)
		}
		s.Services = svc
	}
	return s, nil
}

// decodeTicketReply decodes CephXServiceTicketReply-s (struct_v 1, count,
// tickets). Each ticket's "for me" part is opened with secret; an encrypted
// service blob is opened with oldKey.
func decodeTicketReply(d *decoder, secret []byte, oldKey []byte) (map[uint32]Ticket, error) {
	d.version("ticket reply", 1, 1)
	n := d.U32("ticket count")
	if d.Err != nil {
		return nil, d.Err
	}
	if int(n) > d.Remaining() { // each ticket takes far more than a byte
		return nil, fmt.Errorf("%w: %d tickets in %d bytes", ErrMalformed, n, d.Remaining())
	}
	out := make(map[uint32]Ticket, n)
	for i := uint32(0); i < n; i++ {
		var t Ticket
		t.Service = d.U32("ticket service_id")
		d.version("ticket", 1, 1)
		if d.Err != nil {
			return nil, d.Err
		}
		mine, err := openBlob(d, secret, fmt.Sprintf("%s ticket session key", typeName(t.Service)))
		if err != nil {
			return nil, err
		}
		md := newDecoder(mine)
		md.version("CephXServiceTicket", 1, 1)
		if md.Err != nil {
			return nil, md.Err
		}
		if t.SessionKey, err = decodeKey(&md); err != nil {
			return nil, err
		}
		sec := md.U32("validity sec")
		nsec := md.U32("validity nsec")
		if md.Err != nil {
			return nil, md.Err
		}
		t.Validity = time.Duration(sec)*time.Second + time.Duration(nsec)
		enc := d.U8("ticket is_enc")
		if d.Err != nil {
			return nil, d.Err
		}
		var tb []byte
		if enc != 0 {
			if oldKey == nil {
				return nil, fmt.Errorf("%w: encrypted ticket blob without an old ticket", ErrMalformed)
			}
			if tb, err = openBlob(d, oldKey, "ticket blob"); err != nil {
				return nil, err
			}
		} else {
			tb = d.BlobRef("ticket blob")
		}
		// The service's CephXTicketBlob: the blob's bytes when sent in the
		// clear; inside an envelope it is itself a bufferlist.
		bd := newDecoder(tb)
		if enc != 0 {
			bd = newDecoder(bd.BlobRef("CephXTicketBlob"))
		}
		bd.version("CephXTicketBlob", 1, 1)
		t.SecretID = bd.U64("ticket secret_id")
		t.Blob = append([]byte(nil), bd.BlobRef("ticket blob bytes")...)
		if d.Err != nil {
			return nil, d.Err
		}
		if bd.Err != nil {
			return nil, bd.Err
		}
		out[t.Service] = t
	}
	return out, nil
}
