package msgr2

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Secure mode (msgr2.1, CEPH_CON_MODE_SECURE) layout constants.
const (
	// SecureKeyLen, SecureNonceLen and SecureTagLen are AES-128-GCM's.
	SecureKeyLen   = 16
	SecureNonceLen = 12 // le32 fixed, le64 counter (the rev1 nonce)
	SecureTagLen   = 16
	// ConnectionSecretLen is how much connection secret secure mode needs:
	// the key, then the client's rx and tx nonces.
	ConnectionSecretLen = SecureKeyLen + 2*SecureNonceLen
	// PreambleInlineLen is FRAME_PREAMBLE_INLINE_SIZE: the first bytes of the
	// first segment ride in the preamble's record.
	PreambleInlineLen = 48
	// SecurePreambleLen is the on-wire size of the preamble record.
	SecurePreambleLen = PreambleLen + PreambleInlineLen + SecureTagLen
	secureBlock       = 16 // segments and the epilogue are padded to it
	// secureEpilogueLen is epilogue_secure_rev1_block_t: late_status and
	// padding to one block.
	secureEpilogueLen = secureBlock
)

// ErrSecureAuth is matched by every record that fails AES-GCM
// authentication: tampered, truncated, replayed or reordered bytes, or the
// wrong key. Nothing of such a record may be used.
var ErrSecureAuth = errors.New("msgr2: secure record failed authentication (tampered, truncated, replayed or reordered)")

// ErrNonceExhausted is returned when a direction has used every nonce of its
// key: msgr2.1 never reuses one, so the connection must be re-established.
var ErrNonceExhausted = errors.New("msgr2: secure mode out of nonces")

// nonce is one direction's rev1 nonce: the fixed part from the connection
// secret and a counter that advances once per record. cur is the nonce of
// the record being sealed or opened: it lives here, not on the stack, so
// that handing it to the AEAD (an interface call) allocates nothing.
type nonce struct {
	b     [SecureNonceLen]byte
	cur   [SecureNonceLen]byte
	start uint64 // the counter's first value: reaching it again is reuse
	used  bool
}

func (n *nonce) next() ([]byte, error) {
	c := binary.LittleEndian.Uint64(n.b[4:])
	if n.used && c == n.start {
		return nil, ErrNonceExhausted
	}
	n.used = true
	n.cur = n.b
	binary.LittleEndian.PutUint64(n.b[4:], c+1)
	return n.cur[:], nil
}

// Secure seals and opens msgr2.1 secure-mode frames for one connection. The
// writer side (Seal*) and the reader side (Open*) keep separate nonces and
// may be used from different goroutines, but each side by one at a time.
type Secure struct {
	aead   cipher.AEAD
	tx, rx nonce
}

