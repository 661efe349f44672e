package cephx

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// aesIV is the fixed CBC IV of Ceph's AES keys (CEPH_AES_IV). A fixed IV is
// Ceph's choice, not ours; every cephx plaintext starts with a fresh
// challenge or nonce, which is what keeps equal messages apart.
var aesIV = []byte("cephsageyudagreg")

// encMagic is AUTH_ENC_MAGIC, the check word of cephx's envelope.
const encMagic = 0xff009cad8826aa55

// envelopeHeaderLen is the envelope's struct_v byte and magic.
const envelopeHeaderLen = 1 + 8

// ErrBadKey is matched when a ciphertext does not open with the key: wrong
// key, tampered bytes, or not cephx's envelope at all.
var ErrBadKey = errors.New("cephx: decryption failed (wrong key or tampered data)")

// Encrypt is Ceph's AES-128-CBC with PKCS#7 padding and the fixed IV.
func Encrypt(secret, plain []byte) ([]byte, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, fmt.Errorf("cephx: %w", err)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	buf := make([]byte, len(plain)+pad)
	copy(buf, plain)
	for i := len(plain); i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, aesIV).CryptBlocks(buf, buf)
	return buf, nil
}

// Decrypt undoes Encrypt. Bad padding is ErrBadKey.
func Decrypt(secret, ct []byte) ([]byte, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, fmt.Errorf("cephx: %w", err)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes is not whole AES blocks", ErrBadKey, len(ct))
	}
	buf := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, aesIV).CryptBlocks(buf, ct)
	pad := int(buf[len(buf)-1])
	if pad == 0 || pad > aes.BlockSize || pad > len(buf) {
		return nil, fmt.Errorf("%w: bad padding", ErrBadKey)
	}
	for _, p := range buf[len(buf)-pad:] {
		if int(p) != pad {
			return nil, fmt.Errorf("%w: bad padding", ErrBadKey)
		}
	}
	return buf[:len(buf)-pad], nil
}

// Seal encrypts payload in cephx's envelope (encode_encrypt_enc_bl): the
// plaintext is struct_v 1, AUTH_ENC_MAGIC, then payload.
func Seal(secret, payload []byte) ([]byte, error) {
	plain := make([]byte, 0, envelopeHeaderLen+len(payload))
	plain = append(plain, 1)
	plain = binary.LittleEndian.AppendUint64(plain, encMagic)
	plain = append(plain, payload...)
	return Encrypt(secret, plain)
}

// AppendSealed appends Seal's ciphertext as a bufferlist (le32 length, then
// the bytes): what Ceph's encode_encrypt writes.
func AppendSealed(dst, secret, payload []byte) ([]byte, error) {
	ct, err := Seal(secret, payload)
	if err != nil {
		return dst, err
	}
	return appendBlob(dst, ct), nil
}

// Open decrypts an envelope and returns its payload, checking struct_v and
// the magic (a wrong key almost always fails the padding or the magic).
func Open(secret, ct []byte) ([]byte, error) {
	plain, err := Decrypt(secret, ct)
	if err != nil {
		return nil, err
	}
	if len(plain) < envelopeHeaderLen || plain[0] != 1 || binary.LittleEndian.Uint64(plain[1:]) != encMagic {
		return nil, fmt.Errorf("%w: no cephx envelope magic", ErrBadKey)
	}
	return plain[envelopeHeaderLen:], nil
}

// openBlob reads a bufferlist from d and opens it.
func openBlob(d *decoder, secret []byte, what string) ([]byte, error) {
	ct := d.BlobRef(what)
	if d.Err != nil {
		return nil, d.Err
	}
	p, err := Open(secret, ct)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return p, nil
}

// Sign is HMAC-SHA256 keyed by the session key's secret: msgr2's
// AUTH_SIGNATURE over the bytes a peer received before it.
func Sign(secret, data []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, secret)
	m.Write(data)
	var s [sha256.Size]byte
	copy(s[:], m.Sum(nil))
	return s
}

// VerifySignature reports whether sig is Sign(secret, data), in constant
// time.
func VerifySignature(secret, data, sig []byte) bool {
	want := Sign(secret, data)
	return hmac.Equal(want[:], sig)
}
