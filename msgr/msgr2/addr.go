package msgr2

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// Entity types (CEPH_ENTITY_TYPE_*, src/include/msgr.h).
const (
	EntityTypeMon    uint8 = 0x01
	EntityTypeMDS    uint8 = 0x02
	EntityTypeOSD    uint8 = 0x04
	EntityTypeClient uint8 = 0x08
	EntityTypeMgr    uint8 = 0x10
	EntityTypeAuth   uint8 = 0x20
	EntityTypeAny    uint8 = 0xff
)

// EntityName is entity_name_t: a type and a number (osd.3, client.4123).
// Its encoding (denc) is u8 type, le64 num.
type EntityName struct {
	Type uint8
	Num  int64
}

// Marshal appends Ceph's encoding of n.
func (n *EntityName) Marshal(dst []byte) []byte {
	dst = append(dst, n.Type)
	return binary.LittleEndian.AppendUint64(dst, uint64(n.Num))
}

// Unmarshal decodes n from exactly its 9-byte encoding (trailing bytes are
// ignored, as Ceph's decoders do).
func (n *EntityName) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) {
		n.Type = d.U8("entity_name_t type")
		n.Num = int64(d.U64("entity_name_t num"))
	})
}

// EntityTypeName is Ceph's name of an entity type ("mon", "client"), or ""
// for a type Ceph does not define.
func EntityTypeName(t uint8) string {
	switch t {
	case EntityTypeMon:
		return "mon"
	case EntityTypeMDS:
		return "mds"
	case EntityTypeOSD:
		return "osd"
	case EntityTypeClient:
		return "client"
	case EntityTypeMgr:
		return "mgr"
	case EntityTypeAuth:
		return "auth"
	}
	return ""
}

// String formats n the way Ceph prints it, e.g. "mon.0", "client.?".
func (n EntityName) String() string {
	t := EntityTypeName(n.Type)
	if t == "" {
		t = "unknown"
	}
	if n.Num < 0 {
		return t + ".?"
	}
	return t + "." + strconv.FormatInt(n.Num, 10)
}

// entity_addr_t types.
const (
	AddrTypeNone   uint32 = 0
	AddrTypeLegacy uint32 = 1
	AddrTypeMsgr2  uint32 = 2
	AddrTypeAny    uint32 = 3
	AddrTypeCIDR   uint32 = 4
)

// Linux address family numbers, as Ceph puts them on the wire.
const (
	afUnspec = 0
	afInet   = 2
	afInet6  = 10
)

// sockaddr sizes on Linux: sizeof(sockaddr_in), sizeof(sockaddr_in6) (also
// the size of entity_addr_t's union, used for AF_UNSPEC).
const (
	sockaddrInLen  = 16
	sockaddrIn6Len = 28
	// legacySockaddrLen is sizeof(sockaddr_storage) in the legacy encoding.
	legacySockaddrLen = 128
)

// EntityAddr is entity_addr_t. Addr is the zero AddrPort for an address
// without a family (AF_UNSPEC, e.g. a blank address in HELLO before it is
// learnt). IPv6 flowinfo and scope id are not kept (sent as zero).
type EntityAddr struct {
	Type  uint32
	Nonce uint32
	Addr  netip.AddrPort
}

// String formats a like Ceph: "v2:10.0.0.1:3300/1234".
func (a EntityAddr) String() string {
	t := "???"
	switch a.Type {
	case AddrTypeNone:
		t = "none"
	case AddrTypeLegacy:
		t = "v1"
	case AddrTypeMsgr2:
		t = "v2"
	case AddrTypeAny:
		t = "any"
	case AddrTypeCIDR:
		t = "cidr"
	}
	s := "-"
	if a.Addr.IsValid() {
		s = a.Addr.String()
	}
	return t + ":" + s + "/" + strconv.FormatUint(uint64(a.Nonce), 10)
}

