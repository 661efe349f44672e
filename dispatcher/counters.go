package dispatcher

import (
	"sync/atomic"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// Counters are the dispatcher's counters, after Ceph's l_msgr_rdma_*
// perf counters. Connections add to the TX ones.
type Counters struct {
	PollingOn, PollingOff    atomic.Uint64 // transitions into busy polling / sleep
	TXCompletions            atomic.Uint64
	RXCompletions            atomic.Uint64
	RXBytes                  atomic.Uint64
	CQEvents                 atomic.Uint64
	QPsCreated, QPsDestroyed atomic.Uint64
	HandshakeErrors          atomic.Uint64
	TxNoMem, TxPartialMem    atomic.Uint64
	Posts, PostedWRs         atomic.Uint64 // ibv_post_send calls and the WRs they carried
	TXBytes                  atomic.Uint64
	MergeEnter, MergeLeave   atomic.Uint64
	MergeDeferred            atomic.Uint64
	// MergePosts and MergePostedWRs are the posts made in merge mode and
	// the WRs they carried (each at least the merge target, 3 or more).
	MergePosts, MergePostedWRs atomic.Uint64
	AsyncEvents                atomic.Uint64
	CQResizes                  atomic.Uint64 // CQs grown for more QPs (cqroom.go)
	RXDeficit                  atomic.Uint64 // RX reposts that had to wait for a free chunk
	// RDMA WRITE of large payloads (ms_async_rdma_send_msg_size > 0):
	// WRITE WRs posted and their bytes, receive buffers advertised to
	// peers and advertised by them (one per buffer, initial and again),
	// and sends above the threshold that found no free peer buffer and
	// went by SEND.
	WriteWRs, WriteBytes     atomic.Uint64
	AdvertsSent, AdvertsRecv atomic.Uint64
	WriteFallbacks           atomic.Uint64
	WCErrors                 [32]atomic.Uint64 // by verbs.WCStatus
}

// Stats is a snapshot of the dispatcher's counters and pools.
type Stats struct {
	PollingOn, PollingOff        uint64
	TXCompletions, RXCompletions uint64
	RXBytes, TXBytes             uint64
	CQEvents                     uint64
	QPsCreated, QPsActive        uint64
	QPsDestroyed                 uint64
	HandshakeErrors              uint64
	TxNoMem, TxPartialMem        uint64
	Posts, PostedWRs             uint64
	MergeEnter, MergeLeave       uint64
	MergeDeferred                uint64
	MergePosts, MergePostedWRs   uint64
	AsyncEvents, RXDeficit       uint64
	CQResizes                    uint64
	WriteWRs, WriteBytes         uint64
	AdvertsSent, AdvertsRecv     uint64
	WriteFallbacks               uint64
	InflightTXChunks             int
	RXBuffersInUse, RXBuffers    int
	// RXBlocks and TXBlocks are the pools' registered blocks, one MR each:
	// the RX pool grows by a block when a burst needs more buffers than it
	// has, up to ms_async_rdma_receive_buffers, and keeps it until Stop.
	RXBlocks, TXBlocks int
	TXExhaustions      uint64
	WCErrors           map[string]uint64
}

// WRsPerPost is the average number of send WRs per ibv_post_send.
func (s Stats) WRsPerPost() float64 {
	if s.Posts == 0 {
		return 0
	}
	return float64(s.PostedWRs) / float64(s.Posts)
}

// Stats returns a snapshot of the counters.
func (d *Dispatcher) Stats() Stats {
	s := Stats{
		PollingOn: d.C.PollingOn.Load(), PollingOff: d.C.PollingOff.Load(),
		TXCompletions: d.C.TXCompletions.Load(), RXCompletions: d.C.RXCompletions.Load(),
		RXBytes: d.C.RXBytes.Load(), TXBytes: d.C.TXBytes.Load(), CQEvents: d.C.CQEvents.Load(),
		QPsCreated: d.C.QPsCreated.Load(), QPsDestroyed: d.C.QPsDestroyed.Load(),
		HandshakeErrors: d.C.HandshakeErrors.Load(),
		TxNoMem:         d.C.TxNoMem.Load(), TxPartialMem: d.C.TxPartialMem.Load(),
		Posts: d.C.Posts.Load(), PostedWRs: d.C.PostedWRs.Load(),
		MergeEnter: d.C.MergeEnter.Load(), MergeLeave: d.C.MergeLeave.Load(), MergeDeferred: d.C.MergeDeferred.Load(),
		MergePosts: d.C.MergePosts.Load(), MergePostedWRs: d.C.MergePostedWRs.Load(),
		AsyncEvents: d.C.AsyncEvents.Load(), RXDeficit: d.C.RXDeficit.Load(), CQResizes: d.C.CQResizes.Load(),
		WriteWRs: d.C.WriteWRs.Load(), WriteBytes: d.C.WriteBytes.Load(),
		AdvertsSent: d.C.AdvertsSent.Load(), AdvertsRecv: d.C.AdvertsRecv.Load(),
		WriteFallbacks: d.C.WriteFallbacks.Load(),
		QPsActive:      uint64(d.QPsActive()),
	}
	if d.tx != nil {
		ts := d.tx.Stats()
		s.InflightTXChunks, s.TXExhaustions, s.TXBlocks = ts.InUse, ts.Exhaustions, ts.Blocks
	}
	if d.rx != nil {
		rs := d.rx.Stats()
		s.RXBuffersInUse, s.RXBuffers, s.RXBlocks = rs.InUse, rs.Chunks, rs.Blocks
	}
	for i := range d.C.WCErrors {
		if v := d.C.WCErrors[i].Load(); v > 0 {
			if s.WCErrors == nil {
				s.WCErrors = map[string]uint64{}
			}
			s.WCErrors[verbs.WCStatus(i).String()] = v
		}
	}
	return s
}
