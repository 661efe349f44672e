package msgr2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// goldenPreamble builds a preamble by hand from the layout in msgr2.rst,
// with the crc from the independent reference implementation.
func goldenPreamble(tag Tag, lens []uint32, aligns []uint16) []byte {
	p := make([]byte, 32)
	p[0] = byte(tag)
	p[1] = byte(len(lens))
	for i := range lens {
		binary.LittleEndian.PutUint32(p[2+6*i:], lens[i])
		binary.LittleEndian.PutUint16(p[6+6*i:], aligns[i])
	}
	binary.LittleEndian.PutUint32(p[28:], refCRC32C(0, p[:28]))
	return p
}

func le32b(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func filled(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// The example frames of doc/dev/msgr2.rst, "msgr2.1-crc mode".
func TestAppendFrameGoldenSpecExamples(t *testing.T) {
	s1, s2, s4 := filled(20, 0x11), filled(70, 0x22), filled(350, 0x44)
	epilogue := func(crcs ...uint32) []byte {
		e := []byte{0x0e} // FRAME_LATE_STATUS_COMPLETE
		for i := 0; i < 3; i++ {
			var c uint32
			if i < len(crcs) {
				c = crcs[i]
			}
			e = append(e, le32b(c)...)
		}
		return e
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name string
		tag  Tag
		segs [][]byte
		want []byte
	}{
		{
			name: "0+0+0+0 empty, no epilogue",
			tag:  TagWait,
			segs: [][]byte{nil},
			want: goldenPreamble(TagWait, []uint32{0}, []uint16{8}),
		},
		{
			name: "20+0+0+0 no epilogue",
			tag:  TagHello,
			segs: [][]byte{s1},
			want: cat(goldenPreamble(TagHello, []uint32{20}, []uint16{8}), s1, le32b(refCRC32C(0xffffffff, s1))),
		},
		{
			name: "0+70+0+0",
			tag:  TagMessage,
			segs: [][]byte{nil, s2, nil, nil},
			want: cat(goldenPreamble(TagMessage, []uint32{0, 70}, []uint16{8, 8}), s2,
				epilogue(refCRC32C(0xffffffff, s2))),
		},
		{
			name: "20+70+0+350",
			tag:  TagMessage,
			segs: [][]byte{s1, s2, nil, s4},
			want: cat(goldenPreamble(TagMessage, []uint32{20, 70, 0, 350}, []uint16{8, 8, 8, 4096}),
				s1, le32b(refCRC32C(0xffffffff, s1)), s2, s4,
				epilogue(refCRC32C(0xffffffff, s2), 0xffffffff, refCRC32C(0xffffffff, s4))),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendFrame(nil, tc.tag, tc.segs...)
			require.Equal(t, tc.want, got)

			p, err := ParsePreamble(got[:PreambleLen], 1<<20)
			require.NoError(t, err)
			require.Equal(t, tc.tag, p.Tag)
			require.Equal(t, len(got)-PreambleLen, p.RestLen())
			segs, err := ParseFrameRest(&p, got[PreambleLen:])
			require.NoError(t, err)
			for i := 0; i < MaxSegments; i++ {
				var want []byte
				if i < len(tc.segs) {
					want = tc.segs[i]
				}
				require.Equal(t, len(want), len(segs[i]), "segment %d", i)
				if len(want) > 0 {
					require.Equal(t, want, segs[i], "segment %d", i)
				}
			}
		})
	}
}

func TestAppendFrameDropsTrailingEmptySegments(t *testing.T) {
	cases := []struct {
		name string
		segs [][]byte
		want int
	}{
		{"one empty", [][]byte{nil}, 1},
		{"all empty", [][]byte{nil, nil, nil, nil}, 1},
		{"first only", [][]byte{{1}, nil, nil}, 1},
		{"second", [][]byte{{1}, {2}, nil, nil}, 2},
		{"middle empty", [][]byte{{1}, nil, {3}}, 3},
		{"four", [][]byte{nil, nil, nil, {4}}, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := AppendFrame(nil, TagMessage, tc.segs...)
			require.Equal(t, byte(tc.want), f[1])
			p, err := ParsePreamble(f[:PreambleLen], 0)
			require.NoError(t, err)
			require.Equal(t, tc.want, p.NumSegments)
			for i := p.NumSegments; i < MaxSegments; i++ {
				require.Zero(t, p.Segments[i])
			}
		})
	}
}

