package cephx

import (
	"errors"
	"fmt"

	"github.com/asyncmsgr/asyncmsgr/msgr/internal/denc"
)

// ErrMalformed is matched (errors.Is) by every decoding failure.
var ErrMalformed = errors.New("cephx: malformed")

// decoder is the shared decoder (msgr/internal/denc) with cephx's errors.
type decoder struct{ denc.Decoder }

func newDecoder(b []byte) decoder {
	return decoder{denc.Decoder{B: b, Short: func(what string, need, left int) error {
		return fmt.Errorf("%w: %s needs %d bytes, %d left", ErrMalformed, what, need, left)
	}}}
}

// version reads a struct_v byte and fails unless it is in [min, max].
func (d *decoder) version(what string, min, max uint8) uint8 {
	v := d.U8(what + " struct_v")
	if d.Err == nil && (v < min || v > max) {
		d.Err = fmt.Errorf("%w: %s struct_v %d, want %d..%d", ErrMalformed, what, v, min, max)
	}
	return v
}

func appendBlob(dst, b []byte) []byte { return denc.AppendBlob(dst, b) }
