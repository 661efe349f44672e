package dispatcher

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// TestCQsGrowWithQPs: the shared CQs start sized for one QP and grow as QPs
// are created, so that every completion the QPs can produce while nobody
// polls still fits: the pool's TX chunks and each QP's chunk-less WRs on the
// TX CQ, every posted receive on the RX CQ. Had they kept their first size,
// the CQs would overrun (completions lost, the QPs in error).
func TestCQsGrowWithQPs(t *testing.T) {
	opts := testOptions(t)
	opts.CQDepth = 0
	opts.SupportSRQ = false
	opts.SendBuffers, opts.RecvQueueLen = 64, 32
	d := openDispatcher(t, opts)
	tx0, rx0 := d.txCQ.Size(), d.rxCQ.Size()
	require.GreaterOrEqual(t, tx0, d.txNeed(1))
	require.GreaterOrEqual(t, rx0, d.rxNeed(1))

	const pairs, data, ctl = 8, 8, CtlWRsPerQP
	var senders, receivers []*recvConn
	for range pairs {
		s, r := newRecvConn(t, d), newRecvConn(t, d)
		connectPair(t, d, s.h, r.h)
		senders, receivers = append(senders, s), append(receivers, r)
	}
	require.GreaterOrEqual(t, d.txCQ.Size(), d.txNeed(2*pairs))
	require.GreaterOrEqual(t, d.rxCQ.Size(), d.rxNeed(2*pairs))
	require.Greater(t, pairs*(data+ctl), tx0, "the test must outgrow the first TX CQ")
	require.Greater(t, pairs*(data+ctl), rx0, "the test must outgrow the first RX CQ")
	require.NotZero(t, d.Stats().CQResizes)

	// Every sender's whole share of the TX pool and its chunk-less WRs,
	// with the poller not running: the completions pile up in the CQs.
	for _, s := range senders {
		for range data {
			send(t, d, s.h, []byte("data"))
		}
		wrs := make([]verbs.WorkRequest, ctl)
		for i := range wrs {
			wrs[i] = verbs.WorkRequest{ID: CtlID(), Opcode: verbs.OpSend, Flags: verbs.SendSignaled}
		}
		s.h.AddInflight(ctl)
		n, err := s.h.QP().PostSend(wrs)
		require.NoError(t, err)
		require.Equal(t, ctl, n)
	}
	d.Start()
	for i, r := range receivers {
		testenv.WaitFor(t, 30*time.Second, "every message", func() bool { return r.count() == data+ctl }, nil)
		r.mu.Lock()
		require.Empty(t, r.faults, "receiver %d", i)
		r.mu.Unlock()
	}
	testenv.WaitFor(t, 10*time.Second, "TX completions", func() bool { return d.TX().Stats().InUse == 0 }, nil)
	for i, s := range senders {
		s.mu.Lock()
		require.Empty(t, s.faults, "sender %d", i)
		s.mu.Unlock()
		require.Zero(t, s.h.Inflight(), "sender %d", i)
	}
	st := d.Stats()
	require.Equal(t, uint64(pairs*(data+ctl)), st.RXCompletions)
	require.Zero(t, st.AsyncEvents, "no CQ error")
	t.Logf("TX CQ %d -> %d, RX CQ %d -> %d entries, %d resizes", tx0, d.txCQ.Size(), rx0, d.rxCQ.Size(), st.CQResizes)
}
