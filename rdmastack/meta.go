package rdmastack

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// MetaLen is the size of a handshake message: Ceph's TCP_MSG_LEN, the
// formatted "%04x:%08x:%08x:%08x:%s" with a 32-hex-char gid plus its NUL.
const MetaLen = 65

// Meta is the QP information exchanged over the TCP side channel (Ceph's
// IBSYNMsg / cm_meta_t).
type Meta struct {
	LID     uint16
	QPN     uint32
	PSN     uint32
	PeerQPN uint32
	GID     verbs.GID
}

// ErrBadMeta is wrapped by every meta parsing error.
var ErrBadMeta = errors.New("rdmastack: malformed handshake meta")

// Marshal formats m as Ceph does: "%04x:%08x:%08x:%08x:" then the gid as
// four "%08x" of its 32-bit words in network order, then a NUL.
func (m Meta) Marshal() [MetaLen]byte {
	var b [MetaLen]byte
	out := b[:0]
	out = appendHex(out, uint64(m.LID), 4)
	out = append(out, ':')
	out = appendHex(out, uint64(m.QPN), 8)
	out = append(out, ':')
	out = appendHex(out, uint64(m.PSN), 8)
	out = append(out, ':')
	out = appendHex(out, uint64(m.PeerQPN), 8)
	out = append(out, ':')
	out = hex.AppendEncode(out, m.GID[:])
	_ = out // b[64] stays NUL
	return b
}

func appendHex(b []byte, v uint64, width int) []byte {
	const digits = "0123456789abcdef"
	for i := width - 1; i >= 0; i-- {
		b = append(b, digits[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// ParseMeta parses exactly one MetaLen-byte message.
func ParseMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) != MetaLen {
		return m, fmt.Errorf("%w: %d bytes, want %d", ErrBadMeta, len(b), MetaLen)
	}
	if b[MetaLen-1] != 0 {
		return m, fmt.Errorf("%w: not NUL-terminated", ErrBadMeta)
	}
	for _, i := range []int{4, 13, 22, 31} {
		if b[i] != ':' {
			return m, fmt.Errorf("%w: byte %d is %q, want ':'", ErrBadMeta, i, b[i])
		}
	}
	field := func(from, to int, name string) (uint64, error) {
		v, err := strconv.ParseUint(string(b[from:to]), 16, 32)
		if err != nil {
			return 0, fmt.Errorf("%w: %s %q is not hex", ErrBadMeta, name, b[from:to])
		}
		return v, nil
	}
	lid, err := field(0, 4, "lid")
	if err != nil {
		return m, err
	}
	qpn, err := field(5, 13, "qpn")
	if err != nil {
		return m, err
	}
	psn, err := field(14, 22, "psn")
	if err != nil {
		return m, err
	}
	peer, err := field(23, 31, "peer qpn")
	if err != nil {
		return m, err
	}
	if _, err := hex.Decode(m.GID[:], b[32:64]); err != nil {
		return Meta{}, fmt.Errorf("%w: gid %q is not hex", ErrBadMeta, b[32:64])
	}
	if qpn == 0 || qpn > 0xffffff {
		return Meta{}, fmt.Errorf("%w: qpn %#x out of range", ErrBadMeta, qpn)
	}
	if psn > 0xffffff || peer > 0xffffff {
		return Meta{}, fmt.Errorf("%w: psn %#x or peer qpn %#x out of range", ErrBadMeta, psn, peer)
	}
	m.LID, m.QPN, m.PSN, m.PeerQPN = uint16(lid), uint32(qpn), uint32(psn), uint32(peer)
	return m, nil
}
