package rdmastack

import (
	"github.com/asyncmsgr/asyncmsgr/perfcounters"
)

// RegisterPerf adds the stack's counters to reg as the set
// "AsyncMessenger::RDMADispatcher", under the names of Ceph's l_msgr_rdma_*
// perf counters where Ceph has one (msgr.PerfRegistrar). They are read
// through from the dispatcher's atomics at dump time.
func (s *Stack) RegisterPerf(reg *perfcounters.Registry) {
	set := reg.Set("AsyncMessenger::RDMADispatcher")
	c := &s.d.C
	for _, v := range []struct {
		name, desc string
		kind       perfcounters.Kind
		f          func() uint64
	}{
		{"polling", "Whether dispatcher thread is polling (times it started)", perfcounters.Counter, c.PollingOn.Load},
		{"tx_total_wc", "The number of tx work completions", perfcounters.Counter, c.TXCompletions.Load},
		{"rx_total_wc", "The number of rx work completions", perfcounters.Counter, c.RXCompletions.Load},
		{"rx_bytes", "The number of rx bytes", perfcounters.Counter, c.RXBytes.Load},
		{"tx_bytes", "The number of tx bytes", perfcounters.Counter, c.TXBytes.Load},
		{"handshake_errors", "The number of handshake errors", perfcounters.Counter, c.HandshakeErrors.Load},
		{"total_async_events", "The number of async events", perfcounters.Counter, c.AsyncEvents.Load},
		{"created_queue_pair", "Active queue pair number (created)", perfcounters.Counter, c.QPsCreated.Load},
		{"tx_no_mem", "The count of no tx buffer", perfcounters.Counter, c.TxNoMem.Load},
		{"tx_parital_mem", "The count of parital tx buffer", perfcounters.Counter, c.TxPartialMem.Load},
		{"tx_posts", "ibv_post_send calls (asyncmsgr)", perfcounters.Counter, c.Posts.Load},
		{"tx_posted_wrs", "Work requests those posts carried (asyncmsgr)", perfcounters.Counter, c.PostedWRs.Load},
		{"rx_deficit", "RX reposts that waited for a free chunk (asyncmsgr)", perfcounters.Counter, c.RXDeficit.Load},
	} {
		set.Func(v.name, v.desc, v.kind, v.f)
	}
	set.Func("active_queue_pair", "Active queue pair number", perfcounters.Gauge, func() uint64 {
		return c.QPsCreated.Load() - c.QPsDestroyed.Load()
	})
	set.Func("inflight_tx_chunks", "The number of inflight tx chunks", perfcounters.Gauge, func() uint64 {
		return uint64(s.d.Stats().InflightTXChunks)
	})
}