// sockaddrData returns the family and the bytes after sa_family (sa_data)
// of a's sockaddr as Linux lays it out.
func (a *EntityAddr) sockaddrData(buf *[sockaddrIn6Len - 2]byte) (family uint16, data []byte) {
	if !a.Addr.IsValid() {
		return afUnspec, buf[:sockaddrIn6Len-2]
	}
	ip := a.Addr.Addr()
	binary.BigEndian.PutUint16(buf[0:], a.Addr.Port())
	if ip.Is4() {
		v4 := ip.As4()
		copy(buf[2:6], v4[:])
		return afInet, buf[:sockaddrInLen-2]
	}
	v6 := ip.As16()
	copy(buf[6:22], v6[:]) // after port and sin6_flowinfo
	return afInet6, buf[:sockaddrIn6Len-2]
}

// Marshal appends entity_addr_t::encode with MSG_ADDR2 and SERVER_NAUTILUS
// features (what msgr2 frames assume): marker 1, ENCODE_START(1, 1), type,
// nonce, le32 sockaddr length, le16 family, the rest of the sockaddr.
func (a *EntityAddr) Marshal(dst []byte) []byte {
	dst = append(dst, 1, 1, 1) // marker, struct_v, struct_compat
	lenOff := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint32(dst, a.Type)
	dst = binary.LittleEndian.AppendUint32(dst, a.Nonce)
	var buf [sockaddrIn6Len - 2]byte
	fam, data := a.sockaddrData(&buf)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(2+len(data)))
	dst = binary.LittleEndian.AppendUint16(dst, fam)
	dst = append(dst, data...)
	binary.LittleEndian.PutUint32(dst[lenOff:], uint32(len(dst)-lenOff-4))
	return dst
}

// Unmarshal decodes an entity_addr_t (either the addr2 form or the legacy
// marker-0 form); trailing bytes are ignored.
func (a *EntityAddr) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) { a.decode(d) })
}

func (a *EntityAddr) decode(d *decoder) {
	marker := d.U8("entity_addr_t marker")
	if d.Err != nil {
		return
	}
	switch marker {
	case 0:
		a.decodeLegacy(d)
	case 1:
		a.decodeBody(d)
	default:
		d.Fail(protoErr("entity_addr_t marker %d, want 1", marker))
	}
}

// decodeStart is DECODE_START(1, bl): struct_v, struct_compat, le32 length.
// It returns a decoder limited to the struct body and advances d past it
// (DECODE_FINISH skips whatever the body does not consume).
func decodeStart(d *decoder, what string) *decoder {
	v := d.U8(what + " struct_v")
	compat := d.U8(what + " struct_compat")
	n := d.U32(what + " struct_len")
	if d.Err != nil {
		return nil
	}
	if compat > 1 {
		d.Fail(protoErr("%s struct_compat %d (struct_v %d) newer than supported 1", what, compat, v))
		return nil
	}
	if uint64(n) > uint64(d.Remaining()) {
		d.Fail(protoErr("short frame: %s struct_len %d exceeds the %d bytes left", what, n, d.Remaining()))
		return nil
	}
	body := d.Take(int(n), what)
	sub := newDecoder(body)
	return &sub
}

func (a *EntityAddr) decodeBody(d *decoder) {
	*a = EntityAddr{}
	sub := decodeStart(d, "entity_addr_t")
	if sub == nil {
		return
	}
	a.Type = sub.U32("entity_addr_t type")
	a.Nonce = sub.U32("entity_addr_t nonce")
	elen := sub.U32("entity_addr_t sockaddr length")
	if sub.Err != nil {
		d.Fail(sub.Err)
		return
	}
	if elen == 0 {
		return
	}
	if elen < 2 {
		d.Fail(protoErr("entity_addr_t sockaddr length %d smaller than family", elen))
		return
	}
	fam := sub.U16("entity_addr_t family")
	elen -= 2
	max := uint32(sockaddrIn6Len - 2)
	if fam == afInet {
		max = sockaddrInLen - 2
	}
	if elen > max {
		d.Fail(protoErr("entity_addr_t sockaddr length %d exceeds %d for family %d", elen+2, max+2, fam))
		return
	}
	raw := sub.Take(int(elen), "entity_addr_t sockaddr")
	if sub.Err != nil {
		d.Fail(sub.Err)
		return
	}
	var data [sockaddrIn6Len - 2]byte
	copy(data[:], raw)
	if err := a.setSockaddr(fam, &data); err != nil {
		d.Fail(err)
	}
}