// NewSecure makes the session of one end from the connection secret the
// cephx exchange produced: key, then the client's rx nonce, then its tx
// nonce; the server uses them crossed.
func NewSecure(connectionSecret []byte, server bool) (*Secure, error) {
	if len(connectionSecret) < ConnectionSecretLen {
		return nil, fmt.Errorf("msgr2: secure mode needs a %d-byte connection secret, have %d", ConnectionSecretLen, len(connectionSecret))
	}
	block, err := aes.NewCipher(connectionSecret[:SecureKeyLen])
	if err != nil {
		return nil, fmt.Errorf("msgr2: secure mode key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("msgr2: secure mode: %w", err)
	}
	s := &Secure{aead: aead}
	a := connectionSecret[SecureKeyLen : SecureKeyLen+SecureNonceLen]
	b := connectionSecret[SecureKeyLen+SecureNonceLen : ConnectionSecretLen]
	if server {
		a, b = b, a
	}
	copy(s.rx.b[:], a)
	copy(s.tx.b[:], b)
	s.rx.start = binary.LittleEndian.Uint64(s.rx.b[4:])
	s.tx.start = binary.LittleEndian.Uint64(s.tx.b[4:])
	return s, nil
}

func padded(n int) int { return (n + secureBlock - 1) / secureBlock * secureBlock }

// sealTail encrypts dst[start:] in place (the plaintext was appended there)
// and appends its tag: no copy of the plaintext and no scratch buffer.
func (s *Secure) sealTail(dst []byte, start int) ([]byte, error) {
	nc, err := s.tx.next()
	if err != nil {
		return dst[:start], err
	}
	return s.aead.Seal(dst[:start], nc, dst[start:], nil), nil
}

// appendPadded appends b and zeros up to the next block boundary.
func appendPadded(dst, b []byte) []byte {
	dst = append(dst, b...)
	var zero [secureBlock]byte
	return append(dst, zero[:padded(len(b))-len(b)]...)
}

// secureFrameLen is the on-wire size of a secure frame of n segments of
// lens bytes (SecurePreambleLen plus what SecureRestLen counts).
func secureFrameLen(n int, lens *[MaxSegments]int) int {
	size := SecurePreambleLen
	if lens[0] > PreambleInlineLen {
		size += padded(lens[0]-PreambleInlineLen) + SecureTagLen
	}
	if n > 1 {
		for i := 1; i < n; i++ {
			size += padded(lens[i])
		}
		size += secureEpilogueLen + SecureTagLen
	}
	return size
}

// AppendSecureFrame appends a secure-mode frame carrying 1..4 segments:
// the preamble record (preamble and the first 48 bytes of segment 0), a
// record with the rest of segment 0 if it is longer, and a record with
// segments 2..n and the epilogue if there are several segments. Trailing
// empty segments are dropped, as in crc mode. Every record is sealed in
// place in dst, which grows once: the segments are copied once, into dst,
// and nothing else is allocated.
func (s *Secure) AppendSecureFrame(dst []byte, tag Tag, segs ...[]byte) ([]byte, error) {
	if len(segs) == 0 || len(segs) > MaxSegments {
		panic("msgr2: AppendSecureFrame needs 1 to 4 segments")
	}
	var four [MaxSegments][]byte
	copy(four[:], segs)
	return s.appendSecure(dst, tag, &four)
}

// AppendSecureMessageFrame is AppendSecureFrame for a MESSAGE frame (segment
// 0 the header, then front, middle and data), without an intermediate
// buffer for the header.
func (s *Secure) AppendSecureMessageFrame(dst []byte, h *MsgHeader2, front, middle, data []byte) ([]byte, error) {
	var hb [MsgHeader2Len]byte
	h.put(&hb)
	return s.appendSecure(dst, TagMessage, &[MaxSegments][]byte{hb[:], front, middle, data})
}

func (s *Secure) appendSecure(dst []byte, tag Tag, segs *[MaxSegments][]byte) ([]byte, error) {
	var lens [MaxSegments]int
	for i, sg := range segs {
		lens[i] = len(sg)
	}
	n := segmentCount(&lens)
	dst = slices.Grow(dst, secureFrameLen(n, &lens))
	// The preamble record: the same preamble as crc mode's (its crc
	// included), then the inline bytes of segment 0, zero-padded.
	start := len(dst)
	dst = appendPreambleHeader(dst, tag)
	fillPreamble(dst[start:], tag, n, &lens)
	seg0 := segs[0]
	inline := seg0[:min(len(seg0), PreambleInlineLen)]
	var zero [PreambleInlineLen]byte
	dst = append(dst, inline...)
	dst = append(dst, zero[:PreambleInlineLen-len(inline)]...)
	dst, err := s.sealTail(dst, start)
	if err != nil {
		return dst, err
	}
	if len(seg0) > PreambleInlineLen {
		start = len(dst)
		dst = appendPadded(dst, seg0[PreambleInlineLen:])
		if dst, err = s.sealTail(dst, start); err != nil {
			return dst, err
		}
	}
	if n == 1 {
		return dst, nil
	}
	start = len(dst)
	for i := 1; i < n; i++ {
		dst = appendPadded(dst, segs[i])
	}
	var epi [secureEpilogueLen]byte
	epi[0] = lateStatusComplete
	dst = append(dst, epi[:]...)
	return s.sealTail(dst, start)
}

// AppendSecureControlFrame is AppendSecureFrame for a control payload.
func (s *Secure) AppendSecureControlFrame(dst []byte, m Payload) ([]byte, error) {
	return s.AppendSecureFrame(dst, m.Tag(), m.Marshal(nil))
}

// open authenticates and decrypts one record.
func (s *Secure) open(rec []byte, what string) ([]byte, error) {
	nc, err := s.rx.next()
	if err != nil {
		return nil, err
	}
	p, err := s.aead.Open(rec[:0], nc, rec, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrSecureAuth, what)
	}
	return p, nil
}

