package verbs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestResizeCQKeepsCompletions: completions waiting in a small send CQ
// survive its growth, and the grown CQ then holds more completions than the
// old size at once (a CQ overrun would move the QPs to error instead).
func TestResizeCQKeepsCompletions(t *testing.T) {
	e := newEnv(t)
	small, err := e.ctx.CreateCQ(16, nil, 0)
	require.NoError(t, err)
	e.own(small.Close)
	old := small.Size()
	require.GreaterOrEqual(t, old, 16)
	const many = 200
	require.Greater(t, many, old)
	a := e.qp(t, QPInitAttr{SendCQ: small, MaxSendWR: many + 8})
	b := e.qp(t, QPInitAttr{MaxRecvWR: many + 8})
	e.connect(t, a, b, nil)

	recvs := make([]RecvRequest, many+8)
	for i := range recvs {
		recvs[i] = RecvRequest{ID: uint64(i), SG: []SGE{e.mr.SGE(0, 64)}}
	}
	_, err = b.PostRecv(recvs)
	require.NoError(t, err)
	send := func(first, n int) {
		t.Helper()
		wrs := make([]WorkRequest, n)
		for i := range wrs {
			wrs[i] = WorkRequest{ID: uint64(first + i), Opcode: OpSend, Flags: SendSignaled, SG: []SGE{e.mr.SGE(4096, 8)}}
		}
		posted, err := a.PostSend(wrs)
		require.NoError(t, err)
		require.Equal(t, n, posted)
	}
	ids := func(wcs []WorkCompletion) []uint64 {
		var out []uint64
		for _, wc := range wcs {
			require.NoError(t, wc.Err())
			out = append(out, wc.ID)
		}
		return out
	}
	seq := func(first, n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = uint64(first + i)
		}
		return out
	}

	// 8 sends delivered: their send completions wait in the small CQ.
	send(0, 8)
	waitWC(t, e.rcq, 8)
	require.NoError(t, small.Resize(4*many))
	require.GreaterOrEqual(t, small.Size(), 4*many)
	require.Equal(t, seq(0, 8), ids(waitWC(t, small, 8)))

	// More sends than the old size outstanding at once, none polled until
	// all were delivered.
	send(8, many)
	waitWC(t, e.rcq, many)
	require.Equal(t, seq(8, many), ids(waitWC(t, small, many)))
	requireNoWC(t, small)
	st, err := a.State()
	require.NoError(t, err)
	require.Equal(t, QPStateRTS, st)

	require.NoError(t, a.Close())
	require.NoError(t, small.Close())
	require.ErrorContains(t, small.Resize(64), "ibv_resize_cq")
}
