//go:build linux && cgo

package verbs

import (
	"context"
	"log/slog"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/tests/hugetest"
)

func TestParseHugePageInfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    HugePageInfo
		wantErr string
	}{
		{"debian 6.1", "MemTotal:        4020380 kB\nAnonHugePages:         0 kB\nHugePages_Total:       8\n" +
			"HugePages_Free:        6\nHugePages_Rsvd:        1\nHugePages_Surp:        0\nHugepagesize:       2048 kB\n" +
			"Hugetlb:           16384 kB\n",
			HugePageInfo{Total: 8, Free: 6, Rsvd: 1, PageSize: 2 << 20}, ""},
		{"no rsvd/surp lines", "HugePages_Total: 0\nHugePages_Free: 0\nHugepagesize: 1048576 kB\n",
			HugePageInfo{PageSize: 1 << 30}, ""},
		{"no hugetlbfs", "MemTotal: 1 kB\nMemFree: 1 kB\n", HugePageInfo{}, "no huge page counters"},
		{"missing free", "HugePages_Total: 2\nHugepagesize: 2048 kB\n", HugePageInfo{}, "no huge page counters"},
		{"unit on a count", "HugePages_Total: 2 kB\nHugePages_Free: 0\nHugepagesize: 2048 kB\n", HugePageInfo{}, "bad HugePages_Total"},
		{"size without unit", "HugePages_Total: 2\nHugePages_Free: 0\nHugepagesize: 2048\n", HugePageInfo{}, "bad Hugepagesize"},
		{"negative", "HugePages_Total: -1\nHugePages_Free: 0\nHugepagesize: 2048 kB\n", HugePageInfo{}, "HugePages_Total"},
		{"huge size", "HugePages_Total: 1\nHugePages_Free: 0\nHugepagesize: 2147483647 kB\n", HugePageInfo{}, "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHugePageInfo([]byte(tc.in))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func FuzzParseHugePageInfo(f *testing.F) {
	f.Add([]byte("HugePages_Total: 8\nHugePages_Free: 6\nHugePages_Rsvd: 1\nHugePages_Surp: 0\nHugepagesize: 2048 kB\n"))
	f.Add([]byte("HugePages_Total:\nHugepagesize: kB\n"))
	f.Add([]byte("Hugepagesize: 99999999999 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ParseHugePageInfo(b)
		if err != nil {
			require.Zero(t, info)
			return
		}
		require.GreaterOrEqual(t, info.Total, 0)
		require.GreaterOrEqual(t, info.Free, 0)
		require.GreaterOrEqual(t, info.Rsvd, 0)
		require.GreaterOrEqual(t, info.Surp, 0)
		require.Zero(t, info.PageSize%1024, "Hugepagesize is in kB")
	})
}

// reserveHugePages reserves n huge pages for the test (restored after)
// and returns the huge page counters then.
func reserveHugePages(t *testing.T, n int) HugePageInfo {
	t.Helper()
	hugetest.Reserve(t, n)
	info, err := ReadHugePageInfo()
	require.NoError(t, err)
	require.Equal(t, HugePageSize, info.PageSize, "default huge page size")
	require.Equal(t, n, info.Total, "kernel reserved %d huge pages, asked for %d", info.Total, n)
	t.Logf("vm.nr_hugepages=%d: %+v", n, info)
	return info
}

func hugeFree(t *testing.T) int {
	t.Helper()
	info, err := ReadHugePageInfo()
	require.NoError(t, err)
	return info.Free
}

// A region on reserved huge pages takes whole pages from the pool while it
// is open and gives them back on Close.
func TestRegRegionHugePages(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name      string
		reserve   int
		size      int
		wantPages int
	}{
		{"one byte, one page", 2, 1, 1},
		{"3 MiB+1 rounds up to 2 pages", 4, 3<<20 + 1, 2},
		{"exactly the reservation", 3, 3 * HugePageSize, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := reserveHugePages(t, tc.reserve).Free
			require.Equal(t, tc.reserve, before)
			r, err := e.pd.RegRegion(tc.size, AccessLocalWrite|AccessRemoteWrite, true, nil)
			require.NoError(t, err)
			require.True(t, r.Huge())
			require.NoError(t, r.FallbackReason())
			require.Equal(t, tc.wantPages*HugePageSize, r.Len())
			require.Equal(t, r.Len(), r.MR().Len(), "one MR over the whole region")
			require.Zero(t, r.Buffer().Addr()%HugePageSize, "huge-page aligned")
			during := hugeFree(t)
			t.Logf("HugePages_Free before %d, while open %d", before, during)
			require.Equal(t, before-tc.wantPages, during, "MAP_POPULATE faulted the pages in")
			b := r.Bytes()
			b[0], b[len(b)-1] = 1, 2 // writable end to end
			require.NoError(t, r.Close())
			require.NoError(t, r.Close(), "idempotent")
			require.Nil(t, r.Bytes())
			after := hugeFree(t)
			t.Logf("HugePages_Free after Close %d", after)
			require.Equal(t, before, after, "munmap returned the pages")
		})
	}
	var nilRegion *Region
	require.NoError(t, nilRegion.Close())
	require.False(t, nilRegion.Huge())
}

