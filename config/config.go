package config

import (
	"log/slog"
	"time"
)

// Config holds every ms_* option the messenger and its stacks read. Build one
// with Default and then apply a file (ParseFile), the environment (ApplyEnv)
// and code (plain field assignment, or Set by option name).
type Config struct {
	// ms_async_transport_type: "posix" or "rdma".
	TransportType string
	// ms_async_transport_fallback: when the selected stack is unavailable,
	// fall back to posix with a log line instead of failing. asyncmsgr
	// extension; off by default.
	TransportFallback bool
	// ms_async_op_threads: workers per stack, 1..24.
	OpThreads int

	RDMADeviceName      string // ms_async_rdma_device_name; "" means the first device
	RDMAPortNum         int    // ms_async_rdma_port_num
	RDMAGIDIdx          int    // ms_async_rdma_gid_idx; -1 picks the RoCEv2 IPv4 GID
	RDMABufferSize      int    // ms_async_rdma_buffer_size, bytes per TX/RX chunk
	RDMASendBuffers     int    // ms_async_rdma_send_buffers
	RDMAReceiveBuffers  int    // ms_async_rdma_receive_buffers; 0 unlimited
	RDMAReceiveQueueLen int    // ms_async_rdma_receive_queue_len
	RDMASupportSRQ      bool   // ms_async_rdma_support_srq
	RDMAPollingUS       int    // ms_async_rdma_polling_us
	// ms_async_rdma_polling_mode: "worker" (the default: each worker's event
	// centre polls its own CQ pair, run to completion) or "dispatcher"
	// (Ceph's shape: one polling goroutine for shared CQs, eventfd
	// notification). The polling mode is local: peers need not agree.
	RDMAPollingMode    string
	RDMAEnableHugepage bool   // ms_async_rdma_enable_hugepage
	RDMASL             int    // ms_async_rdma_sl
	RDMADSCP           int    // ms_async_rdma_dscp
	RDMACM             bool   // ms_async_rdma_cm
	RDMAType           string // ms_async_rdma_type: "ib" or "iwarp"
	// ms_async_rdma_submit_time_trigger: enables adaptive send-merging.
	RDMASubmitTimeTrigger bool
	// ms_async_rdma_count_trigger: inflight TX WRs above which merge mode starts.
	RDMACountTrigger int
	// ms_async_rdma_send_msg_size: payloads above this go by RDMA WRITE into
	// peer-advertised buffers; 0 disables (Ceph-compatible mode).
	RDMASendMsgSize int

	TCPListenBacklog int  // ms_tcp_listen_backlog
	TCPNoDelay       bool // ms_tcp_nodelay
	TCPRcvBuf        int  // ms_tcp_rcvbuf; 0 kernel default

	// ms_connection_ready_timeout: handshake must finish within this.
	ConnectionReadyTimeout time.Duration
	// ms_connection_idle_timeout: a connection with no traffic and no
	// keepalive reply for this long is faulted.
	ConnectionIdleTimeout time.Duration
	// ms_keepalive_interval (asyncmsgr): how often KEEPALIVE2 is sent on an
	// idle connection; 0 disables keepalives.
	KeepaliveInterval time.Duration
	// ms_initial_backoff / ms_max_backoff: lossless reconnect backoff.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// ms_max_frame_segment: largest segment a peer may announce (bytes);
	// larger is a protocol error.
	MaxFrameSegment int

	// Auth is the authentication options (auth_*, keyring, ms_*_mode).
	Auth
	// Admin is the admin socket's options (admin_socket, run_dir).
	Admin
	// Throttles is the receive-side throttle options (ms_dispatch_throttle_bytes).
	Throttles
	// Inject is the fault-injection options (ms_inject_*), all off by default.
	Inject

	// Logger is where every layer built from this Config logs (the
	// messenger, its stack, the dispatcher, verbs warnings). It is not an
	// option: code sets it (msgr.WithLogger does); nil means slog.Default().
	Logger *slog.Logger
}

// Log returns the logger every layer uses: c.Logger, or slog.Default() when
// it is nil (or c is nil).
func (c *Config) Log() *slog.Logger {
	if c == nil || c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

// MaxOpThreads is the most ms_async_op_threads may be (Ceph's
// set_min_max(1, 24)); every stack refuses more workers.
const MaxOpThreads = 24

// DefaultListenBacklog is ms_tcp_listen_backlog's default (Ceph's), also the
// backlog of a listener whose options and config name none.
const DefaultListenBacklog = 512

// Default returns the defaults of Ceph (and asyncmsgr's extensions).
func Default() *Config {
	return &Config{
		TransportType:          "posix",
		OpThreads:              3,
		RDMAPortNum:            1,
		RDMAGIDIdx:             0,
		RDMABufferSize:         128 << 10,
		RDMASendBuffers:        1024,
		RDMAReceiveBuffers:     32768,
		RDMAReceiveQueueLen:    4096,
		RDMASupportSRQ:         true,
		RDMAPollingUS:          1000,
		RDMAPollingMode:        "worker",
		RDMASL:                 3,
		RDMADSCP:               96,
		RDMAType:               "ib",
		RDMASubmitTimeTrigger:  true,
		RDMACountTrigger:       16,
		TCPListenBacklog:       DefaultListenBacklog,
		TCPNoDelay:             true,
		ConnectionReadyTimeout: 10 * time.Second,
		ConnectionIdleTimeout:  900 * time.Second,
		KeepaliveInterval:      10 * time.Second,
		InitialBackoff:         200 * time.Millisecond,
		MaxBackoff:             15 * time.Second,
		MaxFrameSegment:        512 << 20,
		Auth:                   defaultAuth(),
		Admin:                  defaultAdmin(),
		Throttles:              defaultThrottles(),
	}
}