func (a *EntityAddr) setSockaddr(fam uint16, data *[sockaddrIn6Len - 2]byte) error {
	port := binary.BigEndian.Uint16(data[0:])
	switch fam {
	case afUnspec:
		a.Addr = netip.AddrPort{}
	case afInet:
		a.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte(data[2:6])), port)
	case afInet6:
		a.Addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte(data[6:22])), port)
	default:
		return protoErr("entity_addr_t address family %d not supported", fam)
	}
	return nil
}

// decodeLegacy is decode_legacy_addr_after_marker: u8 marker, le16 rest,
// le32 nonce, a 128-byte sockaddr_storage whose family is big-endian.
func (a *EntityAddr) decodeLegacy(d *decoder) {
	*a = EntityAddr{}
	d.U8("legacy entity_addr_t marker")
	d.U16("legacy entity_addr_t pad")
	a.Nonce = d.U32("legacy entity_addr_t nonce")
	ss := d.Take(legacySockaddrLen, "legacy entity_addr_t sockaddr")
	if d.Err != nil {
		return
	}
	fam := binary.BigEndian.Uint16(ss)
	var data [sockaddrIn6Len - 2]byte
	copy(data[:], ss[2:])
	if err := a.setSockaddr(fam, &data); err != nil {
		d.Fail(err)
		return
	}
	if fam == afUnspec {
		a.Type = AddrTypeNone
	} else {
		a.Type = AddrTypeLegacy
	}
}

// AddrVec is entity_addrvec_t.
type AddrVec []EntityAddr

// minAddrLen is the smallest encoding of an entity_addr_t: marker,
// struct_v, compat, struct_len, type, nonce, sockaddr length 0.
const minAddrLen = 1 + 1 + 1 + 4 + 4 + 4 + 4

// Marshal appends entity_addrvec_t::encode with MSG_ADDR2: marker 2, le32
// count, each address.
func (v *AddrVec) Marshal(dst []byte) []byte {
	dst = append(dst, 2)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(*v)))
	for i := range *v {
		dst = (*v)[i].Marshal(dst)
	}
	return dst
}

// Unmarshal decodes an entity_addrvec_t (marker 2, or the single-address
// forms with marker 0 or 1); trailing bytes are ignored.
func (v *AddrVec) Unmarshal(b []byte) error {
	return decodeWith(b, func(d *decoder) { v.decode(d) })
}

func (v *AddrVec) decode(d *decoder) {
	*v = nil
	marker := d.U8("entity_addrvec_t marker")
	if d.Err != nil {
		return
	}
	switch marker {
	case 0:
		var a EntityAddr
		a.decodeLegacy(d)
		if d.Err == nil {
			*v = AddrVec{a}
		}
	case 1:
		var a EntityAddr
		a.decodeBody(d)
		if d.Err == nil {
			*v = AddrVec{a}
		}
	case 2:
		n := d.U32("entity_addrvec_t count")
		if d.Err != nil {
			return
		}
		if uint64(n)*minAddrLen > uint64(d.Remaining()) {
			d.Fail(protoErr("short frame: entity_addrvec_t count %d exceeds the %d bytes left", n, d.Remaining()))
			return
		}
		if n == 0 {
			return
		}
		out := make(AddrVec, n)
		for i := range out {
			out[i].decode(d)
			if d.Err != nil {
				return
			}
		}
		*v = out
	default:
		d.Fail(protoErr("entity_addrvec_t marker %d > 2", marker))
	}
}

// Msgr2Addr returns the first TYPE_MSGR2 address (addr_of_type), or the
// zero address.
func (v AddrVec) Msgr2Addr() EntityAddr {
	for _, a := range v {
		if a.Type == AddrTypeMsgr2 {
			return a
		}
	}
	return EntityAddr{}
}
