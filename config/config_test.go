package config

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaults(t *testing.T) {
	// Ceph's defaults (REFERENCE.md "Options") and asyncmsgr's extensions.
	want := map[string]string{
		"ms_async_transport_type":           "posix",
		"ms_async_transport_fallback":       "false",
		"ms_async_op_threads":               "3",
		"ms_async_rdma_device_name":         "",
		"ms_async_rdma_port_num":            "1",
		"ms_async_rdma_gid_idx":             "0",
		"ms_async_rdma_buffer_size":         "131072",
		"ms_async_rdma_send_buffers":        "1024",
		"ms_async_rdma_receive_buffers":     "32768",
		"ms_async_rdma_receive_queue_len":   "4096",
		"ms_async_rdma_support_srq":         "true",
		"ms_async_rdma_polling_us":          "1000",
		"ms_async_rdma_polling_mode":        "worker",
		"ms_async_rdma_enable_hugepage":     "false",
		"ms_async_rdma_sl":                  "3",
		"ms_async_rdma_dscp":                "96",
		"ms_async_rdma_cm":                  "false",
		"ms_async_rdma_type":                "ib",
		"ms_async_rdma_submit_time_trigger": "true",
		"ms_async_rdma_count_trigger":       "16",
		"ms_async_rdma_send_msg_size":       "0",
		"ms_tcp_listen_backlog":             "512",
		"ms_tcp_nodelay":                    "true",
		"ms_tcp_rcvbuf":                     "0",
		"ms_connection_ready_timeout":       "10",
		"ms_connection_idle_timeout":        "900",
		"ms_keepalive_interval":             "10",
		"ms_initial_backoff":                "0.2",
		"ms_max_backoff":                    "15",
		"ms_max_frame_segment":              "536870912",
		"ms_dispatch_throttle_bytes":        "104857600", // Ceph's 100_M
		// auth: Ceph's keyring list and mode orders; required methods are
		// asyncmsgr's (config/auth.go says why)
		"auth_cluster_required": "cephx, none",
		"auth_service_required": "cephx, none",
		"auth_client_required":  "cephx, none",
		"keyring":               "/etc/ceph/$cluster.$name.keyring,/etc/ceph/$cluster.keyring,/etc/ceph/keyring,/etc/ceph/keyring.bin",
		"key":                   "",
		"keyfile":               "",
		"ms_mon_client_mode":    "secure crc",
		"ms_client_mode":        "crc secure",
		"ms_service_mode":       "crc secure",
		"ms_cluster_mode":       "crc secure",
		"ms_mon_service_mode":   "secure crc",
		"ms_mon_cluster_mode":   "secure crc",
		"cluster":               "ceph",
		"admin_socket":          "",
		"run_dir":               "/var/run/ceph",
		// fault injection: Ceph's defaults, off
		"ms_inject_socket_failures":   "0",
		"ms_inject_delay_type":        "",
		"ms_inject_delay_max":         "0",
		"ms_inject_delay_probability": "0",
		"ms_inject_internal_delays":   "0",
	}
	c := Default()
	require.NoError(t, c.Validate())
	require.Len(t, Options(), len(want), "every option has an expected default")
	for _, name := range Options() {
		t.Run(name, func(t *testing.T) {
			got, err := c.Get(name)
			require.NoError(t, err)
			exp, ok := want[name]
			require.True(t, ok, "option %s missing from the test", name)
			require.Equal(t, exp, got)
		})
	}
}

func TestNormalizeName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"ms_async_op_threads", "ms_async_op_threads"},
		{"ms async rdma device name", "ms_async_rdma_device_name"},
		{"ms-async-rdma-cm", "ms_async_rdma_cm"},
		{"  MS_TCP_NODELAY ", "ms_tcp_nodelay"},
		{"ms  async\ttransport__type", "ms_async_transport_type"},
		{"_ms_x_", "ms_x"},
		{"", ""},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, NormalizeName(tc.in), "in %q", tc.in)
	}
}

