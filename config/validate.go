package config

import (
	"errors"
	"fmt"
	"time"
)

// Validate reports every invalid value, each error naming its option, e.g.
// "config: ms_async_op_threads: 30 out of range 1..24". The errors are
// joined (errors.Join); nil means the Config is usable.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", name, fmt.Sprintf(format, args...)))
	}
	intRange := func(name string, v int, lo, hi int64) {
		if int64(v) < lo || int64(v) > hi {
			bad(name, "%d out of range %d..%d", v, lo, hi)
		}
	}
	atLeast := func(name string, v, lo int) {
		if v < lo {
			if lo == 0 {
				bad(name, "%d is negative", v)
			} else {
				bad(name, "%d must be at least %d", v, lo)
			}
		}
	}
	nonNegDur := func(name string, d time.Duration) {
		if d < 0 {
			bad(name, "%v is negative", d)
		}
	}

	switch c.TransportType {
	case "posix", "rdma":
	default:
		bad("ms_async_transport_type", "%q is not posix or rdma", c.TransportType)
	}
	// Ceph: ms_async_op_threads has set_min_max(1, 24).
	intRange("ms_async_op_threads", c.OpThreads, 1, MaxOpThreads)

	// ibv port numbers are u8 and start at 1.
	intRange("ms_async_rdma_port_num", c.RDMAPortNum, 1, 255)
	// sgid_index is a u8; -1 asks for the RoCEv2 IPv4 GID.
	intRange("ms_async_rdma_gid_idx", c.RDMAGIDIdx, -1, 255)
	// A registered chunk length is a u32.
	intRange("ms_async_rdma_buffer_size", c.RDMABufferSize, 1, 1<<31)
	atLeast("ms_async_rdma_send_buffers", c.RDMASendBuffers, 1)
	atLeast("ms_async_rdma_receive_buffers", c.RDMAReceiveBuffers, 0)
	atLeast("ms_async_rdma_receive_queue_len", c.RDMAReceiveQueueLen, 1)
	atLeast("ms_async_rdma_polling_us", c.RDMAPollingUS, 0)
	if c.RDMAPollingMode != "worker" && c.RDMAPollingMode != "dispatcher" {
		bad("ms_async_rdma_polling_mode", "%q is not worker or dispatcher", c.RDMAPollingMode)
	}
	// IB service level is 4 bits; traffic_class (Ceph's "dscp") a byte.
	intRange("ms_async_rdma_sl", c.RDMASL, 0, 15)
	intRange("ms_async_rdma_dscp", c.RDMADSCP, 0, 255)
	switch c.RDMAType {
	case "ib":
	case "iwarp":
		// Ceph's iWARP sockets are built on rdma_cm and its QPs are only
		// created through rdma_cm when ms_async_rdma_cm is set; Ceph does not
		// check the combination and fails later, we reject it up front.
		if !c.RDMACM {
			bad("ms_async_rdma_type", "iwarp requires ms_async_rdma_cm = true")
		}
	default:
		bad("ms_async_rdma_type", "%q is not ib or iwarp", c.RDMAType)
	}
	atLeast("ms_async_rdma_count_trigger", c.RDMACountTrigger, 1)
	atLeast("ms_async_rdma_send_msg_size", c.RDMASendMsgSize, 0)

	atLeast("ms_tcp_listen_backlog", c.TCPListenBacklog, 1)
	atLeast("ms_tcp_rcvbuf", c.TCPRcvBuf, 0)

	if c.ConnectionReadyTimeout <= 0 {
		bad("ms_connection_ready_timeout", "%v must be positive", c.ConnectionReadyTimeout)
	}
	nonNegDur("ms_connection_idle_timeout", c.ConnectionIdleTimeout)
	nonNegDur("ms_keepalive_interval", c.KeepaliveInterval)
	if c.KeepaliveInterval > 0 && c.ConnectionIdleTimeout > 0 && c.KeepaliveInterval >= c.ConnectionIdleTimeout {
		bad("ms_keepalive_interval", "%v must be shorter than ms_connection_idle_timeout %v", c.KeepaliveInterval, c.ConnectionIdleTimeout)
	}
	if c.InitialBackoff <= 0 {
		bad("ms_initial_backoff", "%v must be positive", c.InitialBackoff)
	}
	if c.MaxBackoff < c.InitialBackoff {
		bad("ms_max_backoff", "%v is less than ms_initial_backoff %v", c.MaxBackoff, c.InitialBackoff)
	}
	// A msgr2 segment length is a le32.
	intRange("ms_max_frame_segment", c.MaxFrameSegment, 1, 1<<32-1)
	c.validateAuth(bad)
	c.validateThrottles(bad)
	c.validateInject(bad)
	return errors.Join(errs...)
}
