package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/clock"
	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/perf"
	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/raw"
	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// Message types of the messenger tests.
const (
	msgPing = 0x7101 // msgr_lat: client -> server
	msgPong = 0x7102 // msgr_lat: server -> client
	msgData = 0x7103 // msgr_bw: client -> server
	msgAck  = 0x7104 // msgr_bw: server -> client, Tid = messages received
)

// msgrWait bounds every wait of a messenger test for one reply.
const msgrWait = 60 * time.Second

// msgrConfig builds the messenger configuration of a test: defaults, the
// ASYNCMSGR_* environment, the transport, device and GID from the flags,
// then every --msgr_opt.
func msgrConfig(p *perf.Params) (*config.Config, error) {
	cfg := config.Default()
	// Ceph's RDMA pools (128 KiB x 1024 send buffers, a 32768-buffer receive
	// pool, 4096-deep receive queue) take longer to register than a short
	// benchmark runs on an emulated VM; rdmaperf starts from the pool sizes of
	// the project's rdma test suite. The environment and --msgr_opt override.
	cfg.RDMABufferSize = 32 << 10
	cfg.RDMASendBuffers = 256
	cfg.RDMAReceiveQueueLen = 256
	cfg.RDMAReceiveBuffers = 2048
	if _, err := cfg.ApplyEnv(os.Environ()); err != nil {
		return nil, err
	}
	set := func(k, v string) error {
		if err := cfg.Set(k, v); err != nil {
			return fmt.Errorf("messenger option %s: %w", k, err)
		}
		return nil
	}
	if err := set("ms_async_transport_type", p.Stack); err != nil {
		return nil, err
	}
	if p.Device != "" {
		if err := set("ms_async_rdma_device_name", p.Device); err != nil {
			return nil, err
		}
	}
	if p.GIDIndex >= 0 {
		if err := set("ms_async_rdma_gid_idx", strconv.Itoa(p.GIDIndex)); err != nil {
			return nil, err
		}
	}
	if p.IBPort != 1 {
		if err := set("ms_async_rdma_port_num", strconv.Itoa(p.IBPort)); err != nil {
			return nil, err
		}
	}
	for _, kv := range p.MsgrOpts {
		k, v, _ := strings.Cut(kv, "=")
		if err := set(k, v); err != nil {
			return nil, err
		}
		if k == "ms_async_op_threads" && p.MsgrBgBytes > 0 && cfg.OpThreads != 1 {
			return nil, fmt.Errorf("--msgr_bg_bytes runs both connections on one worker: it needs ms_async_op_threads=1, not %s", v)
		}
	}
	if p.MsgrBgBytes > 0 {
		// One worker per messenger: the background connection shares it
		// with the ping-pong's on both sides (the environment may not say
		// otherwise; --msgr_opt was checked above).
		cfg.OpThreads = 1
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// A benchmark must run on the stack it names, never on a fallback.
	cfg.TransportFallback = false
	if !slices.Contains(netstack.Names(), p.Stack) {
		return nil, fmt.Errorf("the %q network stack is not built into this rdmaperf (registered: %v)", p.Stack, netstack.Names())
	}
	return cfg, nil
}

// replies hands replies from the worker goroutine to the test loop.
type replies struct {
	msgr.BaseDispatcher
	want   uint16
	ch     chan uint64
	resets chan error
	inline atomic.Pointer[pinger] // msgr_lat --msgr_loop=inline: pongs go there
}

func (r *replies) CanFastDispatch(m *msgr.Message) bool { return m.Type == r.want }
func (r *replies) FastDispatch(m *msgr.Message) {
	if pg := r.inline.Load(); pg != nil {
		pg.pong(m.Tid)
		return
	}
	select {
	case r.ch <- m.Tid:
	default: // cannot happen: the window bounds replies in flight
	}
}
func (r *replies) MsHandleReset(_ *msgr.Connection, err error) bool {
	select {
	case r.resets <- err:
	default:
	}
	return true
}

// responder is the server side: it echoes pings and acknowledges data.
type responder struct {
	msgr.BaseDispatcher
	ackEvery uint64
	total    uint64 // 0 in -D mode
	got      uint64
	bgGot    uint64 // msgBg bytes received: only the background connection's goroutine
	pong     msgr.Message
}

func (s *responder) CanFastDispatch(m *msgr.Message) bool {
	return m.Type == msgPing || m.Type == msgData || m.Type == msgBg
}

func (s *responder) FastDispatch(m *msgr.Message) {
	switch m.Type {
	case msgPing:
		_ = m.Conn.SendMessage(&msgr.Message{Type: msgPong, Tid: m.Tid, Data: m.Data})
	case msgData:
		s.got++
		m.Release() // the payload's memory serves the next message
		if s.got%s.ackEvery == 0 || s.got == s.total {
			_ = m.Conn.SendMessage(&msgr.Message{Type: msgAck, Tid: s.got})
		}
	case msgBg:
		s.bgGot += uint64(len(m.Data))
		m.Release()
		_ = m.Conn.SendMessage(&msgr.Message{Type: msgBgAck, Tid: s.bgGot})
	}
}

// runMsgr runs msgr_lat or msgr_bw: the server starts a messenger and sends
// its port over the out-of-band link; the client connects to the same host.
// With --msgr_bg_bytes each size's ping-pong runs beside a background
// stream (msgr_bg.go); both sides note on stderr what it moved.
func runMsgr(ctx context.Context, p *perf.Params, oob *perf.OOB, h raw.Hooks, stderr io.Writer) error {
	cfg, err := msgrConfig(p)
	if err != nil {
		_ = oob.Send(perf.Msg{Type: "error", Err: err.Error()})
		return err
	}
	if h.Info != nil {
		h.Info(perf.DeviceInfo{Name: p.Stack + ":" + p.Device, LinkLayer: "Messenger", GIDIndex: p.GIDIndex, MTU: 0})
	}
	ackEvery := uint64(max(1, min(p.CQMod, p.TxDepth/2)))
	if p.IsServer() {
		m, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 0})
		if err != nil {
			return err
		}
		defer m.Shutdown()
		m.SetPolicy(msgr.EntityTypeClient, msgr.StatelessServer())
		resp := &responder{ackEvery: ackEvery}
		m.AddDispatcherTail(resp)
		if err := m.Bind(":0"); err != nil {
			_ = oob.Send(perf.Msg{Type: "error", Err: err.Error()})
			return err
		}
		if err := m.Start(); err != nil {
			_ = oob.Send(perf.Msg{Type: "error", Err: err.Error()})
			return err
		}
		_, port, _ := net.SplitHostPort(m.Addr().String())
		if err := oob.Send(perf.Msg{Type: "addr", Addr: port}); err != nil {
			return err
		}
		if h.Header != nil {
			h.Header()
		}
		for _, size := range p.Sizes() {
			resp.got = 0
			resp.total = uint64(p.Iters)
			if p.Duration > 0 {
				resp.total = 0
			}
			if err := oob.Barrier(); err != nil {
				return err
			}
			if h.BeforeSize != nil {
				h.BeforeSize(size)
			}
			oob.StartWatch(time.Duration(p.Duration+600) * time.Second)
			<-oob.PeerDoneC()
			if _, err := oob.Finish(0, nil); err != nil {
				return err
			}
			if h.AfterSize != nil {
				h.AfterSize(size, 0)
			}
			rep, err := oob.Expect("report", 0)
			if err != nil {
				return err
			}
			if rep.BW != nil && h.BW != nil {
				h.BW(*rep.BW)
			}
			if rep.Lat != nil && h.Lat != nil {
				h.Lat(*rep.Lat)
				bgNote(stderr, p, *rep.Lat)
			}
		}
		return nil
	}

	am, err := oob.Expect("addr", 0)
	if err != nil {
		return err
	}
	host := p.Server
	if h, _, err := net.SplitHostPort(p.Server); err == nil {
		host = h
	}
	addr := net.JoinHostPort(strings.Trim(host, "[]"), am.Addr)
	m, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: int64(os.Getpid())})
	if err != nil {
		return err
	}
	defer m.Shutdown()
	m.SetPolicy(msgr.EntityTypeOSD, msgr.LossyClient())
	want := uint16(msgPong)
	if p.IsBW() {
		want = msgAck
	}
	rp := &replies{want: want, ch: make(chan uint64, p.TxDepth+2), resets: make(chan error, 1)}
	m.AddDispatcherTail(rp)
	var bg *bgStream
	if p.MsgrBgBytes > 0 {
		bg = newBgStream(p.MsgrBgBytes)
		m.AddDispatcherTail(bg)
	}
	if err := m.Start(); err != nil {
		return err
	}
	conn, err := m.ConnectTo(msgr.EntityTypeOSD, addr)
	if err != nil {
		return err
	}
	if bg != nil {
		if err := openBgStream(m, bg, strings.Trim(host, "[]"), am.Addr, conn); err != nil {
			return err
		}
	}
	if h.Header != nil {
		h.Header()
	}
	for _, size := range p.Sizes() {
		if err := oob.Barrier(); err != nil {
			return err
		}
		if h.BeforeSize != nil {
			h.BeforeSize(size)
		}
		oob.StartWatch(time.Duration(p.Duration+600) * time.Second)
		var lat *perf.LatResult
		var bw *perf.BWResult
		var n int
		if p.Lat {
			var r perf.LatResult
			r, n, err = msgrLat(ctx, p, conn, rp, size, h, bg)
			lat = &r
		} else {
			var r perf.BWResult
			r, n, err = msgrBW(ctx, p, conn, rp, size, ackEvery, h)
			bw = &r
		}
		if _, ferr := oob.Finish(n, err); ferr != nil {
			return ferr
		}
		if h.AfterSize != nil {
			h.AfterSize(size, n)
		}
		if err := oob.Send(perf.Msg{Type: "report", Lat: lat, BW: bw}); err != nil {
			return err
		}
		if lat != nil && h.Lat != nil {
			h.Lat(*lat)
			bgNote(stderr, p, *lat)
		}
		if bw != nil && h.BW != nil {
			h.BW(*bw)
		}
	}
	return nil
}

