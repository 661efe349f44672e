package msgr2

import (
	"encoding/binary"
	"time"
)

// Payload is a control frame payload: every frame type of this package
// except MESSAGE. Marshal appends Ceph's encoding (with the features msgr2
// frames assume: MSG_ADDR2 and SERVER_NAUTILUS); Unmarshal decodes it,
// ignoring trailing bytes as Ceph's ControlFrame::Decode does.
type Payload interface {
	Tag() Tag
	Marshal(dst []byte) []byte
	Unmarshal(b []byte) error
}

// Auth methods (CEPH_AUTH_*) and connection modes (CEPH_CON_MODE_*).
const (
	AuthMethodUnknown uint32 = 0
	AuthMethodNone    uint32 = 1
	AuthMethodCephX   uint32 = 2

	ConModeUnknown uint32 = 0
	ConModeCRC     uint32 = 1
	ConModeSecure  uint32 = 2
)

// CEPH_MSG_CONNECT_* flag carried in CLIENT_IDENT/SERVER_IDENT flags.
const IdentFlagLossy uint64 = 1

// Hello is TAG_HELLO: the sender's entity type and the address it sees the
// peer at.
type Hello struct {
	EntityType uint8
	PeerAddr   EntityAddr
}

// AuthRequest is TAG_AUTH_REQUEST (client to server).
type AuthRequest struct {
	Method         uint32
	PreferredModes []uint32
	AuthPayload    []byte
}

// AuthBadMethod is TAG_AUTH_BAD_METHOD (server to client).
type AuthBadMethod struct {
	Method         uint32
	Result         int32
	AllowedMethods []uint32
	AllowedModes   []uint32
}

// AuthReplyMore is TAG_AUTH_REPLY_MORE (server to client).
type AuthReplyMore struct {
	AuthPayload []byte
}

// AuthRequestMore is TAG_AUTH_REQUEST_MORE (client to server): the same
// payload as AUTH_REPLY_MORE, one bufferlist.
type AuthRequestMore AuthReplyMore

// AuthDone is TAG_AUTH_DONE (server to client).
type AuthDone struct {
	GlobalID    uint64
	ConMode     uint32
	AuthPayload []byte
}

// AuthSignature is TAG_AUTH_SIGNATURE: a SHA-256 HMAC over the exchanged
// auth frames (cephx only), encoded as 32 raw bytes.
type AuthSignature struct {
	Signature [32]byte
}

// ClientIdent is TAG_CLIENT_IDENT (client to server).
type ClientIdent struct {
	Addrs             AddrVec
	TargetAddr        EntityAddr
	GID               int64
	GlobalSeq         uint64
	SupportedFeatures uint64
	RequiredFeatures  uint64
	Flags             uint64
	Cookie            uint64
}

// ServerIdent is TAG_SERVER_IDENT (server to client).
type ServerIdent struct {
	Addrs             AddrVec
	GID               int64
	GlobalSeq         uint64
	SupportedFeatures uint64
	RequiredFeatures  uint64
	Flags             uint64
	Cookie            uint64
}

// IdentMissingFeatures is TAG_IDENT_MISSING_FEATURES: the features the
// server requires that the client did not offer.
type IdentMissingFeatures struct {
	Features uint64
}

// SessionReconnect is TAG_SESSION_RECONNECT (client to server).
type SessionReconnect struct {
	Addrs        AddrVec
	ClientCookie uint64
	ServerCookie uint64
	GlobalSeq    uint64
	ConnectSeq   uint64
	MsgSeq       uint64
}

// SessionReconnectOK is TAG_SESSION_RECONNECT_OK.
type SessionReconnectOK struct {
	MsgSeq uint64
}

// SessionReset is TAG_SESSION_RESET.
type SessionReset struct {
	Full bool
}

// SessionRetry is TAG_SESSION_RETRY.
type SessionRetry struct {
	ConnectSeq uint64
}

// SessionRetryGlobal is TAG_SESSION_RETRY_GLOBAL.
type SessionRetryGlobal struct {
	GlobalSeq uint64
}

// Wait is TAG_WAIT; it has an empty payload.
type Wait struct{}

// Keepalive2 is TAG_KEEPALIVE2. The timestamp travels as utime_t: le32
// seconds, le32 nanoseconds (so it is truncated to 32-bit seconds).
type Keepalive2 struct {
	Timestamp time.Time
}

// Keepalive2Ack is TAG_KEEPALIVE2_ACK, echoing the KEEPALIVE2 timestamp: the
// same payload as KEEPALIVE2.
type Keepalive2Ack Keepalive2

