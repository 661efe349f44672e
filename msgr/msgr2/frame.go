package msgr2

import (
	"encoding/binary"
	"strconv"
)

// Tag is the frame type code (ceph::msgr::v2::Tag).
type Tag uint8

// Frame tags, numbered as in Ceph's src/msg/async/frames_v2.h. Ceph 16.2
// ends at TagAck; the two compression tags exist from Ceph 17 on.
const (
	TagHello                Tag = 1
	TagAuthRequest          Tag = 2
	TagAuthBadMethod        Tag = 3
	TagAuthReplyMore        Tag = 4
	TagAuthRequestMore      Tag = 5
	TagAuthDone             Tag = 6
	TagAuthSignature        Tag = 7
	TagClientIdent          Tag = 8
	TagServerIdent          Tag = 9
	TagIdentMissingFeatures Tag = 10
	TagSessionReconnect     Tag = 11
	TagSessionReset         Tag = 12
	TagSessionRetry         Tag = 13
	TagSessionRetryGlobal   Tag = 14
	TagSessionReconnectOK   Tag = 15
	TagWait                 Tag = 16
	TagMessage              Tag = 17
	TagKeepalive2           Tag = 18
	TagKeepalive2Ack        Tag = 19
	TagAck                  Tag = 20
	TagCompressionRequest   Tag = 21
	TagCompressionDone      Tag = 22
)

var tagNames = [...]string{
	TagHello:                "HELLO",
	TagAuthRequest:          "AUTH_REQUEST",
	TagAuthBadMethod:        "AUTH_BAD_METHOD",
	TagAuthReplyMore:        "AUTH_REPLY_MORE",
	TagAuthRequestMore:      "AUTH_REQUEST_MORE",
	TagAuthDone:             "AUTH_DONE",
	TagAuthSignature:        "AUTH_SIGNATURE",
	TagClientIdent:          "CLIENT_IDENT",
	TagServerIdent:          "SERVER_IDENT",
	TagIdentMissingFeatures: "IDENT_MISSING_FEATURES",
	TagSessionReconnect:     "SESSION_RECONNECT",
	TagSessionReset:         "SESSION_RESET",
	TagSessionRetry:         "SESSION_RETRY",
	TagSessionRetryGlobal:   "SESSION_RETRY_GLOBAL",
	TagSessionReconnectOK:   "SESSION_RECONNECT_OK",
	TagWait:                 "WAIT",
	TagMessage:              "MESSAGE",
	TagKeepalive2:           "KEEPALIVE2",
	TagKeepalive2Ack:        "KEEPALIVE2_ACK",
	TagAck:                  "ACK",
	TagCompressionRequest:   "COMPRESSION_REQUEST",
	TagCompressionDone:      "COMPRESSION_DONE",
}

// Valid reports whether t is a tag Ceph defines.
func (t Tag) Valid() bool { return t >= TagHello && int(t) < len(tagNames) }

// String returns Ceph's name of the tag, or "TAG(n)" for an unknown one.
func (t Tag) String() string {
	if t.Valid() {
		return tagNames[t]
	}
	return "TAG(" + strconv.Itoa(int(t)) + ")"
}

// Frame layout constants (msgr2.1 crc mode).
const (
	// PreambleLen is sizeof(preamble_block_t).
	PreambleLen = 32
	// MaxSegments is MAX_NUM_SEGMENTS.
	MaxSegments = 4
	// EpilogueLen is sizeof(epilogue_crc_rev1_block_t): late_status and
	// three le32 crcs (segments 2..4). Present only when a frame has more
	// than one segment.
	EpilogueLen = 1 + 4*(MaxSegments-1)
	// crcLen is FRAME_CRC_SIZE, the inline crc after a non-empty first
	// segment.
	crcLen = 4
	// preambleCRCOff is where the preamble crc sits; it covers bytes 0..27.
	preambleCRCOff = 28

	// DefaultAlignment is segment_t::DEFAULT_ALIGNMENT (sizeof(void*) on
	// 64-bit hosts), used for control frames and message segments 0..2.
	DefaultAlignment uint16 = 8
	// PageAlignment is segment_t::PAGE_SIZE_ALIGNMENT, used for the data
	// segment of MESSAGE frames.
	PageAlignment uint16 = 4096
)

