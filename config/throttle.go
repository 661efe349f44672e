package config

// Throttles holds the messenger's receive-side throttle options (Ceph's
// names and defaults). The per-peer-type policy throttlers are not options:
// code sets them on a Policy, as Ceph's daemons do.
type Throttles struct {
	// ms_dispatch_throttle_bytes: the bytes of received messages a
	// messenger holds that its dispatchers have not finished with. A
	// message's body is read off the socket only once it fits, so a slow
	// dispatcher holds the peers back (TCP or RDMA backpressure) instead of
	// queueing without bound. 0 is no limit. Ceph's default, 100 MiB.
	DispatchThrottleBytes int
}

func defaultThrottles() Throttles { return Throttles{DispatchThrottleBytes: 100 << 20} }

var throttleOptions = []option{
	{"ms_dispatch_throttle_bytes", kindSize, func(c *Config) any { return &c.DispatchThrottleBytes }},
}

func (c *Config) validateThrottles(bad func(name, format string, args ...any)) {
	if c.DispatchThrottleBytes < 0 {
		bad("ms_dispatch_throttle_bytes", "%d is negative", c.DispatchThrottleBytes)
	}
}