var (
	errStopped = errors.New("rdmaperf: interrupted")
	errNoReply = fmt.Errorf("rdmaperf: no reply from the messenger peer in %v", msgrWait)
)

// resetError is a client loop's error for a reset of its connection.
func resetError(err error) error { return fmt.Errorf("rdmaperf: messenger connection reset: %w", err) }

// waitReply waits for one reply, a connection reset, or the bound.
func waitReply(ctx context.Context, rp *replies, timer *time.Timer) (uint64, error) {
	timer.Reset(msgrWait)
	select {
	case tid := <-rp.ch:
		return tid, nil
	case err := <-rp.resets:
		return 0, resetError(err)
	case <-timer.C:
		return 0, errNoReply
	case <-ctx.Done():
		return 0, errStopped
	}
}

// msgrLat: ping-pong through the messenger; one message in flight, its
// payload in the data segment, post times recorded as perftest does. With
// bg, a background stream runs from before the first ping to after the last
// pong and the row says what it moved in between.
func msgrLat(ctx context.Context, p *perf.Params, conn *msgr.Connection, rp *replies, size int, h raw.Hooks, bg *bgStream) (perf.LatResult, int, error) {
	var run *bgRun
	if bg != nil {
		var err error
		if run, err = bg.start(ctx, p.MsgrBgBytes); err != nil {
			return perf.LatResult{}, 0, err
		}
	}
	var r perf.LatResult
	var n int
	var err error
	if p.MsgrLoop == perf.MsgrLoopApp {
		r, n, err = pingPong(ctx, p, conn, rp, size, h, run)
	} else {
		if run != nil {
			run.begin()
		}
		r, n, err = pingPongInline(ctx, p, conn, rp, size, h.Progress)
		if run != nil && err == nil {
			run.finish()
		}
	}
	if run != nil {
		if werr := run.wait(err != nil); err == nil && werr != nil {
			return perf.LatResult{}, n, werr
		}
		if err == nil {
			run.record(&r)
		}
	}
	return r, n, err
}