// late_status values of the rev1 epilogue (FRAME_LATE_STATUS_*).
const (
	lateStatusAborted     = 0x1
	lateStatusComplete    = 0xe
	lateStatusAbortedMask = 0xf
)

// SegmentDesc is one segment_t of the preamble.
type SegmentDesc struct {
	Length    uint32
	Alignment uint16
}

// Preamble is a decoded preamble_block_t. Segments at index NumSegments and
// above are zero. Flags is the byte Ceph 16 calls _reserved[0] (Ceph 17 uses
// it for FRAME_EARLY_DATA_COMPRESSED); it is zero on frames we send.
type Preamble struct {
	Tag         Tag
	NumSegments int
	Segments    [MaxSegments]SegmentDesc
	Flags       uint8
}

// ParsePreamble decodes and verifies a 32-byte preamble. It checks the crc,
// the tag, the segment count (1..4, the last of several segments non-empty,
// as Ceph does) and that no segment is longer than maxSegment bytes
// (maxSegment <= 0 means no limit).
func ParsePreamble(b []byte, maxSegment int) (Preamble, error) {
	var p Preamble
	if len(b) != PreambleLen {
		return p, protoErr("preamble length %d, want %d", len(b), PreambleLen)
	}
	want := binary.LittleEndian.Uint32(b[preambleCRCOff:])
	if got := CRC32C(0, b[:preambleCRCOff]); got != want {
		return p, protoErr("preamble crc mismatch: got 0x%08x want 0x%08x", got, want)
	}
	p.Tag = Tag(b[0])
	if !p.Tag.Valid() {
		return p, protoErr("unknown frame tag %d", b[0])
	}
	n := int(b[1])
	if n < 1 || n > MaxSegments {
		return p, protoErr("bad number of segments %d", n)
	}
	p.NumSegments = n
	for i := 0; i < n; i++ {
		off := 2 + 6*i
		l := binary.LittleEndian.Uint32(b[off:])
		if maxSegment > 0 && uint64(l) > uint64(maxSegment) {
			return p, protoErr("segment %d length %d exceeds limit %d", i, l, maxSegment)
		}
		p.Segments[i] = SegmentDesc{Length: l, Alignment: binary.LittleEndian.Uint16(b[off+4:])}
	}
	if n > 1 && p.Segments[n-1].Length == 0 {
		return p, protoErr("last segment empty")
	}
	p.Flags = b[26]
	return p, nil
}

// FirstSegmentLen is how many bytes follow the preamble for the first
// segment: its length plus the inline crc when it is not empty (rev1). A
// reader may read and check this part (ParseFirstSegment) before the rest,
// e.g. to look at a message header.
func (p *Preamble) FirstSegmentLen() int {
	if p.Segments[0].Length == 0 {
		return 0
	}
	return int(p.Segments[0].Length) + crcLen
}

// RestLen is the exact number of bytes that follow the preamble in
// msgr2.1 crc mode: the first segment and its crc (if it is non-empty),
// segments 2..n, and the epilogue when there is more than one segment.
func (p *Preamble) RestLen() int {
	n := p.FirstSegmentLen()
	if p.NumSegments > 1 {
		for i := 1; i < p.NumSegments; i++ {
			n += int(p.Segments[i].Length)
		}
		n += EpilogueLen
	}
	return n
}