func TestSet(t *testing.T) {
	cases := []struct {
		name, value string
		check       func(t *testing.T, c *Config)
	}{
		{"ms_async_transport_type", "rdma", func(t *testing.T, c *Config) { require.Equal(t, "rdma", c.TransportType) }},
		{"ms async rdma device name", " rxe0 ", func(t *testing.T, c *Config) { require.Equal(t, "rxe0", c.RDMADeviceName) }},
		{"ms-async-op-threads", "5", func(t *testing.T, c *Config) { require.Equal(t, 5, c.OpThreads) }},
		{"ms_async_rdma_gid_idx", "-1", func(t *testing.T, c *Config) { require.Equal(t, -1, c.RDMAGIDIdx) }},
		{"ms_async_rdma_buffer_size", "128K", func(t *testing.T, c *Config) { require.Equal(t, 128<<10, c.RDMABufferSize) }},
		{"ms_async_rdma_buffer_size", "1Mi", func(t *testing.T, c *Config) { require.Equal(t, 1<<20, c.RDMABufferSize) }},
		{"ms_async_rdma_buffer_size", "4096", func(t *testing.T, c *Config) { require.Equal(t, 4096, c.RDMABufferSize) }},
		{"ms_async_rdma_buffer_size", "4096B", func(t *testing.T, c *Config) { require.Equal(t, 4096, c.RDMABufferSize) }},
		{"ms_max_frame_segment", "1G", func(t *testing.T, c *Config) { require.Equal(t, 1<<30, c.MaxFrameSegment) }},
		// Counts are Ceph TYPE_UINT: SI suffixes.
		{"ms_async_rdma_send_buffers", "2K", func(t *testing.T, c *Config) { require.Equal(t, 2000, c.RDMASendBuffers) }},
		{"ms_async_rdma_receive_buffers", "1M", func(t *testing.T, c *Config) { require.Equal(t, 1000000, c.RDMAReceiveBuffers) }},
		{"ms_async_rdma_cm", "true", func(t *testing.T, c *Config) { require.True(t, c.RDMACM) }},
		{"ms_async_rdma_cm", "YES", func(t *testing.T, c *Config) { require.True(t, c.RDMACM) }},
		{"ms_async_rdma_cm", "1", func(t *testing.T, c *Config) { require.True(t, c.RDMACM) }},
		{"ms_tcp_nodelay", "no", func(t *testing.T, c *Config) { require.False(t, c.TCPNoDelay) }},
		{"ms_tcp_nodelay", "0", func(t *testing.T, c *Config) { require.False(t, c.TCPNoDelay) }},
		{"ms_tcp_nodelay", "False", func(t *testing.T, c *Config) { require.False(t, c.TCPNoDelay) }},
		{"ms_connection_ready_timeout", "2.5", func(t *testing.T, c *Config) { require.Equal(t, 2500*time.Millisecond, c.ConnectionReadyTimeout) }},
		{"ms_initial_backoff", "150ms", func(t *testing.T, c *Config) { require.Equal(t, 150*time.Millisecond, c.InitialBackoff) }},
		{"ms_keepalive_interval", "0", func(t *testing.T, c *Config) { require.Zero(t, c.KeepaliveInterval) }},
		{"ms_type", "async+rdma", func(t *testing.T, c *Config) { require.Equal(t, "rdma", c.TransportType) }},
		{"ms public type", "async+posix", func(t *testing.T, c *Config) { require.Equal(t, "posix", c.TransportType) }},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			c := Default()
			if tc.name == "ms public type" {
				c.TransportType = "rdma"
			}
			require.NoError(t, c.Set(tc.name, tc.value))
			tc.check(t, c)
		})
	}
}

