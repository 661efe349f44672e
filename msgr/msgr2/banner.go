package msgr2

import (
	"encoding/binary"
)

// BannerPrefix starts every msgr2 connection in both directions.
const BannerPrefix = "ceph v2\n"

// BannerLen is the full banner: prefix, le16 payload length (16), le64
// supported features, le64 required features.
const BannerLen = 8 + 2 + 16

// bannerPayloadLen is the payload length every Ceph release sends.
const bannerPayloadLen = 16

// msgr1Banner is what a msgr1 (legacy) peer sends; used only for a clearer
// error message.
const msgr1Banner = "ceph v027"

// msgr2 banner feature bits (CEPH_MSGR2_FEATURE_*), a namespace distinct
// from the CEPH_FEATURE_* bits exchanged in CLIENT_IDENT/SERVER_IDENT.
const (
	// FeatureRevision1 is msgr2.1 (rev1 frame format). A Ceph 16.2 daemon
	// supports and requires it.
	FeatureRevision1 uint64 = 1 << 0
	// FeatureCompression is on-wire compression (Ceph 17+). Not implemented
	// here; never advertise it.
	FeatureCompression uint64 = 1 << 1
)

// AppendBanner appends the banner advertising supported and required
// msgr2 features to dst.
func AppendBanner(dst []byte, supported, required uint64) []byte {
	dst = append(dst, BannerPrefix...)
	dst = binary.LittleEndian.AppendUint16(dst, bannerPayloadLen)
	dst = binary.LittleEndian.AppendUint64(dst, supported)
	dst = binary.LittleEndian.AppendUint64(dst, required)
	return dst
}

// ParseBanner parses a peer banner; b must be exactly BannerLen bytes.
// Ceph itself reads the le16 payload length and then that many bytes; every
// Ceph release sends 16, and a different length is reported as an error.
func ParseBanner(b []byte) (supported, required uint64, err error) {
	if len(b) != BannerLen {
		return 0, 0, protoErr("banner length %d, want %d", len(b), BannerLen)
	}
	if string(b[:len(BannerPrefix)]) != BannerPrefix {
		if string(b[:len(msgr1Banner)]) == msgr1Banner {
			return 0, 0, protoErr("bad banner prefix %q: peer speaks msgr1", b[:len(msgr1Banner)])
		}
		return 0, 0, protoErr("bad banner prefix %q", b[:len(BannerPrefix)])
	}
	n := binary.LittleEndian.Uint16(b[8:])
	if n != bannerPayloadLen {
		return 0, 0, protoErr("banner payload length %d, want %d", n, bannerPayloadLen)
	}
	supported = binary.LittleEndian.Uint64(b[10:])
	required = binary.LittleEndian.Uint64(b[18:])
	return supported, required, nil
}