func TestAppendFramePanicsOnBadSegmentCount(t *testing.T) {
	require.Panics(t, func() { AppendFrame(nil, TagAck) })
	require.Panics(t, func() { AppendFrame(nil, TagAck, nil, nil, nil, nil, nil) })
}

func TestParseFrameRoundTrip(t *testing.T) {
	big := make([]byte, 9000)
	for i := range big {
		big[i] = byte(i)
	}
	cases := []struct {
		name string
		tag  Tag
		segs [][]byte
	}{
		{"empty", TagWait, [][]byte{nil}},
		{"one", TagAck, [][]byte{{1, 2, 3, 4, 5, 6, 7, 8}}},
		{"two", TagMessage, [][]byte{big[:41], big[:100]}},
		{"four", TagMessage, [][]byte{big[:41], big[:1], big[:2], big}},
		{"empty first", TagMessage, [][]byte{nil, nil, nil, big[:3]}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("junk")
			f := AppendFrame(prefix, tc.tag, tc.segs...)
			require.Equal(t, "junk", string(f[:4]))
			f = append(f[4:], "next frame"...)
			p, segs, n, err := ParseFrame(f, 0)
			require.NoError(t, err)
			require.Equal(t, len(f)-len("next frame"), n)
			require.Equal(t, tc.tag, p.Tag)
			for i, s := range tc.segs {
				require.Equal(t, len(s), len(segs[i]))
				if len(s) > 0 {
					require.Equal(t, s, segs[i])
				}
			}
		})
	}
}

func TestParsePreambleErrors(t *testing.T) {
	good := AppendFrame(nil, TagMessage, filled(41, 1), filled(100, 2))[:PreambleLen]
	reCRC := func(p []byte) []byte {
		binary.LittleEndian.PutUint32(p[28:], refCRC32C(0, p[:28]))
		return p
	}
	mut := func(f func(p []byte)) []byte {
		p := append([]byte(nil), good...)
		f(p)
		return reCRC(p)
	}
	badCRC := append([]byte(nil), good...)
	badCRC[28] ^= 0xff
	wantCRC := binary.LittleEndian.Uint32(badCRC[28:])
	cases := []struct {
		name  string
		in    []byte
		limit int
		want  string
	}{
		{"short", good[:31], 0, "msgr2: preamble length 31, want 32"},
		{"crc", badCRC, 0, "msgr2: preamble crc mismatch: got 0x" + hex32(refCRC32C(0, good[:28])) + " want 0x" + hex32(wantCRC)},
		{"flipped bit", func() []byte { p := append([]byte(nil), good...); p[3] ^= 1; return p }(), 0, "msgr2: preamble crc mismatch"},
		{"tag 0", mut(func(p []byte) { p[0] = 0 }), 0, "msgr2: unknown frame tag 0"},
		{"tag 23", mut(func(p []byte) { p[0] = 23 }), 0, "msgr2: unknown frame tag 23"},
		{"zero segments", mut(func(p []byte) { p[1] = 0 }), 0, "msgr2: bad number of segments 0"},
		{"five segments", mut(func(p []byte) { p[1] = 5 }), 0, "msgr2: bad number of segments 5"},
		{"last empty", mut(func(p []byte) { p[1] = 3 }), 0, "msgr2: last segment empty"},
		{"limit", mut(func(p []byte) { binary.LittleEndian.PutUint32(p[8:], 1<<30) }), 512 << 20,
			"msgr2: segment 1 length 1073741824 exceeds limit 536870912"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePreamble(tc.in, tc.limit)
			requireProtoErr(t, err, tc.want)
		})
	}
}

func hex32(v uint32) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