// OpenPreamble authenticates and decodes the first SecurePreambleLen bytes
// of a frame. It returns the preamble (checked as ParsePreamble checks it)
// and the inline bytes of segment 0 (aliasing b, which is decrypted in
// place; capacity clipped, so appending to them never writes into b).
func (s *Secure) OpenPreamble(b []byte, maxSegment int) (Preamble, []byte, error) {
	if len(b) != SecurePreambleLen {
		return Preamble{}, nil, protoErr("secure preamble is %d bytes, want %d", len(b), SecurePreambleLen)
	}
	plain, err := s.open(b, "preamble")
	if err != nil {
		return Preamble{}, nil, err
	}
	p, err := ParsePreamble(plain[:PreambleLen], maxSegment)
	if err != nil {
		return p, nil, err
	}
	inline := int(p.Segments[0].Length)
	if inline > PreambleInlineLen {
		inline = PreambleInlineLen
	}
	return p, plain[PreambleLen : PreambleLen+inline : PreambleLen+inline], nil
}

// SecureRestLen is how many bytes follow the preamble record in secure mode.
func (p *Preamble) SecureRestLen() int {
	n := 0
	if l := int(p.Segments[0].Length); l > PreambleInlineLen {
		n += padded(l-PreambleInlineLen) + SecureTagLen
	}
	if p.NumSegments > 1 {
		for i := 1; i < p.NumSegments; i++ {
			n += padded(int(p.Segments[i].Length))
		}
		n += secureEpilogueLen + SecureTagLen
	}
	return n
}

// OpenRest authenticates and decrypts the records after the preamble
// (exactly p.SecureRestLen() bytes, decrypted in place) and returns the
// segments. The others alias rest (decrypted in place, so a buffer the
// frame was read into alone can become a message's storage as it is).
// Segment 0 is inline when it fits in the preamble record; a longer one is
// inline with the remainder appended (in inline's spare capacity if it has
// enough, else in a new slice). A frame the sender aborted returns
// ErrFrameAborted.
func (s *Secure) OpenRest(p *Preamble, inline, rest []byte) (segs [MaxSegments][]byte, err error) {
	if want := p.SecureRestLen(); len(rest) != want {
		return segs, protoErr("secure frame has %d bytes after the preamble, want %d", len(rest), want)
	}
	l0 := int(p.Segments[0].Length)
	segs[0] = inline
	off := 0
	if l0 > PreambleInlineLen {
		recLen := padded(l0-PreambleInlineLen) + SecureTagLen
		plain, err := s.open(rest[:recLen], "segment 0")
		if err != nil {
			return segs, err
		}
		segs[0] = append(inline, plain[:l0-PreambleInlineLen]...)
		off = recLen
	}
	if p.NumSegments == 1 {
		return segs, nil
	}
	plain, err := s.open(rest[off:], "segments")
	if err != nil {
		return segs, err
	}
	o := 0
	for i := 1; i < p.NumSegments; i++ {
		l := int(p.Segments[i].Length)
		segs[i] = plain[o : o+l : o+l]
		o += padded(l)
	}
	switch plain[o] & lateStatusAbortedMask {
	case lateStatusComplete:
		return segs, nil
	case lateStatusAborted:
		return segs, ErrFrameAborted
	default:
		return segs, protoErr("bad late_status 0x%02x", plain[o])
	}
}