// Ack is TAG_ACK: the highest message sequence received.
type Ack struct {
	Seq uint64
}

// Tag methods.

func (*Hello) Tag() Tag                { return TagHello }
func (*AuthRequest) Tag() Tag          { return TagAuthRequest }
func (*AuthBadMethod) Tag() Tag        { return TagAuthBadMethod }
func (*AuthReplyMore) Tag() Tag        { return TagAuthReplyMore }
func (*AuthRequestMore) Tag() Tag      { return TagAuthRequestMore }
func (*AuthDone) Tag() Tag             { return TagAuthDone }
func (*AuthSignature) Tag() Tag        { return TagAuthSignature }
func (*ClientIdent) Tag() Tag          { return TagClientIdent }
func (*ServerIdent) Tag() Tag          { return TagServerIdent }
func (*IdentMissingFeatures) Tag() Tag { return TagIdentMissingFeatures }
func (*SessionReconnect) Tag() Tag     { return TagSessionReconnect }
func (*SessionReconnectOK) Tag() Tag   { return TagSessionReconnectOK }
func (*SessionReset) Tag() Tag         { return TagSessionReset }
func (*SessionRetry) Tag() Tag         { return TagSessionRetry }
func (*SessionRetryGlobal) Tag() Tag   { return TagSessionRetryGlobal }
func (*Wait) Tag() Tag                 { return TagWait }
func (*Keepalive2) Tag() Tag           { return TagKeepalive2 }
func (*Keepalive2Ack) Tag() Tag        { return TagKeepalive2Ack }
func (*Ack) Tag() Tag                  { return TagAck }

// NewPayload returns an empty payload for tag, or nil for MESSAGE, the
// compression tags and unknown tags.
func NewPayload(tag Tag) Payload {
	switch tag {
	case TagHello:
		return new(Hello)
	case TagAuthRequest:
		return new(AuthRequest)
	case TagAuthBadMethod:
		return new(AuthBadMethod)
	case TagAuthReplyMore:
		return new(AuthReplyMore)
	case TagAuthRequestMore:
		return new(AuthRequestMore)
	case TagAuthDone:
		return new(AuthDone)
	case TagAuthSignature:
		return new(AuthSignature)
	case TagClientIdent:
		return new(ClientIdent)
	case TagServerIdent:
		return new(ServerIdent)
	case TagIdentMissingFeatures:
		return new(IdentMissingFeatures)
	case TagSessionReconnect:
		return new(SessionReconnect)
	case TagSessionReconnectOK:
		return new(SessionReconnectOK)
	case TagSessionReset:
		return new(SessionReset)
	case TagSessionRetry:
		return new(SessionRetry)
	case TagSessionRetryGlobal:
		return new(SessionRetryGlobal)
	case TagWait:
		return new(Wait)
	case TagKeepalive2:
		return new(Keepalive2)
	case TagKeepalive2Ack:
		return new(Keepalive2Ack)
	case TagAck:
		return new(Ack)
	}
	return nil
}

// UnmarshalPayload decodes the payload segment of a control frame.
func UnmarshalPayload(tag Tag, b []byte) (Payload, error) {
	p := NewPayload(tag)
	if p == nil {
		return nil, protoErr("no control payload for tag %v", tag)
	}
	if err := p.Unmarshal(b); err != nil {
		return nil, err
	}
	return p, nil
}

func le64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }
func le32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }

// Marshal appends the HELLO payload: u8 entity type, entity_addr_t.
func (m *Hello) Marshal(dst []byte) []byte {
	dst = append(dst, m.EntityType)
	return m.PeerAddr.Marshal(dst)
}

// Unmarshal decodes a HELLO payload.
func (m *Hello) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) {
		m.EntityType = d.U8("hello entity type")
		m.PeerAddr.decode(d)
	})
}

// Marshal appends: le32 method, vector<le32> preferred modes, bufferlist.
func (m *AuthRequest) Marshal(dst []byte) []byte {
	dst = le32(dst, m.Method)
	dst = appendU32s(dst, m.PreferredModes)
	return appendBlob(dst, m.AuthPayload)
}

// Unmarshal decodes an AUTH_REQUEST payload.
func (m *AuthRequest) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) {
		m.Method = d.U32("auth method")
		m.PreferredModes = d.u32s("preferred modes")
		m.AuthPayload = d.blob("auth payload")
	})
}