func TestSetErrors(t *testing.T) {
	cases := []struct{ name, value, want string }{
		{"ms_nope", "1", `config: unknown option "ms_nope"`},
		{"ms_async_op_threads", "three", `config: ms_async_op_threads: invalid integer "three" (suffix "three" not one of K, M, G, T, P, E)`},
		{"ms_async_op_threads", "", "config: ms_async_op_threads: value not specified"},
		{"ms_async_op_threads", "1.5", `config: ms_async_op_threads: invalid integer "1.5" (suffix ".5" not one of K, M, G, T, P, E)`},
		{"ms_async_op_threads", "99999999999999999999", `config: ms_async_op_threads: invalid integer "99999999999999999999"`},
		{"ms_async_rdma_send_buffers", "10000000000000000E", `config: ms_async_rdma_send_buffers: "10000000000000000E" out of range`},
		{"ms_async_rdma_polling_us", "7B", `config: ms_async_rdma_polling_us: invalid integer "7B"`},
		{"ms_async_rdma_buffer_size", "12KB", `config: ms_async_rdma_buffer_size: invalid size "12KB"`},
		{"ms_async_rdma_buffer_size", "1Bi", `config: ms_async_rdma_buffer_size: invalid size "1Bi"`},
		{"ms_async_rdma_buffer_size", "1k", `config: ms_async_rdma_buffer_size: invalid size "1k"`},
		{"ms_async_rdma_buffer_size", "9000000E", `config: ms_async_rdma_buffer_size: "9000000E" out of range`},
		{"ms_tcp_nodelay", "maybe", `config: ms_tcp_nodelay: invalid boolean "maybe"`},
		{"ms_max_backoff", "soon", `config: ms_max_backoff: invalid duration "soon"`},
		{"ms_max_backoff", "NaN", `config: ms_max_backoff: invalid duration "NaN"`},
		{"ms_max_backoff", "1e300", `config: ms_max_backoff: duration "1e300" out of range`},
		{"ms_type", "async+dpdk", `config: ms_type: messenger type "async+dpdk" not supported`},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			c := Default()
			err := c.Set(tc.name, tc.value)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Equal(t, Default(), c, "a failed Set changes nothing")
		})
	}
	require.True(t, errors.Is(Default().Set("ms_nope", "1"), ErrUnknownOption))
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		mut  func(c *Config)
		want string
	}{
		{"transport", func(c *Config) { c.TransportType = "dpdk" }, `config: ms_async_transport_type: "dpdk" is not posix or rdma`},
		{"threads high", func(c *Config) { c.OpThreads = 30 }, "config: ms_async_op_threads: 30 out of range 1..24"},
		{"threads zero", func(c *Config) { c.OpThreads = 0 }, "config: ms_async_op_threads: 0 out of range 1..24"},
		{"port", func(c *Config) { c.RDMAPortNum = 0 }, "config: ms_async_rdma_port_num: 0 out of range 1..255"},
		{"gid", func(c *Config) { c.RDMAGIDIdx = -2 }, "config: ms_async_rdma_gid_idx: -2 out of range -1..255"},
		{"buffer size zero", func(c *Config) { c.RDMABufferSize = 0 }, "config: ms_async_rdma_buffer_size: 0 out of range 1..2147483648"},
		{"buffer size negative", func(c *Config) { c.RDMABufferSize = -4096 }, "config: ms_async_rdma_buffer_size: -4096 out of range"},
		{"send buffers", func(c *Config) { c.RDMASendBuffers = 0 }, "config: ms_async_rdma_send_buffers: 0 must be at least 1"},
		{"receive buffers", func(c *Config) { c.RDMAReceiveBuffers = -1 }, "config: ms_async_rdma_receive_buffers: -1 is negative"},
		{"rq len", func(c *Config) { c.RDMAReceiveQueueLen = 0 }, "config: ms_async_rdma_receive_queue_len: 0 must be at least 1"},
		{"polling", func(c *Config) { c.RDMAPollingUS = -5 }, "config: ms_async_rdma_polling_us: -5 is negative"},
		{"polling mode", func(c *Config) { c.RDMAPollingMode = "spin" }, `config: ms_async_rdma_polling_mode: "spin" is not worker or dispatcher`},
		{"sl", func(c *Config) { c.RDMASL = 16 }, "config: ms_async_rdma_sl: 16 out of range 0..15"},
		{"dscp", func(c *Config) { c.RDMADSCP = 256 }, "config: ms_async_rdma_dscp: 256 out of range 0..255"},
		{"rdma type", func(c *Config) { c.RDMAType = "roce" }, `config: ms_async_rdma_type: "roce" is not ib or iwarp`},
		{"iwarp without cm", func(c *Config) { c.RDMAType = "iwarp" }, "config: ms_async_rdma_type: iwarp requires ms_async_rdma_cm = true"},
		{"count trigger", func(c *Config) { c.RDMACountTrigger = 0 }, "config: ms_async_rdma_count_trigger: 0 must be at least 1"},
		{"send msg size", func(c *Config) { c.RDMASendMsgSize = -1 }, "config: ms_async_rdma_send_msg_size: -1 is negative"},
		{"backlog", func(c *Config) { c.TCPListenBacklog = 0 }, "config: ms_tcp_listen_backlog: 0 must be at least 1"},
		{"rcvbuf", func(c *Config) { c.TCPRcvBuf = -1 }, "config: ms_tcp_rcvbuf: -1 is negative"},
		{"ready timeout", func(c *Config) { c.ConnectionReadyTimeout = 0 }, "config: ms_connection_ready_timeout: 0s must be positive"},
		{"idle timeout", func(c *Config) { c.ConnectionIdleTimeout = -time.Second }, "config: ms_connection_idle_timeout: -1s is negative"},
		{"keepalive negative", func(c *Config) { c.KeepaliveInterval = -time.Second }, "config: ms_keepalive_interval: -1s is negative"},
		{"keepalive vs idle", func(c *Config) { c.KeepaliveInterval = time.Hour }, "config: ms_keepalive_interval: 1h0m0s must be shorter than ms_connection_idle_timeout 15m0s"},
		{"initial backoff", func(c *Config) { c.InitialBackoff = 0 }, "config: ms_initial_backoff: 0s must be positive"},
		{"max backoff", func(c *Config) { c.MaxBackoff = time.Millisecond }, "config: ms_max_backoff: 1ms is less than ms_initial_backoff 200ms"},
		{"frame segment", func(c *Config) { c.MaxFrameSegment = 0 }, "config: ms_max_frame_segment: 0 out of range 1..4294967295"},
		{"frame segment big", func(c *Config) { c.MaxFrameSegment = 1 << 32 }, "config: ms_max_frame_segment: 4294967296 out of range 1..4294967295"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mut(c)
			err := c.Validate()
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("all errors reported", func(t *testing.T) {
		c := Default()
		c.OpThreads = 0
		c.RDMASL = 99
		err := c.Validate()
		require.ErrorContains(t, err, "ms_async_op_threads")
		require.ErrorContains(t, err, "ms_async_rdma_sl")
	})
	t.Run("valid variants", func(t *testing.T) {
		for _, mut := range []func(c *Config){
			func(c *Config) { c.RDMAType, c.RDMACM = "iwarp", true },
			func(c *Config) { c.TransportType = "rdma"; c.OpThreads = 24 },
			func(c *Config) { c.KeepaliveInterval = 0; c.ConnectionIdleTimeout = 0 },
			func(c *Config) { c.RDMAGIDIdx = -1; c.RDMAReceiveBuffers = 0 },
		} {
			c := Default()
			mut(c)
			require.NoError(t, c.Validate())
		}
	})
}

const sampleConf = `
# a real ceph.conf with asyncmsgr options mixed in
[global]
	fsid = 1b6f6c1e-0000-4000-8000-000000000000
	mon host = [v2:10.0.0.1:3300]
	auth cluster required = none ; trailing comment
	ms type = async+rdma
	ms_bind_msgr1 = false
	ms async rdma device name = rxe0
	ms async rdma gid idx = 1
	ms-async-rdma-buffer-size = 64K
	ms_async_rdma_send_buffers = 2K   # SI: 2000
	ms_connection_ready_timeout = 2.5
	ms_async_rdma_polling_us = \
	    500
	ms_async_rdma_device_name_typo = x

[client]
	ms_async_op_threads = 4
	ms_async_rdma_device_name = "rxe # 1"

[client.admin]
	ms_async_op_threads = 6

[mon]
	ms_async_op_threads = 8
	ms_async_rdma_sl = not-a-number
`

func TestParseSections(t *testing.T) {
	cases := []struct {
		section string
		threads int
		device  string
	}{
		{"", 3, "rxe0"},
		{"global", 3, "rxe0"},
		{"client", 4, "rxe # 1"},
		{"client.admin", 6, "rxe # 1"},
		{"client.other", 4, "rxe # 1"},
		{"osd.3", 3, "rxe0"},
	}
	for _, tc := range cases {
		t.Run("section "+tc.section, func(t *testing.T) {
			c := Default()
			warnings, err := c.Parse(strings.NewReader(sampleConf), "ceph.conf", tc.section)
			require.NoError(t, err)
			require.Equal(t, []string{"ceph.conf:16: unknown option ms_async_rdma_device_name_typo ignored"}, warnings)
			require.Equal(t, tc.threads, c.OpThreads)
			require.Equal(t, tc.device, c.RDMADeviceName)
			require.Equal(t, "rdma", c.TransportType)
			require.Equal(t, 1, c.RDMAGIDIdx)
			require.Equal(t, 64<<10, c.RDMABufferSize)
			require.Equal(t, 2000, c.RDMASendBuffers)
			require.Equal(t, 2500*time.Millisecond, c.ConnectionReadyTimeout)
			require.Equal(t, 500, c.RDMAPollingUS)
			require.NoError(t, c.Validate())
		})
	}
	t.Run("mon section value error", func(t *testing.T) {
		c := Default()
		_, err := c.Parse(strings.NewReader(sampleConf), "ceph.conf", "mon.a")
		require.EqualError(t, err, `config: ceph.conf:27: ms_async_rdma_sl: invalid integer "not-a-number" (suffix "not-a-number" not one of K, M, G, T, P, E)`)
		require.Equal(t, Default(), c, "a failed Parse changes nothing")
	})
}

func TestParseSyntax(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // expected ms_async_rdma_device_name
	}{
		{"plain", "[global]\nms_async_rdma_device_name = mlx5_0\n", "mlx5_0"},
		{"no spaces", "[global]\nms_async_rdma_device_name=mlx5_0", "mlx5_0"},
		{"crlf", "[global]\r\nms_async_rdma_device_name = mlx5_0\r\n", "mlx5_0"},
		{"semicolon comment", "[global] ; c\nms_async_rdma_device_name = a ; comment\n", "a"},
		{"hash comment line", "[global]\n# ms_async_rdma_device_name = x\n;ms_async_rdma_device_name = y\nms_async_rdma_device_name = z", "z"},
		{"double quoted", "[global]\nms_async_rdma_device_name = \"a \\\"b\\\" ;c\"\n", `a "b" ;c`},
		{"single quoted", "[global]\nms_async_rdma_device_name = 'a # b'\n", "a # b"},
		{"empty value", "[global]\nms_async_rdma_device_name =\n", ""},
		{"last wins", "[global]\nms_async_rdma_device_name = a\nms_async_rdma_device_name = b\n", "b"},
		{"section case", "[GLOBAL]\nMS_ASYNC_RDMA_DEVICE_NAME = a\n", "a"},
		{"continuation", "[global]\nms_async_rdma_device_name = ab\\\ncd\n", "abcd"},
		{"empty file", "", ""},
		{"spaced header", "[ global ]\nms_async_rdma_device_name = q\n", "q"},
		// Ceph: quotes are special only at the start of a value; quoted
		// values are trimmed too.
		{"inner quotes literal", "[global]\nms_async_rdma_device_name = ab'c'\"d\"\n", `ab'c'"d"`},
		{"quoted spaces trimmed", "[global]\nms_async_rdma_device_name = \"  sp  \"\n", "sp"},
		{"quoted then comment", "[global]\nms_async_rdma_device_name = 'x' # c\n", "x"},
		{"backslash continuation of backslash", "[global]\nms_async_rdma_device_name = x\\\\\n", `x\`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			w, err := c.Parse(strings.NewReader(tc.in), "f", "")
			require.NoError(t, err)
			require.Empty(t, w)
			require.Equal(t, tc.want, c.RDMADeviceName)
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"outside section", "ms_async_op_threads = 2\n", `config: f:1: option "ms_async_op_threads" outside of a section`},
		{"no equals", "[global]\nms_async_op_threads 2\n", `config: f:2: expected "key = value", got "ms_async_op_threads 2"`},
		{"empty key", "[global]\n = 2\n", "config: f:2: empty option name"},
		{"header", "[global\n", `config: f:1: section header "[global" lacks ']'`},
		{"empty header", "[]\n", `config: f:1: bad section header "[]"`},
		{"unterminated quote", "[global]\nms_async_rdma_device_name = \"abc\n", "config: f:2: ms_async_rdma_device_name: unterminated \" quote"},
		{"text after quote", "[global]\nms_async_rdma_device_name = \"abc\" def\n", `config: f:2: ms_async_rdma_device_name: text after quoted value: "def"`},
		{"text after header", "[global] x\n", `config: f:1: text after section header: "x"`},
		{"comment in key", "[global]\nms_x # = 1\n", `config: f:2: expected "key = value", got "ms_x # = 1"`},
		{"bad value", "[global]\n\nms_async_op_threads = lots\n", `config: f:3: ms_async_op_threads: invalid integer "lots"`},
		{"bad bool", "[global]\nms tcp nodelay = perhaps\n", `config: f:2: ms_tcp_nodelay: invalid boolean "perhaps"`},
		{"bad type", "[global]\nms_type = simple\n", `config: f:2: ms_type: messenger type "simple" not supported`},
		{"long line", "[global]\nms_async_rdma_device_name = " + strings.Repeat("x", maxLineLen+1) + "\n", "config: f:2: line longer than 1048576 bytes"},
		{"long continuation", "[global]\nms_async_rdma_device_name = " + strings.Repeat(strings.Repeat("x", 1000)+"\\\n", 1100), "config: f:2: line longer than 1048576 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			_, err := c.Parse(strings.NewReader(tc.in), "f", "")
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Equal(t, Default(), c)
		})
	}
}

func TestApplyEnv(t *testing.T) {
	c := Default()
	w, err := c.ApplyEnv([]string{
		"PATH=/usr/bin",
		"ASYNCMSGR_MS_ASYNC_TRANSPORT_TYPE=rdma",
		"ASYNCMSGR_MS_ASYNC_RDMA_DEVICE_NAME=rxe0",
		"ASYNCMSGR_ms_async_rdma_buffer_size=256K",
		"ASYNCMSGR_MS_NOT_AN_OPTION=1",
		"ASYNCMSGR_NOEQUALS",
		"asyncmsgr_ms_async_op_threads=9",
	})
	require.NoError(t, err)
	require.Equal(t, []string{"environment variable ASYNCMSGR_MS_NOT_AN_OPTION: unknown option ms_not_an_option ignored"}, w)
	require.Equal(t, "rdma", c.TransportType)
	require.Equal(t, "rxe0", c.RDMADeviceName)
	require.Equal(t, 256<<10, c.RDMABufferSize)
	require.Equal(t, 3, c.OpThreads, "the prefix is case-sensitive")

	c = Default()
	_, err = c.ApplyEnv([]string{"ASYNCMSGR_MS_ASYNC_RDMA_DEVICE_NAME=x", "ASYNCMSGR_MS_TCP_NODELAY=sometimes"})
	require.EqualError(t, err, `config: environment variable ASYNCMSGR_MS_TCP_NODELAY: ms_tcp_nodelay: invalid boolean "sometimes" (want true/false, yes/no, on/off or an integer)`)
	require.Equal(t, Default(), c)
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ceph.conf")
	require.NoError(t, os.WriteFile(path, []byte("[global]\nms_async_op_threads = 4\nms_async_rdma_device_name = file\nms_frob = 1\n"), 0o600))

	cases := []struct {
		name    string
		path    string
		env     []string
		threads int
		device  string
		warns   int
		err     string
	}{
		{"defaults only", "", nil, 3, "", 0, ""},
		{"file", path, nil, 4, "file", 1, ""},
		{"env overrides file", path, []string{"ASYNCMSGR_MS_ASYNC_RDMA_DEVICE_NAME=env"}, 4, "env", 1, ""},
		{"validation", path, []string{"ASYNCMSGR_MS_ASYNC_OP_THREADS=30"}, 0, "", 1, "config: ms_async_op_threads: 30 out of range 1..24"},
		{"missing file", filepath.Join(dir, "nope.conf"), nil, 0, "", 0, "no such file or directory"},
		{"env error", "", []string{"ASYNCMSGR_MS_ASYNC_OP_THREADS=x"}, 0, "", 0, "environment variable ASYNCMSGR_MS_ASYNC_OP_THREADS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, w, err := LoadWithWarnings(tc.path, "client", tc.env)
			require.Len(t, w, tc.warns)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.Nil(t, c)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.threads, c.OpThreads)
			require.Equal(t, tc.device, c.RDMADeviceName)
		})
	}

	t.Run("process environment", func(t *testing.T) {
		t.Setenv("ASYNCMSGR_MS_ASYNC_RDMA_TYPE", "iwarp")
		t.Setenv("ASYNCMSGR_MS_ASYNC_RDMA_CM", "true")
		c, err := Load(path, "")
		require.NoError(t, err)
		require.Equal(t, "iwarp", c.RDMAType)
		require.True(t, c.RDMACM)
		require.Equal(t, 4, c.OpThreads)
	})
}

func TestWriteToRoundTrip(t *testing.T) {
	c := Default()
	c.TransportType = "rdma"
	c.RDMADeviceName = `odd "name" #1;\`
	c.RDMABufferSize = 12345
	c.InitialBackoff = 123456789 * time.Nanosecond
	c.RDMACM = true
	var buf bytes.Buffer
	_, err := c.WriteTo(&buf)
	require.NoError(t, err)
	got := &Config{}
	w, err := got.Parse(&buf, "written", "")
	require.NoError(t, err)
	require.Empty(t, w)
	require.Equal(t, c, got)
}

// Durations must survive a write and a read to the nanosecond: a float64
// detour turned 521.31566311 s into ...109 ns, then ...108 (found by
// FuzzParse in CI).
func TestSecondsRoundTripExact(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"521.31566311", 521315663110, "521.31566311"},
		{"-264163.991452991", -264163991452991, "-264163.991452991"},
		{"0.3", 300 * time.Millisecond, "0.3"},
		{"1e-3", time.Millisecond, "0.001"},
		{"+2.5000000009", 2500000000, "2.5"},
		{"9223372036.854775807", math.MaxInt64, "9223372036.854775807"},
		{"-9223372036.854775808", math.MinInt64, "-9223372036.854775808"},
		{"200ms", 200 * time.Millisecond, "0.2"},
	} {
		d, err := parseSeconds(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, d, tc.in)
		require.Equal(t, tc.out, formatSeconds(d), tc.in)
		back, err := parseSeconds(formatSeconds(d))
		require.NoError(t, err)
		require.Equal(t, d, back, tc.in)
	}
	for _, bad := range []string{"9223372037", "-9223372037", ".", "-", "1.2.3", "nan", "inf"} {
		_, err := parseSeconds(bad)
		require.Error(t, err, bad)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sampleConf, "client.admin")
	f.Add("[global]\nms_async_rdma_device_name = \"a\\\"b\"\n", "")
	f.Add("[global]\nms_async_op_threads = 1K\nms_initial_backoff = 1e-3\n", "mon")
	f.Add("[global]\nms_max_frame_segment = 1Gi\\\n", "")
	f.Fuzz(func(t *testing.T, in, section string) {
		c := Default()
		_, err := c.Parse(strings.NewReader(in), "fuzz", section)
		if err != nil {
			require.Equal(t, Default(), c)
			return
		}
		_ = c.Validate()
		// What was read writes back and reads back identically, unless a
		// string holds a line break (not representable in the format).
		for _, s := range []string{c.TransportType, c.RDMADeviceName, c.RDMAType} {
			if strings.ContainsAny(s, "\r\n") {
				return
			}
		}
		var buf bytes.Buffer
		_, err = c.WriteTo(&buf)
		require.NoError(t, err)
		got := Default()
		_, err = got.Parse(&buf, "again", "")
		require.NoError(t, err, "input %q wrote\n%s", in, buf.String())
		require.Equal(t, c, got)
	})
}

func TestAuthLists(t *testing.T) {
	m, err := Methods("cephx, none")
	require.NoError(t, err)
	require.Equal(t, []uint32{AuthCephX, AuthNone}, m)
	md, err := Modes("secure crc")
	require.NoError(t, err)
	require.Equal(t, []uint32{ModeSecure, ModeCRC}, md)
	c := Default()
	c.AuthServiceRequired = "kerberos"
	c.MonClientMode = ""
	err = c.Validate()
	require.ErrorContains(t, err, `config: auth_service_required: "kerberos" is not cephx or none`)
	require.ErrorContains(t, err, `config: ms_mon_client_mode: "" names no connection mode`)
}
