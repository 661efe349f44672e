package msgr2

import "encoding/binary"

// AppendPreamble appends a crc-valid preamble for a frame of tag announcing
// segments of the given lengths (1 to MaxSegments), checking nothing else:
// what a peer may claim, for tests and fault-injection tools that play a
// hostile or broken peer. Real frames are built with AppendFrame and
// AppendMessageFrame.
func AppendPreamble(dst []byte, tag Tag, lens ...uint32) []byte {
	start := len(dst)
	dst = appendPreambleHeader(dst, tag)
	p := dst[start:]
	p[1] = byte(len(lens))
	for i, l := range lens {
		binary.LittleEndian.PutUint32(p[2+6*i:], l)
		binary.LittleEndian.PutUint16(p[2+6*i+4:], segmentAlign(tag, i))
	}
	binary.LittleEndian.PutUint32(p[preambleCRCOff:], CRC32C(0, p[:preambleCRCOff]))
	return dst
}
