package rdmasuite

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/tests/hugetest/hugeinfo"
)

// TestHugePageStack runs traffic through an rdma stack built with
// ms_async_rdma_enable_hugepage=true on reserved huge pages: its TX cluster
// and RX blocks live in MAP_HUGETLB pages while it runs, the bytes arrive
// intact both ways, and the pages return when the stack stops.
func TestHugePageStack(t *testing.T) {
	dev, gid := device(t, "RXE_DEV_A")
	// small(): 256 x 32 KiB TX chunks (8 MiB: 4 pages) and RX blocks of
	// 256 x 32 KiB (4 pages each) up to 2048 chunks (8 blocks): 36 pages
	// cover every block the stack may grow.
	const reserve = 36
	hugeinfo.Reserve(t, reserve)
	before := hugeinfo.Free(t)
	require.Equal(t, reserve, before)

	s := newStack(t, dev, gid, func(cfg *config.Config) { cfg.RDMAEnableHugepage = true })
	tx := s.TXPool().Stats()
	require.True(t, tx.HugePages, "TX cluster memory %s", tx.Memory())
	require.Equal(t, int64(8<<20), tx.Bytes)
	opened := hugeinfo.Free(t)
	t.Logf("HugePages_Free before %d, stack started %d", before, opened)
	require.LessOrEqual(t, opened, before-4-4, "TX cluster (4 pages) and the first RX block (4 pages)")

	c1, c2 := pipe(t, s, "127.0.0.1:0")
	const n = 6 << 20 // 192 TX chunks: most of the cluster, reused every round
	want := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	for round := 0; round < 2; round++ {
		errc := make(chan error, 1)
		go func() {
			_, err := c1.Write(want)
			errc <- err
		}()
		got := make([]byte, n)
		_, err := io.ReadFull(c2, got)
		require.NoError(t, err)
		require.NoError(t, <-errc)
		require.True(t, bytes.Equal(want, got), "round %d: payload differs", round)
		// and back the other way
		go func() {
			_, err := c2.Write(got[:n/3])
			errc <- err
		}()
		back := make([]byte, n/3)
		_, err = io.ReadFull(c1, back)
		require.NoError(t, err)
		require.NoError(t, <-errc)
		require.True(t, bytes.Equal(want[:n/3], back), "round %d: echo differs", round)
	}
	during := hugeinfo.Free(t)
	st := s.Stats()
	t.Logf("HugePages_Free during traffic %d; stack counters %+v", during, st)
	require.Positive(t, st.TXBytes)
	require.Positive(t, st.RXBytes)
	require.True(t, s.TXPool().Stats().HugePages)
	require.NoError(t, c1.Close())
	require.NoError(t, c2.Close())
	require.NoError(t, s.Stop())
	after := hugeinfo.Free(t)
	t.Logf("HugePages_Free after Stop %d", after)
	require.Equal(t, before, after, "every huge page returned")
}
