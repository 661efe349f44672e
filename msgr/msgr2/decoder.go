package msgr2

import "encoding/binary"

// decoder reads Ceph little-endian encodings from a byte slice. The first
// failure sticks; callers check err once at the end. Nothing it returns is
// sized by an untrusted length without first checking that the bytes are
// present, so malformed input cannot make it allocate more than len(b).
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

// take returns the next n bytes (aliasing the input) or nil after a failure.
func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > d.remaining() {
		d.fail(protoErr("short frame: %s needs %d bytes, %d left", what, n, d.remaining()))
		return nil
	}
	s := d.b[d.off : d.off+n : d.off+n]
	d.off += n
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

// blob decodes a bufferlist: le32 length and that many bytes. The result is
// a copy, so it stays valid after the frame buffer is reused; nil when empty.
func (d *decoder) blob(what string) []byte {
	n := d.u32(what + " length")
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(d.remaining()) {
		d.fail(protoErr("short frame: %s length %d exceeds the %d bytes left", what, n, d.remaining()))
		return nil
	}
	b := d.take(int(n), what)
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// u32s decodes a vector<uint32_t>: le32 count and count le32 values.
func (d *decoder) u32s(what string) []uint32 {
	n := d.u32(what + " count")
	if d.err != nil {
		return nil
	}
	if uint64(n)*4 > uint64(d.remaining()) {
		d.fail(protoErr("short frame: %s count %d needs %d bytes, %d left", what, n, uint64(n)*4, d.remaining()))
		return nil
	}
	if n == 0 {
		return nil
	}
	v := make([]uint32, n)
	for i := range v {
		v[i] = d.u32(what)
	}
	return v
}

func appendBlob(dst, b []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

func appendU32s(dst []byte, v []uint32) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v)))
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, x)
	}
	return dst
}
