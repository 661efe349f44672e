package cephx

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Entry is one entity of a keyring: its key and its caps (service → the
// caps string, e.g. "mon" → "allow *").
type Entry struct {
	Name string
	Key  Key
	Caps map[string]string
}

// Keyring is a parsed keyring file, by entity name ("client.admin").
type Keyring map[string]Entry

// ErrNoKey is matched when a keyring has no key for the entity asked for.
var ErrNoKey = errors.New("cephx: no key for entity")

// ParseKeyring reads a keyring in the format ceph-authtool writes:
//
//	[client.admin]
//		key = AQB...==
//		caps mon = "allow *"
//
// Comments start with '#' or ';'. Keys and caps outside a section, unknown
// settings, and bad keys are errors naming the line.
func ParseKeyring(r io.Reader) (Keyring, error) {
	kr := Keyring{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var cur *Entry
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' || s[0] == ';' {
			continue
		}
		if s[0] == '[' {
			if !strings.HasSuffix(s, "]") || len(s) < 3 {
				return nil, fmt.Errorf("cephx: keyring line %d: bad section %q", line, s)
			}
			name := strings.TrimSpace(s[1 : len(s)-1])
			e := kr[name]
			e.Name = name
			if e.Caps == nil {
				e.Caps = map[string]string{}
			}
			kr[name] = e
			cur = &e
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("cephx: keyring line %d: %q outside a [section]", line, s)
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("cephx: keyring line %d: want name = value, got %q", line, s)
		}
		k = strings.Join(strings.Fields(k), " ")
		v = unquote(strings.TrimSpace(v))
		switch {
		case k == "key":
			key, err := ParseKey(v)
			if err != nil {
				return nil, fmt.Errorf("cephx: keyring line %d ([%s] key): %w", line, cur.Name, err)
			}
			cur.Key = key
		case strings.HasPrefix(k, "caps "):
			cur.Caps[strings.TrimSpace(k[len("caps "):])] = v
		case k == "auid":
			// obsolete, still written by old ceph-authtool versions
		default:
			return nil, fmt.Errorf("cephx: keyring line %d ([%s]): unknown setting %q", line, cur.Name, k)
		}
		kr[cur.Name] = *cur
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cephx: keyring: %w", err)
	}
	for name, e := range kr {
		if e.Key.Secret == nil {
			return nil, fmt.Errorf("cephx: keyring: [%s] has no key", name)
		}
	}
	return kr, nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}

// Lookup returns the key of entity name ("client.admin"), or ErrNoKey.
func (kr Keyring) Lookup(name string) (Key, error) {
	e, ok := kr[name]
	if !ok {
		return Key{}, fmt.Errorf("%w %s", ErrNoKey, name)
	}
	return e.Key, nil
}

// DefaultKeyringPath is Ceph's default `keyring` option: a comma-separated
// search list with $cluster and $name expanded.
const DefaultKeyringPath = "/etc/ceph/$cluster.$name.keyring,/etc/ceph/$cluster.keyring,/etc/ceph/keyring,/etc/ceph/keyring.bin"

// ExpandKeyringPaths splits a `keyring` option value and expands $cluster
// and $name (the entity, "client.admin") as Ceph does.
func ExpandKeyringPaths(list, cluster, name string) []string {
	if cluster == "" {
		cluster = "ceph"
	}
	var out []string
	for _, p := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
		p = strings.ReplaceAll(p, "$cluster", cluster)
		p = strings.ReplaceAll(p, "$name", name)
		out = append(out, p)
	}
	return out
}

// LoadKey finds entity name's key the way a Ceph client does: an explicit
// key (the `key` option, base64) wins, then a keyfile (`keyfile`: a file
// holding just the base64 key), then the first keyring in the search list
// that exists. The error names every place it looked.
func LoadKey(key, keyfile, keyringList, cluster, name string) (Key, error) {
	if key != "" {
		k, err := ParseKey(key)
		if err != nil {
			return Key{}, fmt.Errorf("cephx: option key: %w", err)
		}
		return k, nil
	}
	if keyfile != "" {
		b, err := os.ReadFile(keyfile)
		if err != nil {
			return Key{}, fmt.Errorf("cephx: keyfile: %w", err)
		}
		k, err := ParseKey(string(b))
		if err != nil {
			return Key{}, fmt.Errorf("cephx: keyfile %s: %w", keyfile, err)
		}
		return k, nil
	}
	paths := ExpandKeyringPaths(keyringList, cluster, name)
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		kr, err := ParseKeyring(f)
		f.Close()
		if err != nil {
			return Key{}, fmt.Errorf("%s: %w", p, err)
		}
		return kr.Lookup(name)
	}
	return Key{}, fmt.Errorf("%w %s: no keyring found (looked in %s)", ErrNoKey, name, strings.Join(paths, ", "))
}
