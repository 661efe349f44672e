package dispatcher

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

func testOptions(t *testing.T) Options {
	t.Helper()
	dev := testenv.RequireRDMA(t)
	if !verbs.Supported {
		testenv.Missing(t, "verbs built with cgo")
	}
	return Options{DeviceName: dev.Name, GIDIndex: dev.GIDIdx, ChunkSize: 4096, SendBuffers: 128,
		RecvBuffers: 1024, RecvQueueLen: 128, SupportSRQ: true, PollingUS: 100, CQDepth: 4096}
}

// openDispatcher opens a dispatcher with opts, closed (and checked) when
// the test ends; it is not started.
func openDispatcher(t *testing.T, opts Options) *Dispatcher {
	t.Helper()
	d, err := Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	return d
}

// newRecvConn is a recvConn with a QP of its own on d.
func newRecvConn(t *testing.T, d *Dispatcher) *recvConn {
	t.Helper()
	c := &recvConn{d: d}
	var err error
	c.h, err = d.CreateQP(c)
	require.NoError(t, err)
	return c
}

// recvConn records what the dispatcher hands it.
type recvConn struct {
	d      *Dispatcher
	h      *QPHandle
	mu     sync.Mutex
	items  []RxItem
	data   [][]byte
	faults []error
	txDone int
}

func (c *recvConn) OnRecv(items []RxItem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, it := range items {
		c.items = append(c.items, it)
		c.data = append(c.data, append([]byte(nil), c.d.RX().Bytes(it.Chunk)[:it.Len]...))
		c.h.ReturnRX(it.Chunk)
	}
}
func (c *recvConn) OnTxComplete(n int) { c.mu.Lock(); c.txDone += n; c.mu.Unlock() }
func (c *recvConn) OnTxSpace()         {}
func (c *recvConn) OnFault(err error)  { c.mu.Lock(); c.faults = append(c.faults, err); c.mu.Unlock() }

func (c *recvConn) count() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.items) }

func connectPair(t *testing.T, d *Dispatcher, a, b *QPHandle) {
	t.Helper()
	connectPairWith(t, d, a, b, nil)
}

// connectPairWith connects a and b with the default parameters that
// tweak (when not nil) changes.
func connectPairWith(t *testing.T, d *Dispatcher, a, b *QPHandle, tweak func(p *verbs.ConnParams)) {
	t.Helper()
	for _, pair := range [][2]*QPHandle{{a, b}, {b, a}} {
		p := verbs.DefaultConnParams()
		p.Port, p.SGIDIndex, p.RemoteGID = d.Port(), d.GID().Index, d.GID().GID
		p.RemoteQPN = pair[1].QP().Num()
		if tweak != nil {
			tweak(&p)
		}
		require.NoError(t, pair[0].QP().ToRTR(p))
		require.NoError(t, pair[0].QP().ToRTS(p))
	}
}

