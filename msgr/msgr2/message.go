package msgr2

import "encoding/binary"

// MsgHeader2Len is sizeof(ceph_msg_header2), a packed little-endian struct.
const MsgHeader2Len = 41

// Message priorities (CEPH_MSG_PRIO_*).
const (
	PrioLow     uint16 = 64
	PrioDefault uint16 = 127
	PrioHigh    uint16 = 196
	PrioHighest uint16 = 255
)

// MsgHeader2 is ceph_msg_header2, segment 0 of a MESSAGE frame. The
// sender's name is not in it: it comes from HELLO (type) and CLIENT_IDENT /
// SERVER_IDENT (gid). Segment lengths come from the preamble.
type MsgHeader2 struct {
	Seq               uint64
	Tid               uint64
	Type              uint16
	Priority          uint16
	Version           uint16
	DataPrePaddingLen uint32
	DataOff           uint16
	AckSeq            uint64
	Flags             uint8
	CompatVersion     uint16
	Reserved          uint16
}

// Marshal appends the 41-byte packed header.
func (h *MsgHeader2) Marshal(dst []byte) []byte {
	var b [MsgHeader2Len]byte
	h.put(&b)
	return append(dst, b[:]...)
}

func (h *MsgHeader2) put(b *[MsgHeader2Len]byte) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], h.Seq)
	le.PutUint64(b[8:], h.Tid)
	le.PutUint16(b[16:], h.Type)
	le.PutUint16(b[18:], h.Priority)
	le.PutUint16(b[20:], h.Version)
	le.PutUint32(b[22:], h.DataPrePaddingLen)
	le.PutUint16(b[26:], h.DataOff)
	le.PutUint64(b[28:], h.AckSeq)
	b[36] = h.Flags
	le.PutUint16(b[37:], h.CompatVersion)
	le.PutUint16(b[39:], h.Reserved)
}

// Unmarshal decodes the header; b must be exactly MsgHeader2Len bytes (the
// whole first segment of a MESSAGE frame).
func (h *MsgHeader2) Unmarshal(b []byte) error {
	if len(b) != MsgHeader2Len {
		return protoErr("message header segment is %d bytes, want %d", len(b), MsgHeader2Len)
	}
	le := binary.LittleEndian
	h.Seq = le.Uint64(b[0:])
	h.Tid = le.Uint64(b[8:])
	h.Type = le.Uint16(b[16:])
	h.Priority = le.Uint16(b[18:])
	h.Version = le.Uint16(b[20:])
	h.DataPrePaddingLen = le.Uint32(b[22:])
	h.DataOff = le.Uint16(b[26:])
	h.AckSeq = le.Uint64(b[28:])
	h.Flags = b[36]
	h.CompatVersion = le.Uint16(b[37:])
	h.Reserved = le.Uint16(b[39:])
	return nil
}

// AppendMessageFrame appends a MESSAGE frame: segment 0 is the header, then
// front, middle and data (alignments 8, 8, 8, 4096 as Ceph's MessageFrame).
// Trailing empty segments are dropped as Ceph does. It allocates nothing
// beyond growing dst.
func AppendMessageFrame(dst []byte, h *MsgHeader2, front, middle, data []byte) []byte {
	start := len(dst)
	dst = appendPreambleHeader(dst, TagMessage)
	dst = h.Marshal(dst)
	lens := [MaxSegments]int{MsgHeader2Len, len(front), len(middle), len(data)}
	dst = finishFirstSegment(dst, start, TagMessage, &lens)
	n := int(dst[start+1])
	switch n {
	case 2:
		dst = append(dst, front...)
		return appendEpilogue(dst, n, front)
	case 3:
		dst = append(dst, front...)
		dst = append(dst, middle...)
		return appendEpilogue(dst, n, front, middle)
	case 4:
		dst = append(dst, front...)
		dst = append(dst, middle...)
		dst = append(dst, data...)
		return appendEpilogue(dst, n, front, middle, data)
	}
	return dst
}

// AppendMessageFrameParts is AppendMessageFrame without copying the data
// segment, for sending it by reference (a scatter/gather write). It appends
// to dst everything of the frame that precedes the data segment (preamble,
// header, front, middle and the first segment's crc) and returns it as head,
// and appends to tailDst what follows data (the epilogue, whose crc of data
// is computed here) and returns it as tail. head, then data, then tail is
// byte for byte the frame AppendMessageFrame builds. Without data the whole
// frame is in head and tail is tailDst unchanged. It allocates nothing
// beyond growing dst and tailDst (EpilogueLen bytes of tailDst capacity
// suffice).
func AppendMessageFrameParts(dst, tailDst []byte, h *MsgHeader2, front, middle, data []byte) (head, tail []byte) {
	if len(data) == 0 {
		return AppendMessageFrame(dst, h, front, middle, nil), tailDst
	}
	start := len(dst)
	dst = appendPreambleHeader(dst, TagMessage)
	dst = h.Marshal(dst)
	lens := [MaxSegments]int{MsgHeader2Len, len(front), len(middle), len(data)}
	dst = finishFirstSegment(dst, start, TagMessage, &lens)
	dst = append(dst, front...)
	dst = append(dst, middle...)
	return dst, appendEpilogue(tailDst, MaxSegments, front, middle, data)
}

// ParseMessage splits the segments of a MESSAGE frame (as returned by
// ParseFrameRest) into header, front, middle and data; the byte slices alias
// segs.
func ParseMessage(segs [MaxSegments][]byte) (h MsgHeader2, front, middle, data []byte, err error) {
	if err = h.Unmarshal(segs[0]); err != nil {
		return h, nil, nil, nil, err
	}
	return h, segs[1], segs[2], segs[3], nil
}
