package verbs

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

type fakeObj struct{ n *node }

func newFake(t *testing.T, log *[]string, name string, parents ...*node) *fakeObj {
	t.Helper()
	n, err := newNode("create "+name, parents...)
	require.NoError(t, err)
	o := &fakeObj{n: n}
	arm(n, o, func() error { *log = append(*log, name); return nil })
	return o
}

func TestNodeLifecycle(t *testing.T) {
	var log []string
	ctx := newFake(t, &log, "ctx")
	pd := newFake(t, &log, "pd", ctx.n)
	cq := newFake(t, &log, "cq", ctx.n)
	qp := newFake(t, &log, "qp", pd.n, cq.n)

	// Parents refuse to close while children are open.
	for _, o := range []*fakeObj{ctx, pd, cq} {
		err := o.n.close("close")
		require.ErrorIs(t, err, ErrBusy)
		require.ErrorIs(t, err, syscall.EBUSY)
	}
	require.Empty(t, log)

	require.NoError(t, qp.n.close("qp"))
	require.NoError(t, qp.n.close("qp")) // idempotent
	require.NoError(t, pd.n.close("pd"))
	require.NoError(t, cq.n.close("cq"))
	require.NoError(t, ctx.n.close("ctx"))
	require.Equal(t, []string{"qp", "pd", "cq", "ctx"}, log)

	// Creating under a closed parent fails with net.ErrClosed.
	_, err := newNode("ibv_alloc_pd", ctx.n)
	require.ErrorIs(t, err, net.ErrClosed)

	var nilNode *node
	require.NoError(t, nilNode.close("x"))
	require.True(t, nilNode.isClosed())
}

func TestNodeDestroyErrorKeepsOpen(t *testing.T) {
	n, err := newNode("x")
	require.NoError(t, err)
	fail := true
	o := &fakeObj{n: n}
	arm(n, o, func() error {
		if fail {
			return syscall.EIO
		}
		return nil
	})
	err = n.close("ibv_destroy_cq")
	require.ErrorIs(t, err, syscall.EIO)
	require.Contains(t, err.Error(), "ibv_destroy_cq")
	require.False(t, n.isClosed())
	fail = false
	require.NoError(t, n.close("ibv_destroy_cq"))
	require.True(t, n.isClosed())
}

// The backstop destroys an abandoned parent only after its children are gone.
func TestNodeAbandonWaitsForChildren(t *testing.T) {
	var log []string
	parent := newFake(t, &log, "parent")
	child := newFake(t, &log, "child", parent.n)
	parent.n.abandon()
	require.Empty(t, log)
	require.NoError(t, child.n.close("child"))
	require.Equal(t, []string{"child", "parent"}, log)
	require.True(t, parent.n.isClosed())

	// Failed creation detaches from the parents.
	p2 := newFake(t, &log, "p2")
	n, err := newNode("c", p2.n)
	require.NoError(t, err)
	n.detach()
	require.NoError(t, p2.n.close("p2"))
	require.True(t, errors.Is(closedErr("x"), net.ErrClosed))
}