func TestParseFrameRestErrors(t *testing.T) {
	f := AppendFrame(nil, TagMessage, filled(41, 1), filled(10, 2), nil, filled(5, 4))
	p, err := ParsePreamble(f[:PreambleLen], 0)
	require.NoError(t, err)
	rest := f[PreambleLen:]
	epi := len(rest) - EpilogueLen
	mut := func(off int, x byte) []byte {
		r := append([]byte(nil), rest...)
		r[off] ^= x
		return r
	}
	setLate := func(v byte) []byte {
		r := append([]byte(nil), rest...)
		r[epi] = v
		return r
	}
	cases := []struct {
		name string
		in   []byte
		want string
		is   error
	}{
		{"short", rest[:len(rest)-1], "msgr2: short frame: 72 bytes after preamble, want 73", ErrProtocol},
		{"long", append(append([]byte(nil), rest...), 0), "msgr2: frame has 74 bytes after preamble, want 73", ErrProtocol},
		{"segment 0 data", mut(3, 1), "msgr2: segment 0 crc mismatch", ErrProtocol},
		{"segment 0 crc", mut(41, 1), "msgr2: segment 0 crc mismatch", ErrProtocol},
		{"segment 1 data", mut(45, 0x80), "msgr2: segment 1 crc mismatch", ErrProtocol},
		{"segment 3 data", mut(56, 0x80), "msgr2: segment 3 crc mismatch", ErrProtocol},
		{"segment 2 crc (empty)", mut(epi+5, 1), "msgr2: segment 2 crc mismatch", ErrProtocol},
		{"late status garbage", setLate(0x00), "msgr2: bad late_status 0x00", ErrProtocol},
		{"late status bit flip", setLate(0x0f), "msgr2: bad late_status 0x0f", ErrProtocol},
		{"aborted", setLate(0x01), "msgr2: frame aborted by sender", ErrFrameAborted},
		{"aborted reserved true", setLate(0x11), "msgr2: frame aborted by sender", ErrFrameAborted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFrameRest(&p, tc.in)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.True(t, errors.Is(err, tc.is))
		})
	}
	// The reserved nibble is not checked by Ceph either.
	_, err = ParseFrameRest(&p, setLate(0xee))
	require.NoError(t, err)
}

func TestParseFirstSegment(t *testing.T) {
	f := AppendFrame(nil, TagMessage, filled(41, 7), filled(3, 8))
	p, err := ParsePreamble(f[:PreambleLen], 0)
	require.NoError(t, err)
	require.Equal(t, 45, p.FirstSegmentLen())
	seg, err := ParseFirstSegment(&p, f[PreambleLen:PreambleLen+45])
	require.NoError(t, err)
	require.Equal(t, filled(41, 7), seg)
	_, err = ParseFirstSegment(&p, f[PreambleLen:PreambleLen+44])
	require.EqualError(t, err, "msgr2: first segment is 44 bytes, want 45")
}

func TestParseFrameShort(t *testing.T) {
	f := AppendFrame(nil, TagAck, filled(8, 1))
	for n := 0; n < len(f); n++ {
		_, _, _, err := ParseFrame(f[:n], 0)
		require.ErrorIs(t, err, ErrProtocol, "n=%d", n)
		require.Contains(t, err.Error(), "short frame")
	}
}

func TestAppendControlFrameMatchesAppendFrame(t *testing.T) {
	msgs := []Payload{&Ack{Seq: 9}, &Wait{}, &Hello{EntityType: EntityTypeClient}}
	for _, m := range msgs {
		t.Run(m.Tag().String(), func(t *testing.T) {
			require.Equal(t, AppendFrame(nil, m.Tag(), m.Marshal(nil)), AppendControlFrame(nil, m))
		})
	}
}

func TestTagString(t *testing.T) {
	cases := []struct {
		tag  Tag
		want string
	}{
		{TagHello, "HELLO"}, {TagAuthRequest, "AUTH_REQUEST"}, {TagAuthDone, "AUTH_DONE"},
		{TagClientIdent, "CLIENT_IDENT"}, {TagSessionReconnectOK, "SESSION_RECONNECT_OK"},
		{TagWait, "WAIT"}, {TagMessage, "MESSAGE"}, {TagAck, "ACK"},
		{TagCompressionDone, "COMPRESSION_DONE"}, {0, "TAG(0)"}, {23, "TAG(23)"},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, tc.tag.String())
	}
	// Numbering follows Ceph's enum (HELLO = 1, then consecutive).
	require.Equal(t, Tag(17), TagMessage)
	require.Equal(t, Tag(20), TagAck)
}

