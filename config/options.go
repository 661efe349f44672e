package config

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// kind is how an option's value is written.
type kind int

const (
	kindString kind = iota
	kindBool
	// kindInt is Ceph's TYPE_INT/TYPE_UINT: an integer with an optional SI
	// suffix (K = 1000, M = 10^6, G = 10^9, T, P, E), as strict_si_cast
	// parses it.
	kindInt
	// kindSize is Ceph's TYPE_SIZE: an integer with an optional IEC
	// suffix (K or Ki = 1024, M or Mi, G or Gi, T, P, E; B = 1), as
	// strict_iec_cast parses it.
	kindSize
	// kindDuration is seconds (Ceph writes these options as a number of
	// seconds, integer or float); a Go duration string such as "200ms" is
	// accepted too.
	kindDuration
	// kindFloat is Ceph's TYPE_FLOAT: a decimal number.
	kindFloat
)

// option describes one ms_* option: its canonical name, how its value is
// written and where it lives in Config.
type option struct {
	name string
	kind kind
	ptr  func(c *Config) any // *string, *bool, *int, *time.Duration or *float64
}

// options lists every option Config holds, by canonical Ceph name.
var options = []option{
	{"ms_async_transport_type", kindString, func(c *Config) any { return &c.TransportType }},
	{"ms_async_transport_fallback", kindBool, func(c *Config) any { return &c.TransportFallback }},
	{"ms_async_op_threads", kindInt, func(c *Config) any { return &c.OpThreads }},
	{"ms_async_rdma_device_name", kindString, func(c *Config) any { return &c.RDMADeviceName }},
	{"ms_async_rdma_port_num", kindInt, func(c *Config) any { return &c.RDMAPortNum }},
	{"ms_async_rdma_gid_idx", kindInt, func(c *Config) any { return &c.RDMAGIDIdx }},
	{"ms_async_rdma_buffer_size", kindSize, func(c *Config) any { return &c.RDMABufferSize }},
	{"ms_async_rdma_send_buffers", kindInt, func(c *Config) any { return &c.RDMASendBuffers }},
	{"ms_async_rdma_receive_buffers", kindInt, func(c *Config) any { return &c.RDMAReceiveBuffers }},
	{"ms_async_rdma_receive_queue_len", kindInt, func(c *Config) any { return &c.RDMAReceiveQueueLen }},
	{"ms_async_rdma_support_srq", kindBool, func(c *Config) any { return &c.RDMASupportSRQ }},
	{"ms_async_rdma_polling_us", kindInt, func(c *Config) any { return &c.RDMAPollingUS }},
	{"ms_async_rdma_polling_mode", kindString, func(c *Config) any { return &c.RDMAPollingMode }},
	{"ms_async_rdma_enable_hugepage", kindBool, func(c *Config) any { return &c.RDMAEnableHugepage }},
	{"ms_async_rdma_sl", kindInt, func(c *Config) any { return &c.RDMASL }},
	{"ms_async_rdma_dscp", kindInt, func(c *Config) any { return &c.RDMADSCP }},
	{"ms_async_rdma_cm", kindBool, func(c *Config) any { return &c.RDMACM }},
	{"ms_async_rdma_type", kindString, func(c *Config) any { return &c.RDMAType }},
	{"ms_async_rdma_submit_time_trigger", kindBool, func(c *Config) any { return &c.RDMASubmitTimeTrigger }},
	{"ms_async_rdma_count_trigger", kindInt, func(c *Config) any { return &c.RDMACountTrigger }},
	{"ms_async_rdma_send_msg_size", kindSize, func(c *Config) any { return &c.RDMASendMsgSize }},
	{"ms_tcp_listen_backlog", kindInt, func(c *Config) any { return &c.TCPListenBacklog }},
	{"ms_tcp_nodelay", kindBool, func(c *Config) any { return &c.TCPNoDelay }},
	{"ms_tcp_rcvbuf", kindSize, func(c *Config) any { return &c.TCPRcvBuf }},
	{"ms_connection_ready_timeout", kindDuration, func(c *Config) any { return &c.ConnectionReadyTimeout }},
	{"ms_connection_idle_timeout", kindDuration, func(c *Config) any { return &c.ConnectionIdleTimeout }},
	{"ms_keepalive_interval", kindDuration, func(c *Config) any { return &c.KeepaliveInterval }},
	{"ms_initial_backoff", kindDuration, func(c *Config) any { return &c.InitialBackoff }},
	{"ms_max_backoff", kindDuration, func(c *Config) any { return &c.MaxBackoff }},
	{"ms_max_frame_segment", kindSize, func(c *Config) any { return &c.MaxFrameSegment }},
}

