package msgr2

import "testing"

func BenchmarkAppendMessageFrame(b *testing.B) {
	h := MsgHeader2{Seq: 1, Type: 42}
	front := make([]byte, 256)
	data := make([]byte, 64<<10)
	dst := make([]byte, 0, 70<<10)
	b.SetBytes(int64(len(front) + len(data)))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendMessageFrame(dst[:0], &h, front, nil, data)
	}
}

func BenchmarkParseFrame(b *testing.B) {
	h := MsgHeader2{Seq: 1, Type: 42}
	wire := AppendMessageFrame(nil, &h, make([]byte, 256), nil, make([]byte, 64<<10))
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := ParseFrame(wire, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkControlFrameRoundTrip(b *testing.B) {
	dst := make([]byte, 0, 256)
	m := &Ack{Seq: 7}
	var got Ack
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendControlFrame(dst[:0], m)
		_, segs, _, err := ParseFrame(dst, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := got.Unmarshal(segs[0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendMessageFrameParts(b *testing.B) {
	h := MsgHeader2{Seq: 1, Type: 42}
	front := make([]byte, 256)
	data := make([]byte, 64<<10)
	dst := make([]byte, 0, 4<<10)
	var tail [EpilogueLen]byte
	b.SetBytes(int64(len(front) + len(data)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = AppendMessageFrameParts(dst[:0], tail[:0], &h, front, nil, data)
	}
}

// BenchmarkCRC32C64K times both implementations CRC32C chooses between
// (pickCRC32C) and the chosen one.
func BenchmarkCRC32C64K(b *testing.B) {
	buf := make([]byte, 64<<10)
	for _, bc := range []struct {
		name string
		f    func(uint32, []byte) uint32
	}{{"hardware", crcHardware}, {"slicing8", crcSlicing8}, {"chosen-" + CRC32CImpl(), CRC32C}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				bc.f(0xffffffff, buf)
			}
		})
	}
}
