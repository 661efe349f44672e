package cephx

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is matched (errors.Is) by every decoding failure.
var ErrMalformed = errors.New("cephx: malformed")

// decoder reads Ceph little-endian encodings; the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = fmt.Errorf("%w: %s needs %d bytes, %d left", ErrMalformed, what, n, len(d.b))
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) u8(what string) uint8 {
	if b := d.take(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16(what string) uint16 {
	if b := d.take(2, what); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32(what string) uint32 {
	if b := d.take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if b := d.take(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// blob reads a bufferlist: le32 length, then that many bytes (aliased).
func (d *decoder) blob(what string) []byte {
	n := d.u32(what + " length")
	if d.err != nil {
		return nil
	}
	return d.take(int(n), what)
}

// version reads a struct_v byte and fails unless it is in [min, max].
func (d *decoder) version(what string, min, max uint8) uint8 {
	v := d.u8(what + " struct_v")
	if d.err == nil && (v < min || v > max) {
		d.err = fmt.Errorf("%w: %s struct_v %d, want %d..%d", ErrMalformed, what, v, min, max)
	}
	return v
}

func appendBlob(dst, b []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}
