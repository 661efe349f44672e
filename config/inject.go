package config

import (
	"math"
	"strings"
	"time"
)

// Inject holds Ceph's fault-injection options, with Ceph's names, meaning
// and defaults (all off). They exist to test the messenger the way Ceph's
// teuthology runs test its own: sessions that fail and must recover.
type Inject struct {
	// ms_inject_socket_failures: 1 in N socket reads and writes fails as a
	// broken socket would, faulting the connection (lossless sessions
	// reconnect and resend). 0 is off.
	InjectSocketFailures int
	// ms_inject_delay_type: the peer entity types ("osd client", as Ceph
	// writes it: type names separated by spaces) whose received messages
	// may be held back before dispatch. Empty is none.
	InjectDelayType string
	// ms_inject_delay_max: the longest such a hold lasts (seconds, float).
	InjectDelayMax time.Duration
	// ms_inject_delay_probability: the chance, 0..1, that a received
	// message from a listed peer type is held back (for up to
	// ms_inject_delay_max; the messages behind it wait too, order is kept).
	InjectDelayProbability float64
	// ms_inject_internal_delays: with ms_inject_socket_failures set, 1 in
	// that many times a session is taken over by a reconnecting peer the
	// messenger sleeps this long first (seconds, float), widening the
	// connection races Ceph's tests want to hit. 0 is off.
	InjectInternalDelays time.Duration
}

var injectOptions = []option{
	{"ms_inject_socket_failures", kindInt, func(c *Config) any { return &c.InjectSocketFailures }},
	{"ms_inject_delay_type", kindString, func(c *Config) any { return &c.InjectDelayType }},
	{"ms_inject_delay_max", kindDuration, func(c *Config) any { return &c.InjectDelayMax }},
	{"ms_inject_delay_probability", kindFloat, func(c *Config) any { return &c.InjectDelayProbability }},
	{"ms_inject_internal_delays", kindDuration, func(c *Config) any { return &c.InjectInternalDelays }},
}

// injectEntityTypes are the names ms_inject_delay_type may list (Ceph's
// ceph_entity_type_name).
var injectEntityTypes = map[string]bool{"mon": true, "mds": true, "osd": true, "client": true, "mgr": true, "auth": true}

// InjectDelayTypes returns the entity type names ms_inject_delay_type
// lists (separated by spaces or commas).
func (in *Inject) InjectDelayTypes() []string {
	return strings.FieldsFunc(in.InjectDelayType, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
}

func (c *Config) validateInject(bad func(name, format string, args ...any)) {
	if c.InjectSocketFailures < 0 {
		bad("ms_inject_socket_failures", "%d is negative", c.InjectSocketFailures)
	}
	for _, t := range c.InjectDelayTypes() {
		if !injectEntityTypes[t] {
			bad("ms_inject_delay_type", "%q is not an entity type (mon, mds, osd, client, mgr, auth)", t)
		}
	}
	if c.InjectDelayMax < 0 {
		bad("ms_inject_delay_max", "%v is negative", c.InjectDelayMax)
	}
	if p := c.InjectDelayProbability; math.IsNaN(p) || p < 0 || p > 1 {
		bad("ms_inject_delay_probability", "%v out of range 0..1", p)
	}
	if c.InjectInternalDelays < 0 {
		bad("ms_inject_internal_delays", "%v is negative", c.InjectInternalDelays)
	}
}