// init adds the auth options (config/auth.go) and indexes them with the
// rest: optionIndex points into options, so it is rebuilt after the append.
func init() {
	options = append(options, authOptions...)
	options = append(options, adminOptions...)
	options = append(options, throttleOptions...)
	options = append(options, injectOptions...)
	optionIndex = make(map[string]*option, len(options))
	for i := range options {
		optionIndex[options[i].name] = &options[i]
	}
}

var optionIndex = func() map[string]*option {
	m := make(map[string]*option, len(options))
	for i := range options {
		m[options[i].name] = &options[i]
	}
	return m
}()

// cephOnlyOptions are ms_* options Ceph defines that asyncmsgr does not use.
// A configuration file may carry them (a real ceph.conf does); they are
// ignored without a warning. ms_type and ms_public_type are handled
// separately (they can select the transport).
var cephOnlyOptions = map[string]bool{
	"ms_cluster_type": true, "ms_mon_cluster_mode": true, "ms_mon_service_mode": true,
	"ms_mon_client_mode": true, "ms_cluster_mode": true, "ms_service_mode": true,
	"ms_client_mode": true, "ms_osd_service_mode": true, "ms_osd_client_mode": true,
	"ms_learn_addr_from_peer": true, "ms_tcp_prefetch_max_size": true,
	"ms_initial_backoff_jitter": true, "ms_crc_data": true, "ms_crc_header": true,
	"ms_die_on_bad_msg": true, "ms_die_on_unhandled_msg": true, "ms_die_on_old_message": true,
	"ms_die_on_skipped_message": true, "ms_die_on_bug": true,
	"ms_bind_ipv4": true, "ms_bind_ipv6": true, "ms_bind_prefer_ipv4": true, "ms_bind_msgr1": true,
	"ms_bind_msgr2": true, "ms_bind_port_min": true, "ms_bind_port_max": true,
	"ms_bind_retry_count": true, "ms_bind_retry_delay": true, "ms_bind_before_connect": true,
	"ms_tcp_read_timeout": true, "ms_pq_max_tokens_per_priority": true, "ms_pq_min_cost": true,
	"ms_inject_network_congestion": true, "ms_blackhole_osd": true, "ms_blackhole_mon": true,
	"ms_blackhole_mds": true, "ms_blackhole_mgr": true, "ms_blackhole_client": true,
	"ms_dump_on_send": true, "ms_dump_corrupt_message_level": true, "ms_async_reap_threshold": true,
	"ms_async_rdma_local_gid": true, "ms_async_rdma_roce_ver": true,
	"ms_async_rdma_receive_queue_length": true, "ms_max_accept_failures": true,
	"ms_dpdk_port_id": true, "ms_dpdk_coremask": true, "ms_dpdk_memory_channel": true,
	"ms_dpdk_hugepages": true, "ms_dpdk_pmd": true, "ms_dpdk_host_ipv4_addr": true,
	"ms_dpdk_gateway_ipv4_addr": true, "ms_dpdk_netmask_ipv4_addr": true, "ms_dpdk_lro": true,
	"ms_dpdk_hw_flow_control": true, "ms_dpdk_hw_queue_weight": true, "ms_dpdk_debug_allow_loopback": true,
	"ms_dpdk_rx_buffer_count_per_core": true, "ms_dpdk_enable_tso": true,
	"ms_time_events_min_wait_interval": true, "ms_client_throttle_retry_time_interval": true,
	"ms_mon_compression_mode": true, "ms_osd_compression_mode": true,
	"ms_compress_secure": true, "ms_osd_compress_mode": true, "ms_osd_compress_min_size": true,
	"ms_osd_compression_algorithm": true, "ms_connection_timeout": true,
}

// transportOptions are Ceph's messenger type options; a value containing
// "rdma" selects the rdma stack and "posix" or plain "async" the posix one,
// the way Ceph's AsyncMessenger derives its transport from ms_type.
var transportOptions = map[string]bool{"ms_type": true, "ms_public_type": true}

