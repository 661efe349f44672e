package mempool

import (
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

func testPD(t *testing.T) *verbs.PD {
	t.Helper()
	dev := os.Getenv("RXE_DEV_A")
	if dev == "" || !verbs.Supported {
		if os.Getenv("CI") != "" {
			t.Fatalf("no RDMA device (RXE_DEV_A unset, cgo=%v): run in soft-roce/vm-run.sh", verbs.Supported)
		}
		t.Skip("no RDMA device (RXE_DEV_A unset): run in soft-roce/vm-run.sh")
	}
	ctx, err := verbs.Open(dev)
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
