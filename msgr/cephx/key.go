package cephx

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// CryptoKeyAES is CEPH_CRYPTO_AES, the only key type cephx uses.
const CryptoKeyAES = 1

// KeyLen is the length of an AES-128 secret.
const KeyLen = 16

// Key is Ceph's CryptoKey: a type, a creation time and the secret. Its
// encoding (what a keyring's base64 holds) is le16 type, utime_t created
// (le32 sec, le32 nsec), le16 length, the secret.
type Key struct {
	Type uint16
	// CreatedSec and CreatedNsec are utime_t as encoded (kept raw so a key
	// re-encodes byte for byte); Created reads them as a time.
	CreatedSec, CreatedNsec uint32
	Secret                  []byte
}

// Created is when the key was made.
func (k Key) Created() time.Time {
	return time.Unix(int64(k.CreatedSec), int64(k.CreatedNsec)).UTC()
}

// DecodeKey decodes a CryptoKey from exactly its encoding and checks that
// it is an AES-128 key.
func DecodeKey(b []byte) (Key, error) {
	d := newDecoder(b)
	k, err := decodeKey(&d)
	if err == nil && d.Remaining() != 0 {
		err = fmt.Errorf("%w: %d trailing bytes after the key", ErrMalformed, d.Remaining())
	}
	return k, err
}

func decodeKey(d *decoder) (Key, error) {
	var k Key
	k.Type = d.U16("key type")
	k.CreatedSec = d.U32("key created sec")
	k.CreatedNsec = d.U32("key created nsec")
	n := d.U16("key length")
	secret := d.Take(int(n), "key secret")
	if d.Err != nil {
		return Key{}, d.Err
	}
	if k.Type != CryptoKeyAES {
		return Key{}, fmt.Errorf("%w: key type %d, want %d (AES)", ErrMalformed, k.Type, CryptoKeyAES)
	}
	if len(secret) != KeyLen {
		return Key{}, fmt.Errorf("%w: AES key of %d bytes, want %d", ErrMalformed, len(secret), KeyLen)
	}
	k.Secret = append([]byte(nil), secret...)
	return k, nil
}

// ParseKey decodes a key as ceph-authtool prints it (base64 of the CryptoKey
// encoding, e.g. "AQBq...==").
func ParseKey(s string) (Key, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return Key{}, fmt.Errorf("cephx: key is not base64: %w", err)
	}
	return DecodeKey(b)
}

// Marshal appends the key's CryptoKey encoding.
func (k Key) Marshal(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, k.Type)
	dst = binary.LittleEndian.AppendUint32(dst, k.CreatedSec)
	dst = binary.LittleEndian.AppendUint32(dst, k.CreatedNsec)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(k.Secret)))
	return append(dst, k.Secret...)
}

// String is the key as a keyring holds it (base64).
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k.Marshal(nil)) }
