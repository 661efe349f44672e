package msgrsuite

// This file is the throttle group: a slow dispatcher holds a fast sender
// back through ms_dispatch_throttle_bytes, with memory bounded and nothing
// lost.

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// SlowConsumerMiB is how much the SlowConsumer test's sender pushes, in
// 64 KiB messages dispatched at 10 ms each (128 MiB: about 20 s).
var SlowConsumerMiB = 128

// testSlowConsumer: a sender queues SlowConsumerMiB at once to a
// dispatcher that takes 10 ms per message behind an 8 MiB
// ms_dispatch_throttle_bytes. The receiver must stop reading rather than
// queue: the throttle is never overdrawn, the live heap stays under the
// throttle plus a fixed margin, what the sender has written runs ahead of
// what was dispatched by no more than the throttle plus the transport's
// buffers (the sender is held back), and every message arrives, in order
// and intact.
func testSlowConsumer(t *testing.T, stack string) {
	slowConsumer(t, stack, slowOpts{totalMiB: SlowConsumerMiB})
}

// testSlowConsumerPolicy is testSlowConsumer with the policy throttlers
// instead (Policy.ThrottlerBytes 4 MiB, ThrottlerMessages 48, that is 3
// MiB of these messages; no dispatch throttle), over 16 MiB.
func testSlowConsumerPolicy(t *testing.T, stack string) {
	slowConsumer(t, stack, slowOpts{totalMiB: 16, policy: true})
}

// testSlowConsumerContextSender is testSlowConsumer end to end: the sender
// sends SlowConsumerMiB/2 with SendMessageContext under a 4 MiB send-queue bound, each
// message with its own 64 KiB, so the whole process's memory (sender's and
// receiver's) stays under the throttle, the send queue and the transport's
// buffers, and the sending loop itself goes at the dispatcher's pace.
func testSlowConsumerContextSender(t *testing.T, stack string) {
	slowConsumer(t, stack, slowOpts{totalMiB: SlowConsumerMiB / 2, ctxSender: true})
}

// SlowConsumerBigMessages is testSlowConsumer in 1 MiB messages, for the
// 1 GiB runs (1024 messages at 10 ms each: about 10 s of dispatching) the
// stacks' suites make on their own rather than in Run.
func SlowConsumerBigMessages(t *testing.T, stack string, totalMiB int) {
	slowConsumer(t, stack, slowOpts{totalMiB: totalMiB, msgSize: 1 << 20})
}

type slowOpts struct {
	totalMiB  int
	msgSize   int  // 64 KiB when 0
	policy    bool // policy throttlers instead of ms_dispatch_throttle_bytes
	ctxSender bool // SendMessageContext, a buffer per message
}

