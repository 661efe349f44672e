package msgr2

import (
	"encoding/binary"

	"github.com/asyncmsgr/asyncmsgr/msgr/internal/denc"
)

// decoder is the shared decoder (msgr/internal/denc) with msgr2's errors
// and its two helpers that copy.
type decoder struct{ denc.Decoder }

func newDecoder(b []byte) decoder {
	return decoder{denc.Decoder{B: b, Short: func(what string, need, left int) error {
		return protoErr("short frame: %s needs %d bytes, %d left", what, need, left)
	}}}
}

// decodeWith runs fields over a decoder on b (a payload or an encoding of
// its own) and returns the decoder's first error: the frame of every
// Unmarshal of this package.
func decodeWith(b []byte, fields func(d *decoder)) error {
	d := newDecoder(b)
	fields(&d)
	return d.Err
}

// blob decodes a bufferlist: le32 length and that many bytes. The result is
// a copy, so it stays valid after the frame buffer is reused; nil when empty.
func (d *decoder) blob(what string) []byte {
	n := d.U32(what + " length")
	if d.Err != nil {
		return nil
	}
	if uint64(n) > uint64(d.Remaining()) {
		d.Fail(protoErr("short frame: %s length %d exceeds the %d bytes left", what, n, d.Remaining()))
		return nil
	}
	b := d.Take(int(n), what)
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// u32s decodes a vector<uint32_t>: le32 count and count le32 values.
func (d *decoder) u32s(what string) []uint32 {
	n := d.U32(what + " count")
	if d.Err != nil {
		return nil
	}
	if uint64(n)*4 > uint64(d.Remaining()) {
		d.Fail(protoErr("short frame: %s count %d needs %d bytes, %d left", what, n, uint64(n)*4, d.Remaining()))
		return nil
	}
	if n == 0 {
		return nil
	}
	v := make([]uint32, n)
	for i := range v {
		v[i] = d.U32(what)
	}
	return v
}

func appendBlob(dst, b []byte) []byte { return denc.AppendBlob(dst, b) }

func appendU32s(dst []byte, v []uint32) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v)))
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, x)
	}
	return dst
}