// NormalizeName turns an option name as a user may write it ("ms async rdma
// device name", "ms-async-op-threads", "MS_TCP_NODELAY") into its canonical
// form ("ms_async_rdma_device_name"): lower case, runs of spaces, '-' and
// '_' become one '_', surrounding separators dropped.
func NormalizeName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for _, r := range strings.TrimSpace(name) {
		switch {
		case r == ' ' || r == '\t' || r == '-' || r == '_':
			sep = true
		default:
			if sep && b.Len() > 0 {
				b.WriteByte('_')
			}
			sep = false
			b.WriteRune(toLower(r))
		}
	}
	return b.String()
}

func toLower(r rune) rune {
	if r >= 'A' && r <= 'Z' {
		return r + ('a' - 'A')
	}
	return r
}

// Options returns the canonical names of every option Config holds, sorted.
func Options() []string {
	names := make([]string, 0, len(options))
	for _, o := range options {
		names = append(names, o.name)
	}
	sort.Strings(names)
	return names
}

// ErrUnknownOption is wrapped by Set for a name that is not an option of
// Config.
var ErrUnknownOption = fmt.Errorf("unknown option")

// Set assigns an option by name (normalised with NormalizeName) from its
// textual value, parsed as in a configuration file. It does not validate
// ranges; call Validate.
func (c *Config) Set(name, value string) error {
	n := NormalizeName(name)
	var err error
	switch {
	case transportOptions[n]:
		err = c.setTransportFromType(n, value)
	case optionIndex[n] != nil:
		err = optionIndex[n].set(c, strings.TrimSpace(value))
	default:
		return fmt.Errorf("config: %w %q", ErrUnknownOption, name)
	}
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Get returns an option's current value formatted as Set accepts it.
func (c *Config) Get(name string) (string, error) {
	n := NormalizeName(name)
	o, ok := optionIndex[n]
	if !ok {
		return "", fmt.Errorf("config: %w %q", ErrUnknownOption, name)
	}
	return o.format(c), nil
}

func (c *Config) setTransportFromType(name, value string) error {
	v := strings.ToLower(strings.TrimSpace(value))
	switch {
	case strings.Contains(v, "rdma"):
		c.TransportType = "rdma"
	case v == "async" || strings.Contains(v, "posix"):
		c.TransportType = "posix"
	default:
		return fmt.Errorf("%s: messenger type %q not supported (want async+posix or async+rdma)", name, value)
	}
	return nil
}

// set parses value (already trimmed by the caller; a quoted file value
// keeps its spaces) into the option's field.
func (o *option) set(c *Config, value string) error {
	switch p := o.ptr(c).(type) {
	case *string:
		*p = value
	case *bool:
		b, err := parseBool(value)
		if err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
		*p = b
	case *int:
		var v int64
		var err error
		if o.kind == kindSize {
			v, err = parseIEC(value)
		} else {
			v, err = parseSI(value)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
		if v > math.MaxInt || v < math.MinInt {
			return fmt.Errorf("%s: %q out of range", o.name, value)
		}
		*p = int(v)
	case *time.Duration:
		d, err := parseSeconds(value)
		if err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
		*p = d
	case *float64:
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s: invalid number %q", o.name, value)
		}
		*p = f
	default:
		panic("config: option " + o.name + " has an unsupported field type")
	}
	return nil
}

func (o *option) format(c *Config) string {
	switch p := o.ptr(c).(type) {
	case *string:
		return *p
	case *bool:
		return strconv.FormatBool(*p)
	case *int:
		return strconv.Itoa(*p)
	case *time.Duration:
		return formatSeconds(*p)
	case *float64:
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	panic("config: option " + o.name + " has an unsupported field type")
}

// parseBool accepts Ceph's strict_strtob forms (true/false in any case, or
// an integer, non-zero meaning true) plus yes/no and on/off.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return false, fmt.Errorf("invalid boolean %q (want true/false, yes/no, on/off or an integer)", s)
	}
	return n != 0, nil
}

// splitNumber splits s into an optionally signed decimal integer and the
// suffix after it.
func splitNumber(s string) (num, unit string) {
	i := 0
	for i < len(s) && (s[i] == '+' || s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
		i++
	}
	return s[:i], s[i:]
}

// unitPower is the power of the unit suffix u: 1 for K, 2 for M, ... 6 for
// E; -1 for anything else.
func unitPower(u string) int {
	if len(u) != 1 {
		return -1
	}
	if i := strings.IndexByte("KMGTPE", u[0]); i >= 0 {
		return i + 1
	}
	return -1
}

