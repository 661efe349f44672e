package rdmafault

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

// sampler polls f every millisecond on its own goroutine until stopped.
func sampler(f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				f()
				return
			case <-tk.C:
				f()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// raise keeps in m the largest value it is given (m is written by one
// sampler only).
func raise[T int64 | uint64](m interface {
	Load() T
	Store(T)
}, v T) {
	if v > m.Load() {
		m.Store(v)
	}
}

// poolPair starts a server on device A, whose messages go to got (checked
// for order), and a client, both with 16 KiB RDMA buffers and what srvCfg
// and cliCfg (when not nil) change.
func poolPair(t *testing.T, srvCfg, cliCfg func(*config.Config)) (srv, cli *endpoint, got *inOrder) {
	t.Helper()
	devA := rdmatest.DeviceA(t)
	cfg := func(tweak func(*config.Config)) *config.Config {
		c := rdmatest.Config(devA)
		c.RDMABufferSize = 16 << 10
		if tweak != nil {
			tweak(c)
		}
		return c
	}
	got = &inOrder{}
	srv = newEndpoint(t, cfg(srvCfg), osdName(1), devA.Addr(0), &sink{onMsg: got.take})
	cli = newEndpoint(t, cfg(cliCfg), clientName(1), "", &sink{onMsg: func(*msgr.Message) {}})
	return srv, cli, got
}

// streamInOrder connects cli to srv and sends total messages (message id
// sized by sizeFor(id, lo, hi)), then waits up to within until got has
// them all, saying what when it does not; it returns the connection.
func streamInOrder(t *testing.T, cli, srv *endpoint, got *inOrder, total uint64, lo, hi int, within time.Duration, what string) *msgr.Connection {
	t.Helper()
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	for id := uint64(0); id < total; id++ {
		require.NoError(t, c.SendMessage(&msgr.Message{Type: typeData, Front: payload(id, sizeFor(id, lo, hi))}))
	}
	rdmatest.WaitFor(t, within, what, func() bool { return got.count() == total },
		func() string {
			return fmt.Sprintf("server got %d (%v); conn %+v err %v; client rdma %s; server rdma %s",
				got.count(), got.problems(), c.Stats(), c.Err(), rdmaSummary(cli.rs), rdmaSummary(srv.rs))
		})
	return c
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestTXPoolOf8Chunks sends a burst of 10k messages through a client whose
// TX pool has 8 chunks (ms_async_rdma_send_buffers = 8): the pool runs dry
// (backpressure is exercised, Ceph's tx_no_mem), never grows and never has
// more than 8 chunks out, the heap stays bounded, and every message arrives
// once, in order, intact.
func TestTXPoolOf8Chunks(t *testing.T) {
	const total = 10000
	const chunks = 8
	srv, cli, got := poolPair(t, nil, func(cfg *config.Config) { cfg.RDMASendBuffers = chunks })
	require.Equal(t, chunks, cli.rs.TXPool().Stats().Chunks)

	runtime.GC()
	heapBefore := heapInUse()
	var maxInUse, maxChunks, maxInflight atomic.Int64
	var peakHeap atomic.Uint64
	n := 0
	stop := sampler(func() {
		ps := cli.rs.TXPool().Stats()
		raise(&maxInUse, int64(ps.InUse))
		raise(&maxChunks, int64(ps.Chunks))
		raise(&maxInflight, int64(cli.rs.Stats().InflightTXChunks))
		if n++; n%20 == 0 {
			raise(&peakHeap, heapInUse())
		}
	})
	c := streamInOrder(t, cli, srv, got, total, 16, 2<<10, 180*time.Second, "the 10k-message burst")
	stop()
	require.Empty(t, got.problems())
	st := cli.rs.Stats()
	ps := cli.rs.TXPool().Stats()
	t.Logf("TX pool: chunks %d, max in use %d, max inflight %d, exhaustions %d; tx no-mem %d partial %d; posts %d carrying %d WRs; conn %+v",
		ps.Chunks, maxInUse.Load(), maxInflight.Load(), ps.Exhaustions, st.TxNoMem, st.TxPartialMem, st.Posts, st.PostedWRs, c.Stats())
	require.EqualValues(t, chunks, maxChunks.Load(), "the TX pool grew")
	require.LessOrEqual(t, maxInUse.Load(), int64(chunks))
	require.LessOrEqual(t, maxInflight.Load(), int64(chunks))
	require.Positive(t, maxInUse.Load(), "the sampler never saw a chunk in use")
	require.Positive(t, ps.Exhaustions+st.TxNoMem+st.TXExhaustions, "the 8-chunk pool never ran dry: backpressure was not exercised")

	// the messages are acknowledged and released: the heap returns near its start
	rdmatest.WaitFor(t, 30*time.Second, "chunks back in the pool", func() bool { return cli.rs.TXPool().Stats().InUse == 0 }, nil)
	runtime.GC()
	heapAfter := heapInUse()
	t.Logf("heap in use: before %d KiB, peak %d KiB, after %d KiB", heapBefore>>10, peakHeap.Load()>>10, heapAfter>>10)
	const bound = 64 << 20
	require.Less(t, int64(peakHeap.Load())-int64(heapBefore), int64(bound), "heap grew by more than %d MiB during the burst", bound>>20)
	require.Less(t, int64(heapAfter)-int64(heapBefore), int64(16<<20), "heap did not come back after the burst")
}

// TestRXPoolCapped caps the server's receive buffers far below the traffic
// (ms_async_rdma_receive_buffers = 32, receive queue 16): the pool never
// exceeds its cap and the stream still completes, once, in order, intact.
func TestRXPoolCapped(t *testing.T) {
	const total = 600
	const rxCap = 32
	srv, cli, got := poolPair(t, func(cfg *config.Config) {
		cfg.RDMAReceiveBuffers = rxCap
		cfg.RDMAReceiveQueueLen = 16
	}, nil)
	var maxBufs, maxInUse atomic.Int64
	stop := sampler(func() {
		st := srv.rs.Stats()
		raise(&maxBufs, int64(st.RXBuffers))
		raise(&maxInUse, int64(st.RXBuffersInUse))
	})
	c := streamInOrder(t, cli, srv, got, total, 1, 32<<10, 120*time.Second, "the stream through a capped RX pool")
	stop()
	require.Empty(t, got.problems())
	st := srv.rs.Stats()
	t.Logf("server RX: max buffers %d, max in use %d, deficit %d, rx completions %d; conn %+v",
		maxBufs.Load(), maxInUse.Load(), st.RXDeficit, st.RXCompletions, c.Stats())
	require.LessOrEqual(t, maxBufs.Load(), int64(rxCap), "RX pool above ms_async_rdma_receive_buffers")
	require.Positive(t, maxBufs.Load())
	require.Greater(t, st.RXCompletions, uint64(rxCap), "the traffic never needed more receive buffers than the cap")
}
