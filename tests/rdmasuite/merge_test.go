package rdmasuite

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/dispatcher"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/rdmastack"
	"github.com/asyncmsgr/asyncmsgr/tests/msgrsuite"
)

// counter counts the small messages of the merging test on the worker
// goroutine and checks they arrive in order.
type counter struct {
	msgr.BaseDispatcher
	n   atomic.Uint64
	bad atomic.Uint64
}

func (c *counter) CanFastDispatch(*msgr.Message) bool { return true }
func (c *counter) FastDispatch(m *msgr.Message) {
	if len(m.Data) < 8 || binary.LittleEndian.Uint64(m.Data) != c.n.Load() {
		c.bad.Add(1)
	}
	c.n.Add(1)
}

// mergeRun sends msgs small messages, each with its own SendMessage from
// the test goroutine (the messenger writes each straight to the rdma socket:
// one flush per message), and returns the client stack's counters' change
// while doing so.
func mergeRun(t *testing.T, dev string, gid int, merge bool, msgs int) dispatcher.Stats {
	t.Helper()
	cfg := msgrsuite.Config("rdma")
	small(cfg, dev, gid)
	cfg.RDMABufferSize = 256 // as rdmaperf msgr_bw --msgr_opt ms_async_rdma_buffer_size=256
	cfg.RDMASendBuffers = 512
	cfg.RDMAReceiveBuffers = 4096
	cfg.RDMASubmitTimeTrigger = merge

	rec := &counter{}
	srv, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 1})
	require.NoError(t, err)
	defer srv.Shutdown()
	srv.SetPolicy(msgr.EntityTypeClient, msgr.StatelessServer())
	srv.AddDispatcherTail(rec)
	require.NoError(t, srv.Bind("127.0.0.1:0"))
	require.NoError(t, srv.Start())

	cli, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: 2})
	require.NoError(t, err)
	defer cli.Shutdown()
	cli.SetPolicy(msgr.EntityTypeOSD, msgr.LosslessClient())
	require.NoError(t, cli.Start())
	conn, err := cli.ConnectTo(msgr.EntityTypeOSD, srv.Addr().String())
	require.NoError(t, err)
	deadline := time.Now().Add(20 * time.Second)
	for !conn.IsConnected() {
		require.True(t, time.Now().Before(deadline), "session ready")
		time.Sleep(time.Millisecond)
	}
	st, ok := cli.Stack().(*rdmastack.Stack)
	require.True(t, ok, "the client messenger runs on the rdma stack")
	before := st.Stats()
	for i := 0; i < msgs; i++ {
		data := make([]byte, 64)
		binary.LittleEndian.PutUint64(data, uint64(i))
		require.NoError(t, conn.SendMessage(&msgr.Message{Type: 0x7103, Tid: uint64(i), Data: data}))
	}
	deadline = time.Now().Add(60 * time.Second)
	for rec.n.Load() < uint64(msgs) {
		require.True(t, time.Now().Before(deadline), "%d of %d messages received", rec.n.Load(), msgs)
		time.Sleep(time.Millisecond)
	}
	require.Zero(t, rec.bad.Load(), "messages out of order or corrupt")
	after := st.Stats()
	return dispatcher.Stats{
		Posts: after.Posts - before.Posts, PostedWRs: after.PostedWRs - before.PostedWRs,
		MergeEnter: after.MergeEnter - before.MergeEnter, MergeDeferred: after.MergeDeferred - before.MergeDeferred,
		MergePosts: after.MergePosts - before.MergePosts, MergePostedWRs: after.MergePostedWRs - before.MergePostedWRs,
	}
}

// TestSendMergingFewerPosts: a stream of small messages, each sent by the
// application goroutine on its own (one socket flush per message), with
// adaptive send-merging (ms_async_rdma_submit_time_trigger) enters merge
// mode and rings one doorbell for at least three WRs whenever it posts
// there; with the trigger off it never merges.
// (How many posts each run makes in all depends on how the completions
// interleave with the sender, which a loaded host changes: on rxe the run
// without merging has made from 0.2 to 1 post per message, so the totals
// are logged, not compared.)
func TestSendMergingFewerPosts(t *testing.T) {
	dev, gid := device(t, "RXE_DEV_A")
	const msgs = 2000
	off := mergeRun(t, dev, gid, false, msgs)
	on := mergeRun(t, dev, gid, true, msgs)
	t.Logf("%d messages: merging off %d posts (%.3f/msg), on %d posts (%.3f/msg; merge mode entered %d times, %d deferrals, %d posts with %d WRs in it)",
		msgs, off.Posts, float64(off.Posts)/msgs, on.Posts, float64(on.Posts)/msgs, on.MergeEnter, on.MergeDeferred, on.MergePosts, on.MergePostedWRs)
	require.Zero(t, off.MergeEnter, "merge mode is never entered with the trigger off")
	require.Zero(t, off.MergeDeferred+off.MergePosts, "no merging with the trigger off")
	require.NotZero(t, on.MergeEnter, "merge mode entered")
	// Entering merge mode, the flush either defers (fewer WRs pending than
	// the target) or posts them all at once (a sender that got ahead
	// queued more): how often each happens is timing.
	require.NotZero(t, on.MergeDeferred+on.MergePosts, "merge mode deferred a post or merged WRs into one")
	require.GreaterOrEqual(t, on.MergePostedWRs, 3*on.MergePosts, "every post in merge mode carries at least the first merge target (3 WRs)")
}