// send posts one message from h, with chunk memory from the TX pool.
func send(t *testing.T, d *Dispatcher, h *QPHandle, payload []byte) {
	t.Helper()
	var idx [1]uint32
	testenv.WaitFor(t, 10*time.Second, "a TX chunk", func() bool { return d.TX().Get(idx[:], false) == 1 }, nil)
	copy(d.TX().Bytes(idx[0]), payload)
	h.AddInflight(1)
	n, err := h.QP().PostSend([]verbs.WorkRequest{{ID: TXID(idx[0]), Opcode: verbs.OpSend, Flags: verbs.SendSignaled,
		SG: []verbs.SGE{d.TX().SGE(idx[0], len(payload))}}})
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

func TestOrderedDeliveryManyCompletions(t *testing.T) {
	for _, srq := range []bool{true, false} {
		t.Run(fmt.Sprintf("srq=%v", srq), func(t *testing.T) {
			opts := testOptions(t)
			opts.SupportSRQ = srq
			d := openDispatcher(t, opts)
			d.Start()
			const pairs, msgs = 4, 500
			var senders, receivers []*recvConn
			for i := 0; i < pairs; i++ {
				s, r := newRecvConn(t, d), newRecvConn(t, d)
				connectPair(t, d, s.h, r.h)
				senders, receivers = append(senders, s), append(receivers, r)
			}
			var wg sync.WaitGroup
			for i := range senders {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					for j := 0; j < msgs; j++ {
						var b [24]byte
						binary.LittleEndian.PutUint64(b[:], uint64(i))
						binary.LittleEndian.PutUint64(b[8:], uint64(j))
						send(t, d, senders[i].h, b[:8+8+j%8])
					}
				}(i)
			}
			wg.Wait()
			for i, r := range receivers {
				testenv.WaitFor(t, 60*time.Second, "all messages", func() bool { return r.count() == msgs }, nil)
				r.mu.Lock()
				for j, it := range r.items {
					require.Equal(t, uint64(j), it.Seq, "receive sequence numbers are consecutive")
					require.Equal(t, uint64(i), binary.LittleEndian.Uint64(r.data[j]))
					require.Equal(t, uint64(j), binary.LittleEndian.Uint64(r.data[j][8:]), "pair %d in order", i)
				}
				require.Empty(t, r.faults)
				r.mu.Unlock()
			}
			testenv.WaitFor(t, 10*time.Second, "TX completions", func() bool { return d.TX().Stats().InUse == 0 }, nil)
			st := d.Stats()
			require.Equal(t, uint64(pairs*msgs), st.RXCompletions)
			require.Equal(t, uint64(pairs*msgs), st.TXCompletions)
			require.NotZero(t, st.PollingOn)
			t.Logf("stats: %+v", st)
		})
	}
}