func slowConsumer(t *testing.T, stack string, o slowOpts) {
	totalMiB, policy := o.totalMiB, o.policy
	msgSize := 64 << 10
	if o.msgSize > 0 {
		msgSize = o.msgSize
	}
	const delay = 10 * time.Millisecond
	// The live heap beyond the baseline may exceed the throttle by this:
	// the sender's Message structs and sent list, the runtime's own, and
	// per connection a few messages' worth that scale with their size (the
	// receiver's read buffer and the message being read, the sender's
	// encoded write batch waiting for transport room: over rdma in the
	// dispatcher polling mode 1 MiB messages have taken it to 24.3 MiB).
	heapMargin := int64(16<<20 + 4*msgSize)
	n := totalMiB << 20 / msgSize
	cfg := Config(stack)
	// Neither side is idle here, but over rdma a receiver that falls
	// behind (its receive pool, kept small below, runs out) leaves the
	// sender waiting in RNR retries; in the emulated VM such a wait has
	// exceeded the suite's 1.5 s idle timeout. Ceph's default is 900 s.
	cfg.ConnectionIdleTimeout, cfg.KeepaliveInterval = 15*time.Second, time.Second
	srvCfg := *cfg
	throttle := int64(8 << 20)
	srvCfg.DispatchThrottleBytes = int(throttle)
	if policy {
		throttle, srvCfg.DispatchThrottleBytes = 4<<20, 0
	}
	// What the transport may buffer between the sender's write and the
	// receiver's read: the kernel's socket buffers (loopback TCP autotunes
	// to a few MiB each way) and the sender's write batch, plus over rdma
	// the receiver's receive pool and the sender's send pool.
	transport := int64(16 << 20)
	if stack == "rdma" {
		srvCfg.RDMAReceiveBuffers = srvCfg.RDMAReceiveQueueLen
		transport += int64(srvCfg.RDMAReceiveBuffers)*int64(srvCfg.RDMABufferSize) +
			int64(cfg.RDMASendBuffers)*int64(cfg.RDMABufferSize)
	}
	data := payload(7, 7, msgSize) // shared by every message: the sender's side costs no heap per message

	var oc orderChecker
	var bad atomic.Int64
	srvRec := newRecorder(false) // the DispatchQueue path, where the throttle sits
	var busy atomic.Int64
	srvRec.onMsg = func(m *msgr.Message) {
		t0 := time.Now()
		time.Sleep(delay)
		busy.Add(int64(time.Since(t0)))
		if !bytes.Equal(m.Data, data) {
			bad.Add(1)
		}
		oc.take(m)
	}
	srv := newEndpoint(t, &srvCfg, osdName(1), "127.0.0.1:0", false, srvRec)
	srv.m.SetPolicy(msgr.EntityTypeClient, msgr.StatefulServer())
	var throttles []*msgr.Throttle
	if policy {
		throttles = []*msgr.Throttle{msgr.NewThrottle("client-bytes", throttle), msgr.NewThrottle("client-messages", 48)}
		srv.m.SetPolicyThrottlers(msgr.EntityTypeClient, throttles[0], throttles[1])
	} else {
		throttles = []*msgr.Throttle{srv.m.DispatchQueue().DispatchThrottle()}
		require.NotNil(t, throttles[0])
	}
	require.NoError(t, srv.m.Start())
	const sendQueue = 4 << 20
	cm, err := msgr.New(roleConfig(cfg, false), clientName(1), msgr.WithSendQueueBytes(sendQueue))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cm.Shutdown() })
	cm.SetPolicy(msgr.EntityTypeOSD, msgr.LosslessClient())
	require.NoError(t, cm.Start())
	c, err := cm.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	waitFor(t, 20*time.Second, "session ready", c.IsConnected)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	start := time.Now()
	sendErr := make(chan error, 1)
	var sendTook atomic.Int64
	if o.ctxSender {
		go func() {
			for i := 0; i < n; i++ {
				own := append([]byte(nil), data...)
				if err := c.SendMessageContext(context.Background(), &msgr.Message{Type: 1, Front: payload(0, uint64(i), 16), Data: own}); err != nil {
					sendErr <- err
					return
				}
			}
			sendTook.Store(int64(time.Since(start)))
			sendErr <- nil
		}()
	} else {
		for i := 0; i < n; i++ {
			require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: payload(0, uint64(i), 16), Data: data}))
		}
		sendErr <- nil
	}
	if policy {
		require.Nil(t, srv.m.DispatchQueue().DispatchThrottle(), "ms_dispatch_throttle_bytes 0: none")
	}
	peakThr := make([]int64, len(throttles))
	var peakHeap, peakAhead int64
	idle := 0
	lastCount, lastProgress := uint64(0), time.Now()
	for oc.count() < uint64(n) {
		// a bound for a stalled stream, not a timing assertion
		if cnt := oc.count(); cnt != lastCount {
			lastCount, lastProgress = cnt, time.Now()
		}
		require.Less(t, time.Since(lastProgress), time.Minute, "dispatching stalled at %d of %d messages", lastCount, n)
		time.Sleep(100 * time.Millisecond)
		for i, th := range throttles {
			peakThr[i] = max(peakThr[i], th.Current())
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, int64(ms.HeapAlloc)-int64(base))
		ahead := (int64(c.Stats().MsgsSent) - int64(oc.count())) * int64(msgSize)
		peakAhead = max(peakAhead, ahead)
		if srv.m.DispatchQueue().Len() == 0 {
			idle++
		}
	}
	took := time.Since(start)
	t.Logf("dispatcher busy %v, queue found empty at %d samples", time.Duration(busy.Load()), idle)
	t.Logf("%s: %d x %d KiB through a %d MiB throttle in %v: peak live heap +%.1f MiB, sender ahead of the dispatcher by at most %.1f MiB",
		stack, n, msgSize>>10, throttle>>20, took.Round(time.Millisecond), mib(peakHeap), mib(peakAhead))
	for i, th := range throttles {
		t.Logf("throttle %s: peak %d of %d", th.Name(), peakThr[i], th.Max())
		require.LessOrEqual(t, peakThr[i], th.Max(), "throttle %s never overdrawn", th.Name())
		// (the last message's share goes back once its dispatcher returns)
		waitFor(t, 10*time.Second, "throttle "+th.Name()+" all given back", func() bool { return th.Current() == 0 })
	}
	// Ceph's throttle counters in perf dump: every message got and put
	// its share. (How often a get failed, i.e. the receiver stopped
	// reading, depends on whether the sender or the dispatcher is slower:
	// logged, not asserted.)
	var dump map[string]map[string]uint64
	require.NoError(t, json.Unmarshal(srv.m.PerfDump(), &dump))
	fails := uint64(0)
	for _, th := range throttles {
		pc := dump["throttle-"+th.Name()]
		t.Logf("perf dump throttle-%s: %v", th.Name(), pc)
		require.Equal(t, uint64(th.Max()), pc["max"])
		require.GreaterOrEqual(t, pc["get"], uint64(n))
		require.Equal(t, pc["get"], pc["put"])
		require.Equal(t, pc["get_sum"], pc["put_sum"])
		fails += pc["get_or_fail_fail"]
	}
	t.Logf("the receiver stopped reading %d times", fails)
	require.NoError(t, <-sendErr)
	if o.ctxSender {
		// The sender's own messages are on the heap too: the queue it
		// waits under, and what the transport holds unacked.
		slack := (throttle + sendQueue + transport) / int64(msgSize)
		t.Logf("SendMessageContext loop took %v for %d messages", time.Duration(sendTook.Load()).Round(time.Millisecond), n)
		require.GreaterOrEqual(t, time.Duration(sendTook.Load()), time.Duration(int64(n)-slack)*delay,
			"the sender went at the dispatcher's pace, %d messages ahead at most", slack)
	}
	require.Empty(t, oc.errs, "in order, exactly once")
	require.Zero(t, bad.Load(), "data intact")
	if o.ctxSender {
		require.LessOrEqual(t, peakHeap, throttle+sendQueue+transport+heapMargin, "sender and receiver memory bounded")
	} else {
		require.LessOrEqual(t, peakHeap, throttle+heapMargin, "receiver memory bounded by the throttle")
	}
	require.LessOrEqual(t, peakAhead, throttle+transport, "the sender is held back")
	require.GreaterOrEqual(t, took, time.Duration(n)*delay, "(the dispatcher's pace)")
	require.Zero(t, c.Stats().Faults)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