// Marshal appends: le32 method, le32 result, vector<le32> allowed methods,
// vector<le32> allowed modes.
func (m *AuthBadMethod) Marshal(dst []byte) []byte {
	dst = le32(dst, m.Method)
	dst = le32(dst, uint32(m.Result))
	dst = appendU32s(dst, m.AllowedMethods)
	return appendU32s(dst, m.AllowedModes)
}

// Unmarshal decodes an AUTH_BAD_METHOD payload.
func (m *AuthBadMethod) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) {
		m.Method = d.U32("auth method")
		m.Result = int32(d.U32("auth result"))
		m.AllowedMethods = d.u32s("allowed methods")
		m.AllowedModes = d.u32s("allowed modes")
	})
}

// Marshal appends the bufferlist auth payload.
func (m *AuthReplyMore) Marshal(dst []byte) []byte { return appendBlob(dst, m.AuthPayload) }

// Unmarshal decodes an AUTH_REPLY_MORE payload.
func (m *AuthReplyMore) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) { m.AuthPayload = d.blob("auth payload") })
}

// Marshal appends the bufferlist auth payload, as AuthReplyMore.
func (m *AuthRequestMore) Marshal(dst []byte) []byte { return (*AuthReplyMore)(m).Marshal(dst) }

// Unmarshal decodes an AUTH_REQUEST_MORE payload, as AuthReplyMore.
func (m *AuthRequestMore) Unmarshal(b []byte) error { return (*AuthReplyMore)(m).Unmarshal(b) }

// Marshal appends: le64 global id, le32 connection mode, bufferlist.
func (m *AuthDone) Marshal(dst []byte) []byte {
	dst = le64(dst, m.GlobalID)
	dst = le32(dst, m.ConMode)
	return appendBlob(dst, m.AuthPayload)
}

// Unmarshal decodes an AUTH_DONE payload.
func (m *AuthDone) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) {
		m.GlobalID = d.U64("global id")
		m.ConMode = d.U32("connection mode")
		m.AuthPayload = d.blob("auth payload")
	})
}

// Marshal appends the 32 signature bytes.
func (m *AuthSignature) Marshal(dst []byte) []byte { return append(dst, m.Signature[:]...) }

// Unmarshal decodes an AUTH_SIGNATURE payload.
func (m *AuthSignature) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) {
		if s := d.Take(32, "auth signature"); s != nil {
			copy(m.Signature[:], s)
		}
	})
}

// Marshal appends: entity_addrvec_t, entity_addr_t target, le64 gid,
// global seq, supported, required, flags, cookie.
func (m *ClientIdent) Marshal(dst []byte) []byte {
	dst = m.Addrs.Marshal(dst)
	dst = m.TargetAddr.Marshal(dst)
	return appendIdentTail(dst, m.GID, m.GlobalSeq, m.SupportedFeatures, m.RequiredFeatures, m.Flags, m.Cookie)
}

// Unmarshal decodes a CLIENT_IDENT payload.
func (m *ClientIdent) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) {
		m.Addrs.decode(d)
		m.TargetAddr.decode(d)
		d.identTail(&m.GID, &m.GlobalSeq, &m.SupportedFeatures, &m.RequiredFeatures, &m.Flags, &m.Cookie)
	})
}

// Marshal appends: entity_addrvec_t, le64 gid, global seq, supported,
// required, flags, cookie.
func (m *ServerIdent) Marshal(dst []byte) []byte {
	dst = m.Addrs.Marshal(dst)
	return appendIdentTail(dst, m.GID, m.GlobalSeq, m.SupportedFeatures, m.RequiredFeatures, m.Flags, m.Cookie)
}

// Unmarshal decodes a SERVER_IDENT payload.
func (m *ServerIdent) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) {
		m.Addrs.decode(d)
		d.identTail(&m.GID, &m.GlobalSeq, &m.SupportedFeatures, &m.RequiredFeatures, &m.Flags, &m.Cookie)
	})
}

// appendIdentTail appends what CLIENT_IDENT and SERVER_IDENT both carry
// after their addresses: le64 gid, global seq, supported, required, flags,
// cookie.
func appendIdentTail(dst []byte, gid int64, globalSeq, supported, required, flags, cookie uint64) []byte {
	for _, v := range [...]uint64{uint64(gid), globalSeq, supported, required, flags, cookie} {
		dst = le64(dst, v)
	}
	return dst
}

// identTail decodes what appendIdentTail encodes.
func (d *decoder) identTail(gid *int64, globalSeq, supported, required, flags, cookie *uint64) {
	*gid = int64(d.U64("gid"))
	*globalSeq = d.U64("global seq")
	*supported = d.U64("supported features")
	*required = d.U64("required features")
	*flags = d.U64("flags")
	*cookie = d.U64("cookie")
}

