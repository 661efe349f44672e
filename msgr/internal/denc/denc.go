// Package denc owns the one decoder of Ceph's little-endian encodings that
// the wire codecs (msgr2, cephx) share. The first failure sticks and callers
// check Err once at the end; nothing it returns is sized by an untrusted
// length without first checking that the bytes are there, so malformed input
// cannot make it allocate. It must not know any message: the codecs do.
package denc

import (
	"encoding/binary"
	"fmt"
)

// Decoder reads from B starting at Off. Short builds the error for input
// that ends too soon (each codec words and types its errors itself).
type Decoder struct {
	B     []byte
	Off   int
	Err   error
	Short func(what string, need, left int) error
}

// Fail records err unless an earlier failure is recorded.
func (d *Decoder) Fail(err error) {
	if d.Err == nil {
		d.Err = err
	}
}

// Remaining is how many bytes are left.
func (d *Decoder) Remaining() int { return len(d.B) - d.Off }

// Rest is the bytes left (aliasing the input).
func (d *Decoder) Rest() []byte { return d.B[d.Off:] }

// Take returns the next n bytes (aliasing the input), or nil after a failure.
func (d *Decoder) Take(n int, what string) []byte {
	if d.Err != nil {
		return nil
	}
	if n < 0 || n > d.Remaining() {
		if d.Short != nil {
			d.Fail(d.Short(what, n, d.Remaining()))
		} else {
			d.Fail(fmt.Errorf("denc: %s needs %d bytes, %d left", what, n, d.Remaining()))
		}
		return nil
	}
	s := d.B[d.Off : d.Off+n : d.Off+n]
	d.Off += n
	return s
}

// U8 reads one byte.
func (d *Decoder) U8(what string) uint8 {
	if b := d.Take(1, what); b != nil {
		return b[0]
	}
	return 0
}

// U16 reads a le16.
func (d *Decoder) U16(what string) uint16 {
	if b := d.Take(2, what); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

// U32 reads a le32.
func (d *Decoder) U32(what string) uint32 {
	if b := d.Take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// U64 reads a le64.
func (d *Decoder) U64(what string) uint64 {
	if b := d.Take(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// BlobRef reads a bufferlist (le32 length, then that many bytes) and
// returns its bytes aliasing the input.
func (d *Decoder) BlobRef(what string) []byte {
	n := d.U32(what + " length")
	if d.Err != nil {
		return nil
	}
	return d.Take(int(n), what)
}

// AppendBlob appends b as a bufferlist.
func AppendBlob(dst, b []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}
