package msgr2

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBannerGolden(t *testing.T) {
	// "ceph v2\n", le16 16, le64 supported, le64 required (ProtocolV2::
	// _banner_exchange).
	want := []byte("ceph v2\n")
	want = append(want, 0x10, 0x00)
	want = append(want, 0x01, 0, 0, 0, 0, 0, 0, 0)
	want = append(want, 0x02, 0, 0, 0, 0, 0, 0, 0x80)
	got := AppendBanner([]byte{0xaa}, 1, 1<<63|2)
	require.Equal(t, byte(0xaa), got[0])
	require.Equal(t, want, got[1:])
	require.Len(t, got[1:], BannerLen)
}

func TestBannerRoundTrip(t *testing.T) {
	cases := []struct {
		name     string
		sup, req uint64
	}{
		{"zero", 0, 0},
		{"rev1", FeatureRevision1, 0},
		{"rev1 required", FeatureRevision1, FeatureRevision1},
		{"all", ^uint64(0), ^uint64(0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, r, err := ParseBanner(AppendBanner(nil, tc.sup, tc.req))
			require.NoError(t, err)
			require.Equal(t, tc.sup, s)
			require.Equal(t, tc.req, r)
		})
	}
}

func TestParseBannerErrors(t *testing.T) {
	good := AppendBanner(nil, 1, 0)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"short", good[:BannerLen-1], "msgr2: banner length 25, want 26"},
		{"long", append(append([]byte(nil), good...), 0), "msgr2: banner length 27, want 26"},
		{"prefix", mut(func(b []byte) []byte { b[6] = '3'; return b }), `msgr2: bad banner prefix "ceph v3\n"`},
		{"msgr1", mut(func(b []byte) []byte { copy(b, "ceph v027"); return b }), `msgr2: bad banner prefix "ceph v027": peer speaks msgr1`},
		{"payload len", mut(func(b []byte) []byte { b[8] = 17; return b }), "msgr2: banner payload length 17, want 16"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseBanner(tc.in)
			require.EqualError(t, err, tc.want)
			require.True(t, errors.Is(err, ErrProtocol))
			var pe *ProtocolError
			require.ErrorAs(t, err, &pe)
		})
	}
}