// parseSI is Ceph's strict_si_cast: an integer with an optional one-letter
// suffix K, M, G, T, P, E (powers of 1000). strict_si_cast nominally takes
// "B" too but then fails to parse the number before it, so "7B" is invalid
// for counts in Ceph, and here.
func parseSI(s string) (int64, error) {
	return parseScaled(s, "integer", 1000, unitPower, "K, M, G, T, P, E")
}

// parseIEC is Ceph's strict_iec_cast: an integer with an optional suffix
// K, M, G, T, P, E (or Ki, Mi, ...; powers of 1024) or B.
func parseIEC(s string) (int64, error) {
	return parseScaled(s, "size", 1024, func(unit string) int {
		u := strings.TrimSuffix(unit, "i")
		if len(unit) > 2 || u == "" || (u != unit && u == "B") {
			return -1
		}
		if u == "B" {
			return 0
		}
		return unitPower(u)
	}, "K, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei, B")
}

// parseScaled is the integer of s times base to the power its unit suffix
// names (power: -1 for a suffix it does not take); what names the value in
// errors, suffixes lists the suffixes it takes.
func parseScaled(s, what string, base int64, power func(unit string) int, suffixes string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("value not specified")
	}
	num, unit := splitNumber(s)
	exp := 0
	if unit != "" {
		if exp = power(unit); exp < 0 {
			return 0, fmt.Errorf("invalid %s %q (suffix %q not one of %s)", what, s, unit, suffixes)
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid %s %q", what, s)
	}
	for range exp {
		if v > math.MaxInt64/base || v < math.MinInt64/base {
			return 0, fmt.Errorf("%q out of range", s)
		}
		v *= base
	}
	return v, nil
}

// parseSeconds reads a number of seconds ("10", "0.2", "1e-3") or a Go
// duration ("200ms", "1m30s"). Plain decimals are converted exactly (to the
// nanosecond, further digits truncated), so what formatSeconds writes reads
// back unchanged; a float64 detour would drift by a nanosecond per trip.
func parseSeconds(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("value not specified")
	}
	if d, ok, err := parseDecimalSeconds(s); ok {
		return d, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		ns := math.Round(f * float64(time.Second))
		if ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(ns), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want seconds, e.g. 10 or 0.2, or a Go duration such as 200ms)", s)
	}
	return d, nil
}

// parseDecimalSeconds handles [+-]digits[.digits]; ok is false for any
// other shape (exponents, units), which the caller parses otherwise.
func parseDecimalSeconds(s string) (d time.Duration, ok bool, err error) {
	neg := false
	body := s
	if body[0] == '+' || body[0] == '-' {
		neg = body[0] == '-'
		body = body[1:]
	}
	whole, frac, _ := strings.Cut(body, ".")
	if whole == "" && frac == "" {
		return 0, false, nil
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, false, nil
			}
		}
	}
	var ns uint64
	for i := 0; i < len(whole); i++ {
		if ns > (math.MaxInt64-9)/10 {
			return 0, true, fmt.Errorf("duration %q out of range", s)
		}
		ns = ns*10 + uint64(whole[i]-'0')
	}
	if ns > math.MaxInt64/uint64(time.Second) {
		return 0, true, fmt.Errorf("duration %q out of range", s)
	}
	ns *= uint64(time.Second)
	scale := uint64(time.Second)
	for i := 0; i < len(frac) && scale > 1; i++ {
		scale /= 10
		ns += uint64(frac[i]-'0') * scale
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++ // math.MinInt64 nanoseconds
	}
	if ns > limit {
		return 0, true, fmt.Errorf("duration %q out of range", s)
	}
	if neg {
		return time.Duration(-ns), true, nil
	}
	return time.Duration(ns), true, nil
}

// formatSeconds writes d as decimal seconds with up to nine fractional
// digits, the form Ceph's config files use, exactly.
func formatSeconds(d time.Duration) string {
	sign := ""
	ns := uint64(d)
	if d < 0 {
		sign = "-"
		ns = uint64(-(d + 1)) + 1 // -MinInt64 overflows int64, not uint64
	}
	whole, frac := ns/uint64(time.Second), ns%uint64(time.Second)
	if frac == 0 {
		return sign + strconv.FormatUint(whole, 10)
	}
	fs := strings.TrimRight(fmt.Sprintf("%09d", frac), "0")
	return sign + strconv.FormatUint(whole, 10) + "." + fs
}