// ParseFirstSegment verifies the first segment's inline crc. b is exactly
// FirstSegmentLen() bytes; the returned segment aliases b.
func ParseFirstSegment(p *Preamble, b []byte) ([]byte, error) {
	if len(b) != p.FirstSegmentLen() {
		return nil, protoErr("first segment is %d bytes, want %d", len(b), p.FirstSegmentLen())
	}
	if len(b) == 0 {
		return b[:0:0], nil
	}
	l := int(p.Segments[0].Length)
	seg := b[:l:l]
	want := binary.LittleEndian.Uint32(b[l:])
	if got := CRC32C(0xffffffff, seg); got != want {
		return nil, protoErr("segment 0 crc mismatch: got 0x%08x want 0x%08x", got, want)
	}
	return seg, nil
}

// ParseFrameRest verifies the bytes that follow the preamble (exactly
// p.RestLen() of them): the inline crc of the first segment, then the
// epilogue's late_status and the crcs of segments 2..n. The returned segments
// alias rest; segments past NumSegments are nil. A frame the sender aborted
// returns ErrFrameAborted (drop it, keep the connection).
func ParseFrameRest(p *Preamble, rest []byte) (segs [MaxSegments][]byte, err error) {
	if p.NumSegments < 1 || p.NumSegments > MaxSegments {
		return segs, protoErr("bad number of segments %d", p.NumSegments)
	}
	if want := p.RestLen(); len(rest) != want {
		if len(rest) < want {
			return segs, protoErr("short frame: %d bytes after preamble, want %d", len(rest), want)
		}
		return segs, protoErr("frame has %d bytes after preamble, want %d", len(rest), want)
	}
	first := p.FirstSegmentLen()
	segs[0], err = ParseFirstSegment(p, rest[:first])
	if err != nil {
		return segs, err
	}
	if p.NumSegments == 1 {
		return segs, nil
	}
	off := first
	for i := 1; i < p.NumSegments; i++ {
		l := int(p.Segments[i].Length)
		segs[i] = rest[off : off+l : off+l]
		off += l
	}
	epi := rest[off:]
	for i := 1; i < p.NumSegments; i++ {
		want := binary.LittleEndian.Uint32(epi[1+4*(i-1):])
		if got := CRC32C(0xffffffff, segs[i]); got != want {
			return segs, protoErr("segment %d crc mismatch: got 0x%08x want 0x%08x", i, got, want)
		}
	}
	switch epi[0] & lateStatusAbortedMask {
	case lateStatusComplete:
		return segs, nil
	case lateStatusAborted:
		return segs, ErrFrameAborted
	default:
		return segs, protoErr("bad late_status 0x%02x", epi[0])
	}
}

// ParseFrame decodes one whole frame (preamble and rest) from the front of
// b and returns the preamble, the segments (aliasing b) and the number of
// bytes consumed. It is a convenience over ParsePreamble and ParseFrameRest.
func ParseFrame(b []byte, maxSegment int) (p Preamble, segs [MaxSegments][]byte, n int, err error) {
	if len(b) < PreambleLen {
		return p, segs, 0, protoErr("short frame: %d bytes, preamble needs %d", len(b), PreambleLen)
	}
	p, err = ParsePreamble(b[:PreambleLen], maxSegment)
	if err != nil {
		return p, segs, 0, err
	}
	rest := p.RestLen()
	if len(b)-PreambleLen < rest {
		return p, segs, 0, protoErr("short frame: %d bytes after preamble, want %d", len(b)-PreambleLen, rest)
	}
	segs, err = ParseFrameRest(&p, b[PreambleLen:PreambleLen+rest])
	return p, segs, PreambleLen + rest, err
}

