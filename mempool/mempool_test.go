package mempool

import (
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/tests/hugetest/hugeinfo"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

func testPD(t *testing.T) *verbs.PD {
	t.Helper()
	if !verbs.Supported {
		testenv.Missing(t, "RDMA: built without cgo")
	}
	ctx, err := verbs.Open(testenv.RequireRDMA(t).Name)
	require.NoError(t, err)
	pd, err := ctx.AllocPD()
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, pd.Close())
		require.NoError(t, ctx.Close())
	})
	return pd
}

func TestTXCluster(t *testing.T) {
	pd := testPD(t)
	tests := []struct {
		name       string
		chunk, cnt int
		huge       bool
	}{
		{"small", 4096, 16, false},
		{"ceph-like", 128 << 10, 32, false},
		{"hugepage fallback", 64 << 10, 8, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewTX(pd, Options{ChunkSize: tc.chunk, Count: tc.cnt, HugePages: tc.huge})
			require.NoError(t, err)
			defer func() { require.NoError(t, p.Close()); require.NoError(t, p.Close()) }()
			st := p.Stats()
			require.Equal(t, tc.cnt, st.Chunks)
			require.Equal(t, 1, st.Blocks, "one region, one MR")
			got := make([]uint32, tc.cnt+5)
			n := p.Get(got, false)
			require.Equal(t, tc.cnt, n)
			seen := map[uint32]bool{}
			var prev verbs.SGE
			for i, idx := range got[:n] {
				require.False(t, seen[idx])
				seen[idx] = true
				sge := p.SGE(idx, 10)
				require.Equal(t, uint32(10), sge.Length)
				if i > 0 {
					require.Equal(t, prev.LKey, sge.LKey, "single MR")
				}
				prev = sge
				b := p.Bytes(idx)
				require.Len(t, b, tc.chunk)
				b[0], b[tc.chunk-1] = byte(idx), byte(idx)
				ci, off, ok := p.Contains(b[5:9])
				require.True(t, ok)
				require.Equal(t, idx, ci)
				require.Equal(t, 5, off)
			}
			require.Equal(t, tc.cnt, p.Stats().InUse)
			require.Zero(t, p.Get(got[:1], false), "exhausted")
			require.Equal(t, uint64(1), p.Stats().Exhaustions)
			p.Put(got[:n]...)
			require.Zero(t, p.Stats().InUse)
			_, _, ok := p.Contains(make([]byte, 8))
			require.False(t, ok, "Go memory is not in the pool")
		})
	}
}

func TestRXGrowsToCap(t *testing.T) {
	pd := testPD(t)
	p, err := NewRX(pd, Options{ChunkSize: 4096, Count: 40, BlockChunks: 16})
	require.NoError(t, err)
	defer p.Close()
	require.Equal(t, 16, p.Stats().Chunks)
	all := make([]uint32, 64)
	n := p.Get(all, true)
	require.Equal(t, 40, n, "grows in blocks up to the cap")
	st := p.Stats()
	require.Equal(t, 3, st.Blocks)
	require.Equal(t, 40, st.Chunks)
	require.Zero(t, p.Get(all[:1], true))
	p.Put(all[:n]...)

	unl, err := NewRX(pd, Options{ChunkSize: 4096, Count: 0, BlockChunks: 8})
	require.NoError(t, err)
	defer unl.Close()
	require.Equal(t, 100, unl.Get(make([]uint32, 100), true), "0 = unlimited")
}

func TestConcurrentGetPut(t *testing.T) {
	pd := testPD(t)
	p, err := NewTX(pd, Options{ChunkSize: 4096, Count: 64})
	require.NoError(t, err)
	defer p.Close()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]uint32, 4)
			for i := 0; i < 2000; i++ {
				n := p.Get(buf, false)
				p.Put(buf[:n]...)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 64, p.Free())
	require.Zero(t, p.Stats().InUse)
}

func TestCheckMemlockMessage(t *testing.T) {
	err := CheckMemlock(1 << 62)
	if err == nil {
		t.Log("RLIMIT_MEMLOCK is unlimited here")
		return
	}
	require.ErrorIs(t, err, verbs.ErrMemlockTooLow)
	require.ErrorContains(t, err, "ulimit -l")
}

func TestBadOptions(t *testing.T) {
	_, err := NewTX(nil, Options{ChunkSize: 0, Count: 4})
	require.Error(t, err)
	_, err = NewRX(nil, Options{ChunkSize: -1})
	require.Error(t, err)
}