// Marshal appends the le64 missing feature mask.
func (m *IdentMissingFeatures) Marshal(dst []byte) []byte { return le64(dst, m.Features) }

// Unmarshal decodes an IDENT_MISSING_FEATURES payload.
func (m *IdentMissingFeatures) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) { m.Features = d.U64("missing features") })
}

// Marshal appends: entity_addrvec_t, le64 client cookie, server cookie,
// global seq, connect seq, msg seq.
func (m *SessionReconnect) Marshal(dst []byte) []byte {
	dst = m.Addrs.Marshal(dst)
	dst = le64(dst, m.ClientCookie)
	dst = le64(dst, m.ServerCookie)
	dst = le64(dst, m.GlobalSeq)
	dst = le64(dst, m.ConnectSeq)
	return le64(dst, m.MsgSeq)
}

// Unmarshal decodes a SESSION_RECONNECT payload.
func (m *SessionReconnect) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) {
		m.Addrs.decode(d)
		m.ClientCookie = d.U64("client cookie")
		m.ServerCookie = d.U64("server cookie")
		m.GlobalSeq = d.U64("global seq")
		m.ConnectSeq = d.U64("connect seq")
		m.MsgSeq = d.U64("msg seq")
	})
}

// Marshal appends the le64 message sequence.
func (m *SessionReconnectOK) Marshal(dst []byte) []byte { return le64(dst, m.MsgSeq) }

// Unmarshal decodes a SESSION_RECONNECT_OK payload.
func (m *SessionReconnectOK) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) { m.MsgSeq = d.U64("msg seq") })
}

// Marshal appends the bool as one byte.
func (m *SessionReset) Marshal(dst []byte) []byte {
	if m.Full {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// Unmarshal decodes a SESSION_RESET payload (any non-zero byte is true).
func (m *SessionReset) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) { m.Full = d.U8("full flag") != 0 })
}

// Marshal appends the le64 connect sequence.
func (m *SessionRetry) Marshal(dst []byte) []byte { return le64(dst, m.ConnectSeq) }

// Unmarshal decodes a SESSION_RETRY payload.
func (m *SessionRetry) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) { m.ConnectSeq = d.U64("connect seq") })
}

// Marshal appends the le64 global sequence.
func (m *SessionRetryGlobal) Marshal(dst []byte) []byte { return le64(dst, m.GlobalSeq) }

// Unmarshal decodes a SESSION_RETRY_GLOBAL payload.
func (m *SessionRetryGlobal) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) { m.GlobalSeq = d.U64("global seq") })
}

// Marshal appends nothing.
func (m *Wait) Marshal(dst []byte) []byte { return dst }

// Unmarshal accepts any payload (Ceph reads nothing from it).
func (m *Wait) Unmarshal(b []byte) error { return nil }

func appendUtime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return le64(dst, 0)
	}
	dst = le32(dst, uint32(t.Unix()))
	return le32(dst, uint32(t.Nanosecond()))
}

func decodeUtime(d *decoder) time.Time {
	sec := d.U32("timestamp seconds")
	nsec := d.U32("timestamp nanoseconds")
	if d.Err != nil || (sec == 0 && nsec == 0) {
		return time.Time{}
	}
	// Normalise like utime_t::normalize, keeping seconds 32-bit so that
	// re-encoding gives the same instant.
	sec += nsec / 1e9
	nsec %= 1e9
	return time.Unix(int64(sec), int64(nsec))
}

// Marshal appends the utime_t timestamp (the zero Time as 0.0).
func (m *Keepalive2) Marshal(dst []byte) []byte { return appendUtime(dst, m.Timestamp) }

// Unmarshal decodes a KEEPALIVE2 payload (0.0 as the zero Time).
func (m *Keepalive2) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) { m.Timestamp = decodeUtime(d) })
}

// Marshal appends the utime_t timestamp, as Keepalive2.
func (m *Keepalive2Ack) Marshal(dst []byte) []byte { return (*Keepalive2)(m).Marshal(dst) }

// Unmarshal decodes a KEEPALIVE2_ACK payload, as Keepalive2.
func (m *Keepalive2Ack) Unmarshal(b []byte) error { return (*Keepalive2)(m).Unmarshal(b) }

// Marshal appends the le64 sequence.
func (m *Ack) Marshal(dst []byte) []byte { return le64(dst, m.Seq) }

// Unmarshal decodes an ACK payload.
func (m *Ack) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) { m.Seq = d.U64("ack seq") })
}