// AppendFrame appends a msgr2.1 crc-mode frame carrying 1..4 segments to
// dst. Trailing empty segments are dropped as Ceph does. Segment alignments
// are Ceph's: DefaultAlignment, except the fourth segment of a MESSAGE frame
// (PageAlignment). It panics on 0 or more than 4 segments or a segment of
// 4 GiB or more (programming errors).
func AppendFrame(dst []byte, tag Tag, segs ...[]byte) []byte {
	if len(segs) == 0 || len(segs) > MaxSegments {
		panic("msgr2: AppendFrame needs 1 to 4 segments")
	}
	var lens [MaxSegments]int
	for i, s := range segs {
		lens[i] = len(s)
	}
	start := len(dst)
	dst = appendPreambleHeader(dst, tag)
	dst = append(dst, segs[0]...)
	dst = finishFirstSegment(dst, start, tag, &lens)
	n := int(dst[start+1])
	for i := 1; i < n; i++ {
		dst = append(dst, segs[i]...)
	}
	return appendEpilogue(dst, n, segs[1:n]...)
}

func segmentAlign(tag Tag, i int) uint16 {
	if tag == TagMessage && i == 3 {
		return PageAlignment
	}
	return DefaultAlignment
}

// appendPreambleHeader appends a zeroed preamble carrying tag; the first
// segment's bytes are appended right after it by the caller.
func appendPreambleHeader(dst []byte, tag Tag) []byte {
	var zero [PreambleLen]byte
	zero[0] = byte(tag)
	return append(dst, zero[:]...)
}

// finishFirstSegment completes a frame whose preamble starts at dst[start]
// and whose first segment (lens[0] bytes) has been appended after it: it
// fills in the preamble (fillPreamble), then appends the first segment's
// crc if it is not empty.
func finishFirstSegment(dst []byte, start int, tag Tag, lens *[MaxSegments]int) []byte {
	fillPreamble(dst[start:start+PreambleLen], tag, segmentCount(lens), lens)
	if lens[0] > 0 {
		seg := dst[start+PreambleLen : start+PreambleLen+lens[0]]
		dst = binary.LittleEndian.AppendUint32(dst, CRC32C(0xffffffff, seg))
	}
	return dst
}

// segmentCount is Ceph's calc_num_segments: trailing empty segments are
// dropped, at least one is left.
func segmentCount(lens *[MaxSegments]int) int {
	for i := MaxSegments; i > 0; i-- {
		if lens[i-1] > 0 {
			return i
		}
	}
	return 1
}

// fillPreamble fills in a zeroed preamble's segment count, lengths,
// alignments and crc.
func fillPreamble(p []byte, tag Tag, n int, lens *[MaxSegments]int) {
	p = p[:PreambleLen]
	p[1] = byte(n)
	for i := 0; i < n; i++ {
		if uint64(lens[i]) > 0xffffffff {
			panic("msgr2: segment too long")
		}
		binary.LittleEndian.PutUint32(p[2+6*i:], uint32(lens[i]))
		binary.LittleEndian.PutUint16(p[2+6*i+4:], segmentAlign(tag, i))
	}
	binary.LittleEndian.PutUint32(p[preambleCRCOff:], CRC32C(0, p[:preambleCRCOff]))
}

// appendEpilogue appends the rev1 epilogue for a frame of n segments whose
// segments 2..n are rest (nothing when n == 1).
func appendEpilogue(dst []byte, n int, rest ...[]byte) []byte {
	if n == 1 {
		return dst
	}
	dst = append(dst, lateStatusComplete)
	for i := 0; i < MaxSegments-1; i++ {
		var c uint32
		if i < len(rest) {
			c = CRC32C(0xffffffff, rest[i])
		}
		dst = binary.LittleEndian.AppendUint32(dst, c)
	}
	return dst
}

// AppendControlFrame appends a single-segment control frame whose payload is
// m's encoding, without an intermediate buffer.
func AppendControlFrame(dst []byte, m Payload) []byte {
	start := len(dst)
	dst = appendPreambleHeader(dst, m.Tag())
	dst = m.Marshal(dst)
	lens := [MaxSegments]int{len(dst) - start - PreambleLen}
	return finishFirstSegment(dst, start, m.Tag(), &lens)
}
