package verbs

import (
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sysfsRoot is where the sysfs fallback of Context.GIDs reads.
var sysfsRoot = "/sys/class/infiniband"

// pickGID chooses a GID entry: the entry with the given index when
// index >= 0; otherwise the first RoCE v2 IPv4-mapped GID, else the first
// RoCE v2 GID, else the entry with index 0.
func pickGID(gids []GIDEntry, index int) (GIDEntry, bool) {
	if index >= 0 {
		for _, g := range gids {
			if g.Index == index {
				return g, true
			}
		}
		return GIDEntry{}, false
	}
	for _, g := range gids {
		if _, ok := g.GID.IPv4(); ok && g.Type == GIDTypeRoCEv2 {
			return g, true
		}
	}
	for _, g := range gids {
		if g.Type == GIDTypeRoCEv2 {
			return g, true
		}
	}
	return pickGID(gids, 0)
}

// parseGID parses sysfs's "fe80:0000:0000:0000:...:" form.
func parseGID(s string) (GID, bool) {
	var g GID
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if err != nil || len(b) != 16 {
		return g, false
	}
	copy(g[:], b)
	return g, true
}

// parseGIDType parses gid_attrs/types/N ("IB/RoCE v1", "RoCE v2").
func parseGIDType(s string, ethernet bool) GIDType {
	s = strings.TrimSpace(s)
	switch {
	case strings.EqualFold(s, "RoCE v2"):
		return GIDTypeRoCEv2
	case ethernet:
		return GIDTypeRoCEv1
	}
	return GIDTypeIB
}

// gidsFromSysfs reads port's GID table of device dev from sysfs, skipping
// zero (unused) entries.
func gidsFromSysfs(root, dev string, port, n int) ([]GIDEntry, error) {
	base := filepath.Join(root, dev, "ports", strconv.Itoa(port))
	ll, _ := os.ReadFile(filepath.Join(base, "link_layer"))
	ethernet := strings.TrimSpace(string(ll)) == "Ethernet"
	var out []GIDEntry
	for i := 0; i < n; i++ {
		raw, err := os.ReadFile(filepath.Join(base, "gids", strconv.Itoa(i)))
		if err != nil {
			if i == 0 {
				return nil, opErr("read "+filepath.Join(base, "gids"), err)
			}
			break
		}
		g, ok := parseGID(string(raw))
		if !ok || g.IsZero() {
			continue
		}
		e := GIDEntry{Index: i, Port: port, GID: g}
		t, err := os.ReadFile(filepath.Join(base, "gid_attrs", "types", strconv.Itoa(i)))
		if err != nil {
			continue // attributes unreadable: the entry is not valid
		}
		e.Type = parseGIDType(string(t), ethernet)
		if nd, err := os.ReadFile(filepath.Join(base, "gid_attrs", "ndevs", strconv.Itoa(i))); err == nil {
			e.Netdev = strings.TrimSpace(string(nd))
			if ifc, err := net.InterfaceByName(e.Netdev); err == nil {
				e.NetdevIndex = ifc.Index
			}
		}
		out = append(out, e)
	}
	return out, nil
}