// exercise takes every chunk, writes both ends of each through Bytes and
// checks SGE and Contains agree, then gives them back.
func exercise(t *testing.T, p *Pool, grow bool) {
	t.Helper()
	all := make([]uint32, p.Stats().Chunks+64)
	n := p.Get(all, grow)
	require.Positive(t, n)
	for _, idx := range all[:n] {
		b := p.Bytes(idx)
		require.Len(t, b, p.ChunkSize())
		b[0], b[len(b)-1] = byte(idx), byte(idx>>8)
		sge := p.SGE(idx, 7)
		require.Equal(t, uint64(uintptr(unsafe.Pointer(&b[0]))), sge.Addr)
		ci, off, ok := p.Contains(b[3:5])
		require.True(t, ok)
		require.Equal(t, idx, ci)
		require.Equal(t, 3, off)
	}
	p.Put(all[:n]...)
}

// Pools on reserved huge pages: the pages are taken while the pools are
// open and given back on Close; an RX block grown after the reservation ran
// out falls back to normal pages and the counters say so.
func TestHugePagePools(t *testing.T) {
	pd := testPD(t)
	const chunk = 64 << 10
	hugeinfo.Reserve(t, 4)
	before := hugeinfo.Free(t)
	require.Equal(t, 4, before)

	// 40 x 64 KiB = 2.5 MiB: one region of 2 huge pages.
	tx, err := NewTX(pd, Options{ChunkSize: chunk, Count: 40, HugePages: true})
	require.NoError(t, err)
	st := tx.Stats()
	require.True(t, st.HugePages)
	require.Equal(t, "hugetlb", st.Memory())
	require.Equal(t, 1, st.HugeBlocks)
	require.Equal(t, int64(2*HugePageSize), st.Bytes, "rounded up to whole huge pages")
	require.Equal(t, 40, st.Chunks, "the chunk count is the configured one")
	require.Zero(t, tx.SGE(0, 1).Addr%HugePageSize, "the cluster starts on a huge page")
	require.Equal(t, before-2, hugeinfo.Free(t))
	exercise(t, tx, false)

	// RX blocks of 32 x 64 KiB = one huge page each, up to 3 blocks.
	rx, err := NewRX(pd, Options{ChunkSize: chunk, Count: 96, BlockChunks: 32, HugePages: true})
	require.NoError(t, err)
	require.Equal(t, before-3, hugeinfo.Free(t))
	require.Equal(t, "hugetlb", rx.Stats().Memory())
	exercise(t, rx, true) // grows to 3 blocks: the 3rd finds no page left
	st = rx.Stats()
	require.Equal(t, 3, st.Blocks)
	require.Equal(t, 96, st.Chunks)
	require.Equal(t, 2, st.HugeBlocks)
	require.False(t, st.HugePages)
	require.Equal(t, "mixed", st.Memory())
	require.Equal(t, int64(3*HugePageSize), st.Bytes)
	during := hugeinfo.Free(t)
	t.Logf("HugePages_Free before %d, with both pools open %d", before, during)
	require.Zero(t, during)

	require.NoError(t, rx.Close())
	require.Equal(t, before-2, hugeinfo.Free(t))
	require.NoError(t, tx.Close())
	require.NoError(t, tx.Close(), "idempotent")
	after := hugeinfo.Free(t)
	t.Logf("HugePages_Free after Close %d", after)
	require.Equal(t, before, after)
	require.Zero(t, tx.Stats().Blocks)
}

// With no huge pages reserved a pool that asks for them gets normal pages
// and works.
func TestHugePageFallback(t *testing.T) {
	pd := testPD(t)
	hugeinfo.Reserve(t, 0)
	fb := verbs.HugeFallbacks()
	tests := []struct {
		name string
		mk   func() (*Pool, error)
		grow bool
	}{
		{"tx", func() (*Pool, error) { return NewTX(pd, Options{ChunkSize: 8 << 10, Count: 100, HugePages: true}) }, false},
		{"rx", func() (*Pool, error) {
			return NewRX(pd, Options{ChunkSize: 8 << 10, Count: 64, BlockChunks: 16, HugePages: true})
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.mk()
			require.NoError(t, err)
			defer func() { require.NoError(t, p.Close()) }()
			exercise(t, p, tc.grow)
			st := p.Stats()
			require.False(t, st.HugePages)
			require.Zero(t, st.HugeBlocks)
			require.Equal(t, "normal", st.Memory())
			require.Equal(t, int64(st.Chunks*p.ChunkSize()), st.Bytes, "normal pages are not rounded up")
			require.Equal(t, fb+uint64(st.Blocks), verbs.HugeFallbacks(), "every block asked for huge pages first")
			fb = verbs.HugeFallbacks()
		})
	}
}