// With no (or too few) huge pages reserved, a region falls back to normal
// pages, says why and logs it.
func TestRegRegionHugeFallback(t *testing.T) {
	e := newEnv(t)
	var logged []string
	log := slog.New(msgRecorder{&logged})
	tests := []struct {
		name    string
		reserve int
		size    int
		advice  string
	}{
		{"none reserved", 0, 1 << 20, "sysctl vm.nr_hugepages=1`"},
		{"too few reserved", 1, 5 << 20, "sysctl vm.nr_hugepages=3`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reserveHugePages(t, tc.reserve)
			logged = nil
			fb := HugeFallbacks()
			r, err := e.pd.RegRegion(tc.size, AccessLocalWrite, true, log)
			require.NoError(t, err)
			defer func() { require.NoError(t, r.Close()) }()
			require.False(t, r.Huge())
			require.Equal(t, tc.size, r.Len(), "normal pages are not rounded to huge pages")
			require.ErrorIs(t, r.FallbackReason(), syscall.ENOMEM)
			require.ErrorContains(t, r.FallbackReason(), tc.advice)
			require.Equal(t, fb+1, HugeFallbacks())
			require.Len(t, logged, 1)
			require.Contains(t, logged[0], "using normal pages")
			require.Contains(t, logged[0], tc.advice)
			require.Equal(t, tc.reserve, hugeFree(t), "a failed MAP_HUGETLB takes no page")
			// The fallback memory is registered and usable.
			b := r.Bytes()
			b[0], b[len(b)-1] = 3, 4
			require.Equal(t, r.Len(), r.MR().Len())
		})
	}
	t.Run("normal pages asked for", func(t *testing.T) {
		logged = nil
		r, err := e.pd.RegRegion(5000, AccessLocalWrite, false, log)
		require.NoError(t, err)
		require.False(t, r.Huge())
		require.NoError(t, r.FallbackReason())
		require.Equal(t, 5000, r.Len())
		require.Empty(t, logged)
		require.NoError(t, r.Close())
	})
	t.Run("bad size", func(t *testing.T) {
		_, err := e.pd.RegRegion(0, AccessLocalWrite, true, nil)
		require.ErrorIs(t, err, syscall.EINVAL)
	})
}

// RDMA WRITE into, and SEND out of, a huge-page backed MR, across the 2 MiB
// page boundary.
func TestRegRegionHugeTraffic(t *testing.T) {
	e := newEnv(t)
	reserveHugePages(t, 2)
	r, err := e.pd.RegRegion(2*HugePageSize, AccessLocalWrite|AccessRemoteWrite, true, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	require.True(t, r.Huge())
	a, b := e.pair(t, nil)
	const n = 256 << 10
	off := HugePageSize - n/2 // straddles the two huge pages
	src := e.mr.Bytes()[:n]
	fillRandom(src, 21)
	_, err = a.PostSend([]WorkRequest{{ID: 1, Opcode: OpRDMAWrite, Flags: SendSignaled,
		SG: []SGE{e.mr.SGE(0, n)}, RemoteAddr: r.MR().Addr() + uint64(off), RKey: r.MR().RKey()}})
	require.NoError(t, err)
	require.NoError(t, waitWC(t, e.scq, 1)[0].Err())
	require.Equal(t, src, r.Bytes()[off:off+n], "RDMA WRITE landed in huge pages")

	// SEND from the huge region (its lkey) into the plain MR.
	fillRandom(r.Bytes()[off:off+n], 22)
	clear(e.mr.Bytes()[:n])
	_, err = b.PostRecv([]RecvRequest{{ID: 2, SG: []SGE{e.mr.SGE(0, n)}}})
	require.NoError(t, err)
	_, err = a.PostSend([]WorkRequest{{ID: 3, Opcode: OpSend, Flags: SendSignaled,
		SG: []SGE{r.MR().SGE(off, n)}}})
	require.NoError(t, err)
	wc := waitWC(t, e.rcq, 1)[0]
	require.NoError(t, wc.Err())
	require.Equal(t, uint32(n), wc.ByteLen)
	require.NoError(t, waitWC(t, e.scq, 1)[0].Err())
	require.Equal(t, r.Bytes()[off:off+n], e.mr.Bytes()[:n], "SEND gathered from huge pages")
	require.ErrorIs(t, r.Buffer().Free(), ErrBusy, "the MR still covers it")
}

// msgRecorder is a slog handler that keeps the messages of every level.
type msgRecorder struct{ msgs *[]string }

func (h msgRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h msgRecorder) Handle(_ context.Context, r slog.Record) error {
	*h.msgs = append(*h.msgs, r.Message)
	return nil
}
func (h msgRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h msgRecorder) WithGroup(string) slog.Handler      { return h }