// qpLines lists this test binary's QPs on dev in `rdma resource show qp`.
func qpLines(t *testing.T, dev string) []string {
	out, err := exec.Command("rdma", "resource", "show", "qp").CombinedOutput()
	require.NoError(t, err, string(out))
	// The tool names the creating thread's pid, so match the command name
	// (the kernel's comm: the binary's name, at most 15 bytes).
	comm := filepath.Base(os.Args[0])
	if len(comm) > 15 {
		comm = comm[:15]
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, " comm "+comm+" ") && strings.Contains(l, "link "+dev+"/") {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestBeaconReaping(t *testing.T) {
	opts := testOptions(t)
	d := openDispatcher(t, opts)
	d.Start()
	const n = 6
	var hs []*QPHandle
	var conns []*recvConn
	for i := 0; i < n/2; i++ {
		a, b := newRecvConn(t, d), newRecvConn(t, d)
		connectPair(t, d, a.h, b.h)
		send(t, d, a.h, []byte("before close"))
		hs = append(hs, a.h, b.h)
		conns = append(conns, a, b)
	}
	for i := 1; i < n; i += 2 {
		testenv.WaitFor(t, 10*time.Second, "message", func() bool { return conns[i].count() == 1 }, nil)
	}
	out, _ := exec.Command("rdma", "resource", "show", "qp").CombinedOutput()
	require.Len(t, qpLines(t, opts.DeviceName), n, "rdma resource show qp:\n%s", out)
	for _, h := range hs {
		h.Retire(time.Second)
		h.Retire(time.Second) // idempotent
	}
	testenv.WaitFor(t, 20*time.Second, "QPs reaped", func() bool { return d.QPsActive() == 0 }, nil)
	st := d.Stats()
	require.Equal(t, uint64(n), st.QPsCreated)
	require.Equal(t, uint64(n), st.QPsDestroyed)
	require.Empty(t, qpLines(t, opts.DeviceName), "rdma resource show qp")
	for _, c := range conns {
		require.Empty(t, c.faults, "retired connections are not called back")
	}
}

func TestFaultOnRetryExceeded(t *testing.T) {
	d := openDispatcher(t, testOptions(t))
	d.Start()
	a, b := newRecvConn(t, d), newRecvConn(t, d)
	// a talks to b with a short transport timeout; b is then moved to ERR
	// (a dead peer): a's send fails with an error completion.
	connectPairWith(t, d, a.h, b.h, func(p *verbs.ConnParams) { p.Timeout, p.RetryCnt, p.RNRRetry = 8, 1, 1 })
	b.h.Retire(0)
	testenv.WaitFor(t, 20*time.Second, "peer reaped", func() bool { return d.QPsActive() == 1 }, nil)
	send(t, d, a.h, []byte("to nobody"))
	testenv.WaitFor(t, 60*time.Second, "fault", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return len(a.faults) > 0 }, nil)
	a.mu.Lock()
	t.Logf("fault: %v", a.faults[0])
	require.ErrorContains(t, a.faults[0], "send completion")
	a.mu.Unlock()
	st := d.Stats()
	require.NotEmpty(t, st.WCErrors)
	t.Logf("WC errors: %v", st.WCErrors)
}

func TestOpenNoDevice(t *testing.T) {
	_, err := Open(Options{DeviceName: "no-such-device0", ChunkSize: 4096, SendBuffers: 1, RecvQueueLen: 1})
	require.Error(t, err)
	if verbs.Supported {
		require.ErrorIs(t, err, verbs.ErrNoDevice)
	} else {
		require.ErrorIs(t, err, verbs.ErrNotSupported)
	}
}

// TestPortDownFaultsAll: taking the device's netdev down raises a port
// error async event, which faults every live connection; the port comes
// back when the link does.
func TestPortDownFaultsAll(t *testing.T) {
	d := openDispatcher(t, testOptions(t))
	d.Start()
	var conns []*recvConn
	for i := 0; i < 2; i++ {
		conns = append(conns, newRecvConn(t, d))
	}
	netdev := d.GID().Netdev
	require.NotEmpty(t, netdev, "the GID's network device")
	// LinkDown's cleanup brings the wire back (routes, neighbours) even if
	// this test fails, for the tests that follow in the same VM.
	up := rdmatest.LinkDown(t, netdev)
	for i, c := range conns {
		testenv.WaitFor(t, 20*time.Second, fmt.Sprintf("connection %d faulted", i), func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return len(c.faults) > 0
		}, nil)
		c.mu.Lock()
		require.ErrorIs(t, c.faults[0], verbs.ErrPortDown)
		c.mu.Unlock()
	}
	require.NotZero(t, d.Stats().AsyncEvents)
	up()
	testenv.WaitFor(t, 20*time.Second, "port active again", func() bool { return d.Context().PortActive(d.Port()) == nil }, nil)
}

// TestPostWakesSleepingPoller: a connection about to post (AddInflight)
// wakes a poller that went to sleep, so it busy-polls for the completion
// and the reply instead of waiting for the completion-channel interrupt.
// Counted in sleep/wake transitions: with no traffic nothing else wakes it.
func TestPostWakesSleepingPoller(t *testing.T) {
	d := openDispatcher(t, testOptions(t))
	c := newRecvConn(t, d)
	d.Start()
	for i := 0; i < 3; i++ {
		testenv.WaitFor(t, 10*time.Second, "the poller to sleep", func() bool { return d.asleep.Load() }, nil)
		on := d.Stats().PollingOn
		c.h.AddInflight(0) // not a post: no wake-up
		require.True(t, d.asleep.Load(), "AddInflight(0) leaves the poller asleep")
		c.h.AddInflight(1)
		testenv.WaitFor(t, 10*time.Second, "the poller to wake", func() bool { return d.Stats().PollingOn > on }, nil)
		c.h.AddInflight(-1)
	}
	st := d.Stats()
	require.Zero(t, st.TXCompletions+st.RXCompletions, "woken by the posts alone")
}

// TestRepostBatch: consumed receives are reposted in batches of at most 16
// and at most an eighth of the queue, and at once on a queue too short to
// batch.
func TestRepostBatch(t *testing.T) {
	for depth, want := range map[int]int64{0: 1, 4: 1, 16: 2, 64: 8, 256: 16, 4096: 16} {
		require.Equal(t, want, repostBatch(depth), "depth %d", depth)
	}
}
