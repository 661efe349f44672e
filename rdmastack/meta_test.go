package rdmastack

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

func gidOf(b ...byte) verbs.GID {
	var g verbs.GID
	copy(g[:], b)
	return g
}

func TestMetaGolden(t *testing.T) {
	v4 := gidOf(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 77, 0, 1)
	tests := []struct {
		name string
		m    Meta
		want string
	}{
		{"client syn", Meta{QPN: 0x11, PSN: 0xabcdef, GID: v4},
			"0000:00000011:00abcdef:00000000:00000000000000000000ffff0a4d0001\x00"},
		{"server reply", Meta{LID: 0x1f, QPN: 0x12, PSN: 0x1, PeerQPN: 0x11, GID: v4},
			"001f:00000012:00000001:00000011:00000000000000000000ffff0a4d0001\x00"},
		{"ib gid", Meta{LID: 0xffff, QPN: 0xffffff, PSN: 0xffffff, PeerQPN: 0xffffff,
			GID: gidOf(0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55)},
			"ffff:00ffffff:00ffffff:00ffffff:fe800000000000000211" + "22fffe334455\x00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.m.Marshal()
			require.Len(t, tc.want, MetaLen)
			require.Equal(t, tc.want, string(b[:]))
			got, err := ParseMeta(b[:])
			require.NoError(t, err)
			require.Equal(t, tc.m, got)
		})
	}
}

func TestParseMetaErrors(t *testing.T) {
	good := Meta{QPN: 0x11, PSN: 0x22}.Marshal()
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good[:]...)
		f(b)
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "0 bytes"},
		{"short", good[:30], "30 bytes"},
		{"long", append(append([]byte(nil), good[:]...), 'x'), "66 bytes"},
		{"no nul", mut(func(b []byte) { b[64] = '0' }), "NUL"},
		{"colon", mut(func(b []byte) { b[13] = '-' }), "byte 13"},
		{"lid not hex", mut(func(b []byte) { b[0] = 'g' }), "lid"},
		{"qpn sign", mut(func(b []byte) { b[5] = '+' }), "qpn"},
		{"gid not hex", mut(func(b []byte) { b[40] = 'z' }), "gid"},
		{"qpn zero", Meta{}.Marshal2(), "qpn"},
		{"garbage", bytes.Repeat([]byte("this is not ceph "), 4)[:MetaLen], "NUL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMeta(tc.in)
			require.ErrorIs(t, err, ErrBadMeta)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// Marshal2 is Marshal as a slice (test helper).
func (m Meta) Marshal2() []byte { b := m.Marshal(); return b[:] }

func FuzzParseMeta(f *testing.F) {
	f.Add([]byte("0000:00000011:00abcdef:00000000:00000000000000000000ffff0a4d0001\x00"))
	f.Add([]byte("garbage"))
	f.Add(make([]byte, MetaLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMeta(b)
		if err != nil {
			require.ErrorIs(t, err, ErrBadMeta)
			return
		}
		// What parses re-encodes to a meta that parses to the same value.
		again, err := ParseMeta(m.Marshal2())
		require.NoError(t, err)
		require.Equal(t, m, again)
		require.Equal(t, bytes.ToLower(b), m.Marshal2())
	})
}