// pingPong is msgr_lat's app-goroutine client (--msgr_loop=app): this
// goroutine posts each ping (pinger.post, as the inline loop does) and
// waits for its pong on a channel.
func pingPong(ctx context.Context, p *perf.Params, conn *msgr.Connection, rp *replies, size int, h raw.Hooks, bg *bgRun) (perf.LatResult, int, error) {
	pg := newPinger(p, conn, size, nil)
	timer := time.NewTimer(msgrWait)
	defer timer.Stop()
	if bg != nil {
		bg.begin()
	}
	deadline := clock.Now() + int64(p.Duration)*1e9
	start := clock.Now()
	n := 0
	for p.Duration > 0 || n < p.Iters {
		if p.Duration > 0 && clock.Now() >= deadline {
			break
		}
		if err := pg.post(n); err != nil {
			return perf.LatResult{}, n, err
		}
		if _, err := waitReply(ctx, rp, timer); err != nil {
			return perf.LatResult{}, n, err
		}
		n++
		if h.Progress != nil && n%256 == 0 {
			h.Progress.Store(int64(n))
		}
	}
	if bg != nil {
		bg.finish()
	}
	return pg.stats(p, size, n, start), n, nil
}

// msgrBW: the client keeps up to -t messages in flight; the server
// acknowledges every ackEvery messages (and the last), which play the role of
// perftest's moderated completions.
func msgrBW(ctx context.Context, p *perf.Params, conn *msgr.Connection, rp *replies, size int, ackEvery uint64, h raw.Hooks) (perf.BWResult, int, error) {
	duration := p.Duration > 0
	iters := p.Iters
	noPeak := p.NoPeakBW()
	posted, completed := p.BWStamps()
	// A ring of messages: slot i%depth is reused once the server has
	// acknowledged message i (so the messenger is done with it).
	depth := p.TxDepth
	ring := make([]msgr.Message, depth)
	bufs := make([][]byte, depth)
	for i := range ring {
		bufs[i] = make([]byte, size)
		ring[i] = msgr.Message{Type: msgData}
	}
	timer := time.NewTimer(msgrWait)
	defer timer.Stop()
	start := clock.Now()
	deadline := start + int64(p.Duration)*1e9
	if duration {
		iters = int(^uint(0) >> 1)
	}
	posted[0] = start
	scnt, acked := 0, 0
	for scnt < iters || acked < iters {
		if duration && iters == int(^uint(0)>>1) && clock.Now() >= deadline {
			iters = scnt
			if iters == 0 {
				break
			}
			// The server acknowledges the last message only in iteration
			// mode; ask for a final acknowledgement by sending up to the next
			// multiple of ackEvery.
			iters = scnt + (int(ackEvery)-scnt%int(ackEvery))%int(ackEvery)
			continue
		}
		for scnt < iters && scnt-acked < depth {
			slot := scnt % depth
			ring[slot] = msgr.Message{Type: msgData, Tid: uint64(scnt), Data: bufs[slot]}
			if !noPeak {
				posted[scnt] = clock.Now()
			}
			if err := conn.SendMessage(&ring[slot]); err != nil {
				return perf.BWResult{}, scnt, err
			}
			scnt++
		}
		if acked >= scnt {
			continue
		}
		tid, err := waitReply(ctx, rp, timer)
		if err != nil {
			return perf.BWResult{}, scnt, err
		}
		now := clock.Now()
		acked = int(tid)
		if !noPeak && acked > 0 {
			completed[min(acked, iters)-1] = now
		}
		if h.Progress != nil {
			h.Progress.Store(int64(acked))
		}
	}
	if noPeak {
		completed[0] = clock.Now()
	}
	return perf.BWStats(p.Test, size, scnt, posted, completed, int(ackEvery), noPeak, p.ReportGbits), scnt, nil
}