func TestAppendFrameNoAllocs(t *testing.T) {
	dst := make([]byte, 0, 4096)
	h := MsgHeader2{Seq: 1}
	front, data := filled(100, 1), filled(1000, 2)
	ack := &Ack{Seq: 3}
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendMessageFrame(dst, &h, front, nil, data)
		b = AppendControlFrame(b, ack)
		_ = AppendFrame(b, TagAck, front)
	})
	require.Zero(t, allocs)
}

func TestAppendMessageFramePartsMatchesAppendMessageFrame(t *testing.T) {
	tests := []struct {
		name                string
		front, middle, data []byte
	}{
		{"header only", nil, nil, nil},
		{"front", filled(5, 1), nil, nil},
		{"front and middle", filled(5, 1), filled(9, 2), nil},
		{"data only", nil, nil, filled(64<<10, 3)},
		{"all parts", filled(100, 4), filled(7, 5), filled(4097, 6)},
		{"one data byte", nil, filled(3, 7), filled(1, 8)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := MsgHeader2{Seq: 9, Tid: 4, Type: 42, AckSeq: 3}
			want := AppendMessageFrame([]byte("prefix"), &h, tc.front, tc.middle, tc.data)
			head, tail := AppendMessageFrameParts([]byte("prefix"), []byte("t:"), &h, tc.front, tc.middle, tc.data)
			require.Equal(t, "t:", string(tail[:2]), "appended to tailDst")
			var got []byte
			got = append(got, head...)
			if len(tc.data) > 0 {
				got = append(got, tc.data...)
				require.Len(t, tail, 2+EpilogueLen)
			} else {
				require.Len(t, tail, 2, "no data: the whole frame is in head")
			}
			got = append(got, tail[2:]...)
			require.Equal(t, want, got)
			p, segs, n, err := ParseFrame(got[len("prefix"):], 0)
			require.NoError(t, err)
			require.Equal(t, len(got)-len("prefix"), n)
			require.Equal(t, TagMessage, p.Tag)
			require.Equal(t, len(tc.data), len(segs[3]))
		})
	}
}

func TestAppendMessageFramePartsNoAllocs(t *testing.T) {
	dst := make([]byte, 0, 4096)
	var tailBuf [EpilogueLen]byte
	h := MsgHeader2{Seq: 1}
	front, data := filled(100, 1), filled(64<<10, 2)
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = AppendMessageFrameParts(dst, tailBuf[:0], &h, front, nil, data)
	})
	require.Zero(t, allocs)
}

func FuzzAppendMessageFrameParts(f *testing.F) {
	f.Add([]byte("front"), []byte(""), []byte("data"), uint64(1))
	f.Add([]byte(""), []byte("m"), []byte(""), uint64(7))
	f.Fuzz(func(t *testing.T, front, middle, data []byte, seq uint64) {
		h := MsgHeader2{Seq: seq}
		want := AppendMessageFrame(nil, &h, front, middle, data)
		head, tail := AppendMessageFrameParts(nil, nil, &h, front, middle, data)
		got := append(append(append([]byte(nil), head...), data...), tail...)
		if len(data) == 0 {
			got = append(append([]byte(nil), head...), tail...)
		}
		if string(got) != string(want) {
			t.Fatalf("parts differ from AppendMessageFrame")
		}
	})
}

func TestAppendPreambleClaims(t *testing.T) {
	b := AppendPreamble([]byte("x"), TagMessage, 41, 0, 0, 1<<31)
	require.Len(t, b, 1+PreambleLen)
	p, err := ParsePreamble(b[1:], 0)
	require.NoError(t, err)
	require.Equal(t, TagMessage, p.Tag)
	require.Equal(t, 4, p.NumSegments)
	require.Equal(t, uint32(1<<31), p.Segments[3].Length)
	_, err = ParsePreamble(b[1:], 1<<30)
	require.ErrorContains(t, err, "segment 3 length 2147483648 exceeds limit 1073741824")
}
