package verbs

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func mustGID(t *testing.T, s string) GID {
	t.Helper()
	return GID(netip.MustParseAddr(s).As16())
}

func TestPickGID(t *testing.T) {
	ll := GIDEntry{Index: 0, GID: mustGID(t, "fe80::1"), Type: GIDTypeRoCEv1}
	llv2 := GIDEntry{Index: 1, GID: mustGID(t, "fe80::1"), Type: GIDTypeRoCEv2}
	v4v1 := GIDEntry{Index: 2, GID: mustGID(t, "::ffff:10.77.0.1"), Type: GIDTypeRoCEv1}
	v4v2 := GIDEntry{Index: 3, GID: mustGID(t, "::ffff:10.77.0.1"), Type: GIDTypeRoCEv2}
	for _, tc := range []struct {
		name  string
		gids  []GIDEntry
		index int
		want  int
		ok    bool
	}{
		{"auto prefers v2 ipv4", []GIDEntry{ll, llv2, v4v1, v4v2}, -1, 3, true},
		{"auto falls back to v2", []GIDEntry{ll, llv2, v4v1}, -1, 1, true},
		{"auto falls back to 0", []GIDEntry{ll, v4v1}, -1, 0, true},
		{"explicit", []GIDEntry{ll, llv2, v4v1, v4v2}, 2, 2, true},
		{"explicit missing", []GIDEntry{ll}, 7, 0, false},
		{"empty", nil, -1, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, ok := pickGID(tc.gids, tc.index)
			require.Equal(t, tc.ok, ok)
			if ok {
				require.Equal(t, tc.want, g.Index)
			}
		})
	}
	ip, ok := v4v2.GID.IPv4()
	require.True(t, ok)
	require.Equal(t, "10.77.0.1", ip.String())
	_, ok = ll.GID.IPv4()
	require.False(t, ok)
	require.Equal(t, "fe80::1", ll.GID.String())
}

func TestGIDsFromSysfs(t *testing.T) {
	root := t.TempDir()
	port := filepath.Join(root, "rxe0", "ports", "1")
	write := func(rel, s string) {
		p := filepath.Join(port, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
	}
	write("link_layer", "Ethernet\n")
	write("gids/0", "fe80:0000:0000:0000:0000:00ff:fe00:0001\n")
	write("gid_attrs/types/0", "IB/RoCE v1\n")
	write("gid_attrs/ndevs/0", "lo\n")
	write("gids/1", "fe80:0000:0000:0000:0000:00ff:fe00:0001\n")
	write("gid_attrs/types/1", "RoCE v2\n")
	write("gids/2", "0000:0000:0000:0000:0000:0000:0000:0000\n") // unused
	write("gids/3", "0000:0000:0000:0000:0000:ffff:0a4d:0001\n")
	write("gid_attrs/types/3", "RoCE v2\n")
	write("gids/4", "not a gid\n")

	gids, err := gidsFromSysfs(root, "rxe0", 1, 8)
	require.NoError(t, err)
	require.Len(t, gids, 3)
	require.Equal(t, GIDTypeRoCEv1, gids[0].Type)
	require.Equal(t, "lo", gids[0].Netdev)
	require.Positive(t, gids[0].NetdevIndex)
	require.Equal(t, GIDTypeRoCEv2, gids[1].Type)
	require.Equal(t, 3, gids[2].Index)
	ip, ok := gids[2].GID.IPv4()
	require.True(t, ok)
	require.Equal(t, "10.77.0.1", ip.String())
	g, ok := pickGID(gids, -1)
	require.True(t, ok)
	require.Equal(t, 3, g.Index)

	_, err = gidsFromSysfs(root, "nodev", 1, 8)
	require.Error(t, err)
}

func FuzzParseGID(f *testing.F) {
	f.Add("fe80:0000:0000:0000:0000:00ff:fe00:0001")
	f.Add("0000:0000:0000:0000:0000:ffff:0a4d:0001\n")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		g, ok := parseGID(s)
		if !ok {
			return
		}
		// A parsed GID formats and re-parses to itself.
		a := netip.AddrFrom16(g)
		b := a.As16()
		h := ""
		for i := 0; i < 16; i += 2 {
			if i > 0 {
				h += ":"
			}
			h += string("0123456789abcdef"[b[i]>>4]) + string("0123456789abcdef"[b[i]&15]) +
				string("0123456789abcdef"[b[i+1]>>4]) + string("0123456789abcdef"[b[i+1]&15])
		}
		g2, ok := parseGID(h)
		if !ok || g2 != g {
			t.Fatalf("round trip %q -> %v -> %q", s, g, h)
		}
	})
}
