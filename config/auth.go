package config

import (
	"fmt"
	"strings"
)

// Auth holds the authentication and connection-mode options, with Ceph's
// names. Method lists ("cephx, none") and mode lists ("secure crc") are in
// order of preference.
type Auth struct {
	// auth_cluster_required, auth_service_required, auth_client_required:
	// what a daemon requires of daemons, of clients, and what a client
	// accepts from the services it connects to.
	AuthClusterRequired string
	AuthServiceRequired string
	AuthClientRequired  string
	// keyring (a search list; $cluster and $name expand), key (base64, wins
	// over the keyring), keyfile (a file holding the base64 key).
	Keyring string
	Key     string
	Keyfile string
	// The connection modes (crc, secure) offered or accepted: toward
	// monitors (ms_mon_client_mode), toward other services (ms_client_mode),
	// by a service to its clients (ms_service_mode) and between daemons
	// (ms_cluster_mode), and as a monitor (ms_mon_service_mode,
	// ms_mon_cluster_mode).
	MonClientMode  string
	ClientMode     string
	ServiceMode    string
	ClusterMode    string
	MonServiceMode string
	MonClusterMode string
	// cluster names the cluster for $cluster in keyring paths ("ceph").
	Cluster string
}

// defaultAuth is asyncmsgr's auth defaults. Ceph's keyring search list and
// mode orders are taken as they are. The required methods differ from
// Ceph's (cephx everywhere): a client uses cephx whenever it has a key and
// falls back to none, and a service accepts none unless told to require
// cephx (auth_service_required/auth_cluster_required = cephx), so that a
// messenger without a keyring keeps working.
func defaultAuth() Auth {
	return Auth{
		AuthClusterRequired: "cephx, none",
		AuthServiceRequired: "cephx, none",
		AuthClientRequired:  "cephx, none",
		Keyring:             "/etc/ceph/$cluster.$name.keyring,/etc/ceph/$cluster.keyring,/etc/ceph/keyring,/etc/ceph/keyring.bin",
		MonClientMode:       "secure crc",
		ClientMode:          "crc secure",
		ServiceMode:         "crc secure",
		ClusterMode:         "crc secure",
		MonServiceMode:      "secure crc",
		MonClusterMode:      "secure crc",
		Cluster:             "ceph",
	}
}

var authOptions = []option{
	{"auth_cluster_required", kindString, func(c *Config) any { return &c.AuthClusterRequired }},
	{"auth_service_required", kindString, func(c *Config) any { return &c.AuthServiceRequired }},
	{"auth_client_required", kindString, func(c *Config) any { return &c.AuthClientRequired }},
	{"keyring", kindString, func(c *Config) any { return &c.Keyring }},
	{"key", kindString, func(c *Config) any { return &c.Key }},
	{"keyfile", kindString, func(c *Config) any { return &c.Keyfile }},
	{"ms_mon_client_mode", kindString, func(c *Config) any { return &c.MonClientMode }},
	{"ms_client_mode", kindString, func(c *Config) any { return &c.ClientMode }},
	{"ms_service_mode", kindString, func(c *Config) any { return &c.ServiceMode }},
	{"ms_cluster_mode", kindString, func(c *Config) any { return &c.ClusterMode }},
	{"ms_mon_service_mode", kindString, func(c *Config) any { return &c.MonServiceMode }},
	{"ms_mon_cluster_mode", kindString, func(c *Config) any { return &c.MonClusterMode }},
	{"cluster", kindString, func(c *Config) any { return &c.Cluster }},
}

// Auth methods and connection modes, as Ceph numbers them.
const (
	AuthNone   = 1 // CEPH_AUTH_NONE
	AuthCephX  = 2 // CEPH_AUTH_CEPHX
	ModeCRC    = 1 // CEPH_CON_MODE_CRC
	ModeSecure = 2 // CEPH_CON_MODE_SECURE
)

// Methods parses an auth_*_required list ("cephx, none") into Ceph's
// method numbers, in order.
func Methods(list string) ([]uint32, error) {
	return parseNumberList(list, "auth method", [2]string{"cephx", "none"}, [2]uint32{AuthCephX, AuthNone})
}

// Modes parses an ms_*_mode list ("secure crc") into Ceph's mode numbers.
func Modes(list string) ([]uint32, error) {
	return parseNumberList(list, "connection mode", [2]string{"crc", "secure"}, [2]uint32{ModeCRC, ModeSecure})
}

// parseNumberList parses a list of the two words names (case-insensitive,
// separated by commas, spaces or semicolons) into their numbers, in order;
// what names the kind of word for an empty list.
func parseNumberList(list, what string, names [2]string, nums [2]uint32) ([]uint32, error) {
	var out []uint32
	for _, w := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
		switch strings.ToLower(w) {
		case names[0]:
			out = append(out, nums[0])
		case names[1]:
			out = append(out, nums[1])
		default:
			return nil, fmt.Errorf("%q is not %s or %s", w, names[0], names[1])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q names no %s", list, what)
	}
	return out, nil
}

// validateAuth reports every bad auth or mode list.
func (c *Config) validateAuth(bad func(name, format string, args ...any)) {
	for _, m := range []struct{ name, v string }{
		{"auth_cluster_required", c.AuthClusterRequired},
		{"auth_service_required", c.AuthServiceRequired},
		{"auth_client_required", c.AuthClientRequired},
	} {
		if _, err := Methods(m.v); err != nil {
			bad(m.name, "%v", err)
		}
	}
	for _, m := range []struct{ name, v string }{
		{"ms_mon_client_mode", c.MonClientMode}, {"ms_client_mode", c.ClientMode},
		{"ms_service_mode", c.ServiceMode}, {"ms_cluster_mode", c.ClusterMode},
		{"ms_mon_service_mode", c.MonServiceMode}, {"ms_mon_cluster_mode", c.MonClusterMode},
	} {
		if _, err := Modes(m.v); err != nil {
			bad(m.name, "%v", err)
		}
	}
}
