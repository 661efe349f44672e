package raw

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/clock"
	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/perf"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// Hooks are what a run needs from its caller (printing, progress, trace).
type Hooks struct {
	// Info prints the test-information header once the device is known.
	Info func(perf.DeviceInfo)
	// Dests prints the local and remote connection data.
	Dests func(local, remote perf.Dest, showGID bool)
	// Header prints the result column header (before the first run).
	Header func()
	// BeforeSize and AfterSize bracket the measured run of one size
	// (trace snapshots); msgs is the number of messages this side sent.
	BeforeSize func(size int)
	AfterSize  func(size, msgs int)
	// Lat and BW receive the rows this side prints.
	Lat func(perf.LatResult)
	BW  func(perf.BWResult)
	// Progress is stored to (iterations done) from the hot loop every
	// progressStride iterations; may be nil.
	Progress *atomic.Int64
}

const (
	pollBatch      = 64
	progressStride = 256
	// spinCheck: a wait loop looks at the clock every spinCheck spins.
	spinCheck = 1 << 14
	// stallNs: a wait that sees no progress for this long fails.
	stallNs = int64(30e9)
	// spinBudget: empty polling rounds one PostSpin crossing makes before
	// it returns to Go (which checks the peer and the stall clock, then
	// calls again). Long enough that a round trip normally completes
	// within one crossing (an empty round is an ibv_poll_cq, 0.3-2 µs on
	// the TCG VM), short enough to stay under sysmon's 10 ms retake of a
	// P held in a cgo call.
	spinBudget = 1 << 12
)

var errPeerGone = errors.New("rdmaperf: the peer ended the run")

type res struct {
	p      *perf.Params
	ctx    *verbs.Context
	pd     *verbs.PD
	scq    *verbs.CQ
	rcq    *verbs.CQ
	buf    *verbs.Buffer
	mr     *verbs.MR
	qp     *verbs.QP
	half   int // bytes per buffer half: [0,half) send, [half,2half) receive
	gid    verbs.GIDEntry
	port   verbs.PortAttr
	outRd  int
	local  perf.Dest
	remote perf.Dest

	wcs   []verbs.WorkCompletion
	swr   []verbs.WorkRequest
	sge   []verbs.SGE // one per send WR
	rwr   []verbs.RecvRequest
	rsge  []verbs.SGE
	oob   *perf.OOB
	hooks Hooks
}

func (r *res) close() {
	if r == nil {
		return
	}
	_ = r.qp.Close()
	_ = r.mr.Close()
	_ = r.buf.Free()
	_ = r.scq.Close()
	if r.rcq != r.scq {
		_ = r.rcq.Close()
	}
	_ = r.pd.Close()
	_ = r.ctx.Close()
}

// Run runs the test described by p with the peer at the other end of oob
// (already past the parameter hello).
func Run(p *perf.Params, oob *perf.OOB, h Hooks) (err error) {
	r := &res{p: p, oob: oob, hooks: h}
	defer r.close()
	if err := r.setup(); err != nil {
		_ = oob.Send(perf.Msg{Type: "error", Err: err.Error()})
		return err
	}
	if h.Info != nil {
		h.Info(perf.DeviceInfo{Name: r.ctx.Name(), MTU: r.port.ActiveMTU.Bytes(), LinkLayer: linkLayer(r.port.LinkLayer), GIDIndex: r.gid.Index, OutReads: r.outRd})
	}
	if err := oob.Send(perf.Msg{Type: "dest", Dest: &r.local}); err != nil {
		return err
	}
	m, err := oob.Expect("dest", 0)
	if err != nil {
		return err
	}
	r.remote = *m.Dest
	if err := r.connect(); err != nil {
		_ = oob.Send(perf.Msg{Type: "error", Err: err.Error()})
		return err
	}
	if h.Dests != nil {
		h.Dests(r.local, r.remote, r.port.LinkLayer == verbs.LinkLayerEthernet || p.GIDIndex >= 0)
	}
	if err := oob.Barrier(); err != nil {
		return err
	}
	if h.Header != nil {
		h.Header()
	}
	for _, size := range p.Sizes() {
		if err := r.runSize(size); err != nil {
			return err
		}
	}
	return nil
}

func linkLayer(l verbs.LinkLayer) string {
	switch l {
	case verbs.LinkLayerEthernet:
		return "Ethernet"
	case verbs.LinkLayerInfiniBand:
		return "IB"
	}
	return "Unknown"
}

func (r *res) setup() error {
	p := r.p
	var err error
	if r.ctx, err = verbs.Open(p.Device); err != nil {
		return err
	}
	if err = r.ctx.PortActive(p.IBPort); err != nil {
		return err
	}
	if r.port, err = r.ctx.QueryPort(p.IBPort); err != nil {
		return err
	}
	if r.gid, err = r.ctx.PickGID(p.IBPort, p.GIDIndex); err != nil {
		return err
	}
	if p.Verb == "read" {
		da, err := r.ctx.QueryDevice()
		if err != nil {
			return err
		}
		r.outRd = max(1, min(16, da.MaxQPRdAtom))
	}
	if r.pd, err = r.ctx.AllocPD(); err != nil {
		return err
	}
	// The send ping-pong waits for its send and receive completions
	// together: one CQ, so one poll crossing serves both.
	shared := p.Lat && p.Verb == "send"
	scqSize := p.TxDepth + 1
	if shared {
		scqSize += p.RxDepth
	}
	if r.scq, err = r.ctx.CreateCQ(scqSize, nil, 0); err != nil {
		return err
	}
	if shared {
		r.rcq = r.scq
	} else if r.rcq, err = r.ctx.CreateCQ(p.RxDepth+1, nil, 0); err != nil {
		return err
	}
	r.half = (max(p.MaxMsgSize(), 64) + 4095) &^ 4095
	if err := verbs.CheckMemlock(uint64(2 * r.half)); err != nil {
		return err
	}
	if r.buf, err = verbs.AllocBuffer(2 * r.half); err != nil {
		return err
	}
	if r.mr, err = r.pd.RegMR(r.buf, verbs.AccessLocalWrite|verbs.AccessRemoteWrite|verbs.AccessRemoteRead); err != nil {
		return err
	}
	if r.qp, err = r.pd.CreateQP(verbs.QPInitAttr{
		SendCQ: r.scq, RecvCQ: r.rcq,
		MaxSendWR: p.TxDepth, MaxRecvWR: p.RxDepth,
		MaxSendSGE: 1, MaxRecvSGE: 1,
		MaxInlineData: p.InlineSize(),
	}); err != nil {
		return err
	}
	r.local = perf.Dest{LID: r.port.LID, QPN: r.qp.Num(), PSN: rand.Uint32() & 0xffffff,
		RKey: r.mr.RKey(), VAddr: r.mr.Addr(), GID: r.gid.GID, OutReads: r.outRd}
	r.wcs = make([]verbs.WorkCompletion, pollBatch)
	n := p.TxDepth
	r.swr = make([]verbs.WorkRequest, n)
	r.sge = make([]verbs.SGE, n)
	for i := range r.swr {
		r.swr[i].SG = r.sge[i : i+1 : i+1]
	}
	rb := max(1, min(16, p.RxDepth))
	r.rwr = make([]verbs.RecvRequest, rb)
	r.rsge = make([]verbs.SGE, rb)
	for i := range r.rwr {
		r.rwr[i].SG = r.rsge[i : i+1 : i+1]
	}
	return nil
}

func (r *res) connect() error {
	cp := verbs.DefaultConnParams()
	cp.Port = r.p.IBPort
	cp.PathMTU = r.port.ActiveMTU
	cp.RemoteQPN = r.remote.QPN
	cp.RemotePSN = r.remote.PSN
	cp.LocalPSN = r.local.PSN
	cp.RemoteGID = verbs.GID(r.remote.GID)
	cp.DLID = r.remote.LID
	cp.IsGlobal = r.port.LinkLayer == verbs.LinkLayerEthernet || r.p.GIDIndex >= 0
	cp.SGIDIndex = r.gid.Index
	// perftest's RC attributes (ctx_modify_qp_to_rtr/rts).
	cp.HopLimit = 64
	cp.MinRNRTimer = 12
	cp.Timeout = 14
	cp.RetryCnt = 7
	cp.RNRRetry = 7
	rd := max(1, min(r.outRd, r.remote.OutReads))
	cp.MaxRdAtomic, cp.MaxDestRdAtomic = rd, rd
	return r.qp.Connect(cp)
}

// sendFlags: inline when the message fits the inline threshold.
func (r *res) baseFlags(size int) verbs.SendFlags {
	if size <= r.p.InlineSize() && r.p.Verb != "read" {
		return verbs.SendInline
	}
	return 0
}

func (r *res) runSize(size int) error {
	p := r.p
	// Fresh receive half, so that write_lat's polled byte starts at zero.
	clear(r.mr.Bytes()[r.half : r.half+min(r.half, max(size, 64))])
	clear(r.mr.Bytes()[:min(r.half, max(size, 64))])
	if p.Verb == "send" {
		if err := r.prepostRecv(size); err != nil {
			return err
		}
	}
	if err := r.oob.Barrier(); err != nil {
		return err
	}
	if r.hooks.BeforeSize != nil {
		r.hooks.BeforeSize(size)
	}
	r.oob.StartWatch(runLimit(p))
	var count, sent int
	var runErr error
	var lat *perf.LatResult
	var bw *perf.BWResult
	switch {
	case p.Lat && p.Duration > 0:
		var el int64
		count, el, runErr = r.latDuration(size)
		sent = count
		if runErr == nil {
			lr := perf.LatDurationStats(p.Test, size, count, el, rttFactor(p))
			lat = &lr
		}
	case p.Lat:
		posted := make([]int64, p.Iters)
		count, runErr = r.latIters(size, posted)
		sent = count
		if runErr == nil && !(p.Verb == "read" && p.IsServer()) {
			lr := perf.LatStats(p.Test, size, posted, rttFactor(p), nil)
			lat = &lr
		}
	case !p.IsServer():
		var res perf.BWResult
		res, count, runErr = r.bwClient(size)
		sent = count
		bw = &res
	case p.Verb == "send":
		var res perf.BWResult
		res, count, runErr = r.bwServer(size)
		bw = &res
	default: // write_bw server: nothing to do but wait for the client.
		runErr = r.waitPeer()
	}
	peer, err := r.oob.Finish(count, runErr)
	if err != nil {
		if runErr == nil {
			// drain: the peer failed
			_ = r.qp.ToError()
		}
		return err
	}
	if r.hooks.AfterSize != nil {
		r.hooks.AfterSize(size, sent)
	}
	// The bandwidth client's row goes to the server too (perftest prints
	// the client's report on a write_bw server).
	if p.IsBW() {
		if !p.IsServer() {
			if err := r.oob.Send(perf.Msg{Type: "report", BW: bw}); err != nil {
				return err
			}
		} else {
			m, err := r.oob.Expect("report", 0)
			if err != nil {
				return err
			}
			if p.Verb == "write" {
				bw = m.BW
			}
		}
	}
	_ = peer
	if lat != nil && r.hooks.Lat != nil {
		r.hooks.Lat(*lat)
	}
	if bw != nil && r.hooks.BW != nil {
		r.hooks.BW(*bw)
	}
	return nil
}

func runLimit(p *perf.Params) (d timeDur) {
	if p.Duration > 0 {
		return timeDur(int64(p.Duration+120) * 1e9)
	}
	return timeDur(int64(600) * 1e9)
}

func rttFactor(p *perf.Params) int {
	if p.Verb == "read" {
		return 1
	}
	return 2
}

func (r *res) prepostRecv(size int) error {
	n := r.p.RxDepth
	if r.p.Duration == 0 {
		n = min(n, r.p.Iters)
	}
	return r.postRecvs(size, n)
}

func (r *res) postRecvs(size, n int) error {
	sge := r.mr.SGE(r.half, max(size, 1))
	for n > 0 {
		k := min(n, len(r.rwr))
		for i := range k {
			r.rwr[i].ID = 0
			r.rsge[i] = sge
		}
		if _, err := r.qp.PostRecv(r.rwr[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// waiter bounds busy waits: it fails when the peer is gone or nothing
// happened for stallNs.
type waiter struct {
	oob   *perf.OOB
	spins int
	since int64
	// stopOnDone: the peer's end of the run ends this wait (the receive
	// waits of -D runs); otherwise only the peer's failure does.
	stopOnDone bool
}

func (w *waiter) reset() { w.spins = 0; w.since = 0 }

// spin returns an error when the wait must stop.
func (w *waiter) spin() error {
	w.spins++
	if w.spins&(spinCheck-1) != 0 {
		return nil
	}
	if w.oob.PeerFailed.Load() || (w.stopOnDone && w.oob.PeerDone.Load()) {
		return errPeerGone
	}
	now := clock.Now()
	if w.since == 0 {
		w.since = now
	} else if now-w.since > stallNs {
		return fmt.Errorf("rdmaperf: no progress for %ds (peer or device stalled)", stallNs/1e9)
	}
	return nil
}

// check is spin's test without the stride: a PostSpin call that returned
// empty-handed has spun a whole budget already.
func (w *waiter) check() error {
	w.spins = spinCheck - 1
	return w.spin()
}

// step posts recv and send (either may be empty; send after the wait when
// sw.SendAfter) and spin-polls in C until sw is met (PostSpin: one cgo
// crossing, repeated when a budget runs out). It returns the send-queue
// and receive completions it saw and the send's post time on Now's scale
// (SendAfter); a failed completion is an error. sw is consumed.
func (r *res) step(recv []verbs.RecvRequest, send []verbs.WorkRequest, sw *verbs.SpinWait, w *waiter) (sends, recvs int, stamp int64, err error) {
	w.reset()
	for {
		res, err := r.qp.PostSpin(recv, send, sw, r.wcs)
		if err != nil {
			return sends, recvs, 0, err
		}
		recv = nil
		if res.Sent {
			// With SendAfter the send waits in Go until a step meets
			// the wait; then it leaves from C, stamped.
			send = nil
			stamp = clock.FromStamp(res.Stamp)
		}
		for i := range res.N {
			if r.wcs[i].Status != verbs.WCSuccess {
				return sends, recvs, 0, fmt.Errorf("rdmaperf: completion with error: %w (opcode %s, vendor err %#x)", r.wcs[i].Err(), r.wcs[i].Opcode, r.wcs[i].VendorErr)
			}
		}
		sends += res.Sends
		recvs += res.Recvs
		if res.Done {
			return sends, recvs, stamp, nil
		}
		sw.Sends = max(0, sw.Sends-res.Sends)
		sw.Recvs = max(0, sw.Recvs-res.Recvs)
		if res.Watched {
			sw.Watch = nil
		}
		if res.N == 0 {
			if err := w.check(); err != nil {
				return sends, recvs, 0, err
			}
		} else {
			w.reset()
		}
	}
}

// recvReqs fills the first k reusable receive WRs (k <= len(r.rwr)) for
// messages of size bytes and returns them.
func (r *res) recvReqs(size, k int) []verbs.RecvRequest {
	sge := r.mr.SGE(r.half, max(size, 1))
	for i := range k {
		r.rwr[i].ID = 0
		r.rsge[i] = sge
	}
	return r.rwr[:k]
}

// latIters is the ping-pong of send_lat/write_lat and the READ loop of
// read_lat, recording the post times.
func (r *res) latIters(size int, posted []int64) (int, error) {
	switch r.p.Verb {
	case "send":
		return r.sendLat(size, posted, 0)
	case "write":
		return r.writeLat(size, posted, 0)
	default:
		if r.p.IsServer() {
			return 0, r.waitPeer()
		}
		return r.readLat(size, posted, 0)
	}
}

// latDuration runs the ping-pong until -D seconds pass (client) or the
// client says it is done (server).
func (r *res) latDuration(size int) (int, int64, error) {
	deadline := clock.Now() + int64(r.p.Duration)*1e9
	start := clock.Now()
	var n int
	var err error
	switch r.p.Verb {
	case "send":
		n, err = r.sendLat(size, nil, deadline)
	case "write":
		n, err = r.writeLat(size, nil, deadline)
	default:
		if r.p.IsServer() {
			return 0, 0, r.waitPeer()
		}
		n, err = r.readLat(size, nil, deadline)
	}
	el := clock.Now() - start
	if errors.Is(err, errPeerGone) && r.p.IsServer() {
		err = nil
	}
	return n, el, err
}

func (r *res) progress(n int) {
	if r.hooks.Progress != nil && n&(progressStride-1) == 0 {
		r.hooks.Progress.Store(int64(n))
	}
}

// sendLat: perftest's run_iter_lat_send. The server waits for a message
// before each reply; sends are signaled every CQMod (every one at tx depth
// 1) and the next send waits for the previous signaled one to complete. Send
// and receive completions share one CQ (see setup). Each iteration is one
// PostSpin crossing (SendAfter): repost consumed receives (16 at a time),
// spin-poll in C for the peer's message and the previous signaled send's
// completion, then stamp the time and post the send, all in C, so the reply
// leaves without a return to Go; Go's bookkeeping runs while it is in
// flight.
func (r *res) sendLat(size int, posted []int64, deadline int64) (int, error) {
	p := r.p
	iters := p.Iters
	duration := deadline != 0
	client := !p.IsServer()
	w := waiter{oob: r.oob}
	wr := &r.swr[0]
	wr.Opcode = verbs.OpSend
	r.sge[0] = r.mr.SGE(0, size)
	base := r.baseFlags(size)
	cqMod := max(1, min(p.CQMod, p.TxDepth))
	rxBatch := len(r.rwr)
	tsc := clock.TSC()
	posted0 := min(p.RxDepth, iters)
	if duration {
		posted0 = p.RxDepth
	}
	rposted, consumed := posted0, 0
	scnt, rcnt := 0, 0
	recvReady, sendPending := 0, false
	var recvNow []verbs.RecvRequest // consumed receives, reposted by the next step
	for duration || scnt < iters || rcnt < iters {
		needRecv := (duration || rcnt < iters) && !(scnt < 1 && client)
		if duration && client && clock.Now() >= deadline {
			return scnt, nil
		}
		sw := verbs.SpinWait{CQ: r.scq, Spins: spinBudget, StampTSC: tsc}
		if needRecv && recvReady == 0 {
			sw.Recvs = 1
		}
		if sendPending {
			sw.Sends = 1
		}
		var send []verbs.WorkRequest
		signaled := false
		if duration || scnt < iters {
			signaled = (scnt+1)%cqMod == 0 || (!duration && scnt+1 == iters)
			wr.Flags = base
			if signaled {
				wr.Flags |= verbs.SendSignaled
			}
			send = r.swr[:1]
			sw.SendAfter = true
		}
		w.stopOnDone = duration && needRecv
		s, rc, stamp, err := r.step(recvNow, send, &sw, &w)
		recvNow = nil
		recvReady += rc
		if s > 0 {
			sendPending = false
		}
		if err != nil {
			if duration && errors.Is(err, errPeerGone) {
				return scnt, nil
			}
			return scnt, err
		}
		if send != nil {
			if posted != nil {
				posted[scnt] = stamp
			}
			scnt++
			sendPending = signaled
			r.progress(scnt)
		}
		if needRecv {
			recvReady--
			rcnt++
			consumed++
			if consumed >= rxBatch && (duration || rposted < iters) {
				k := consumed
				if !duration {
					k = min(k, iters-rposted)
				}
				recvNow = r.recvReqs(size, k)
				rposted += k
				consumed -= k
			}
		}
	}
	if sendPending {
		sw := verbs.SpinWait{CQ: r.scq, Sends: 1, Spins: spinBudget}
		if _, _, _, err := r.step(nil, nil, &sw, &w); err != nil {
			return scnt, err
		}
	}
	return scnt, nil
}

// writeLat: perftest's run_iter_lat_write: each side RDMA-writes its
// message into the peer's receive half with the last byte set to the
// iteration count, and waits until its own receive half's last byte shows
// the peer's count. Each iteration is one PostSpin crossing (SendAfter):
// spin in C until the previous write completed and the peer's byte shows,
// then set the outgoing last byte, stamp the time and post the write, in C.
func (r *res) writeLat(size int, posted []int64, deadline int64) (int, error) {
	p := r.p
	iters := p.Iters
	duration := deadline != 0
	client := !p.IsServer()
	w := waiter{oob: r.oob}
	wr := &r.swr[0]
	wr.Opcode = verbs.OpRDMAWrite
	wr.RemoteAddr = r.remote.VAddr + uint64(r.half)
	wr.RKey = r.remote.RKey
	wr.Flags = r.baseFlags(size) | verbs.SendSignaled
	r.sge[0] = r.mr.SGE(0, size)
	tsc := clock.TSC()
	scnt, rcnt, ccnt := 0, 0, 0
	for duration || scnt < iters || ccnt < iters || rcnt < iters {
		needByte := (duration || rcnt < iters) && !(scnt < 1 && client)
		if duration && client && clock.Now() >= deadline {
			return scnt, nil
		}
		// The previous write's completion (perftest polls it right after
		// the post) and the peer's next byte, then the next write.
		sw := verbs.SpinWait{CQ: r.scq, Sends: scnt - ccnt, Spins: spinBudget, StampTSC: tsc}
		if needByte {
			rcnt++
			sw.Watch, sw.WatchOff, sw.WatchWant = r.mr, r.half+size-1, uint8(rcnt)
		}
		var send []verbs.WorkRequest
		if duration || scnt < iters {
			send = r.swr[:1]
			sw.SendAfter = true
			sw.Mark, sw.MarkOff, sw.MarkVal = r.mr, size-1, uint8(scnt+1)
		}
		w.stopOnDone = duration && needByte
		s, _, stamp, err := r.step(nil, send, &sw, &w)
		ccnt += s
		if err != nil {
			if duration && errors.Is(err, errPeerGone) {
				return scnt, nil
			}
			return scnt, err
		}
		if send != nil {
			if posted != nil {
				posted[scnt] = stamp
			}
			scnt++
			r.progress(scnt)
		}
	}
	return scnt, nil
}

// readLat: perftest's run_iter_lat for RDMA READ: post one signaled READ,
// wait for its completion, repeat. Each iteration is one PostSpin crossing
// (SendAfter): wait for the previous READ's completion, then stamp and post
// the next one, in C. Only the client runs it.
func (r *res) readLat(size int, posted []int64, deadline int64) (int, error) {
	p := r.p
	w := waiter{oob: r.oob}
	wr := &r.swr[0]
	wr.Opcode = verbs.OpRDMARead
	wr.RemoteAddr = r.remote.VAddr
	wr.RKey = r.remote.RKey
	wr.Flags = verbs.SendSignaled
	r.sge[0] = r.mr.SGE(r.half, size)
	tsc := clock.TSC()
	scnt, ccnt := 0, 0
	for deadline != 0 || scnt < p.Iters {
		if deadline != 0 && clock.Now() >= deadline {
			break
		}
		sw := verbs.SpinWait{CQ: r.scq, Sends: scnt - ccnt, SendAfter: true, Spins: spinBudget, StampTSC: tsc}
		s, _, stamp, err := r.step(nil, r.swr[:1], &sw, &w)
		ccnt += s
		if err != nil {
			return scnt, err
		}
		if posted != nil {
			posted[scnt] = stamp
		}
		scnt++
		r.progress(scnt)
	}
	if scnt > ccnt {
		sw := verbs.SpinWait{CQ: r.scq, Sends: scnt - ccnt, Spins: spinBudget}
		if _, _, _, err := r.step(nil, nil, &sw, &w); err != nil {
			return scnt, err
		}
	}
	return scnt, nil
}

// waitPeer waits for the peer's end of the run (the passive side).
func (r *res) waitPeer() error {
	for !r.oob.PeerDone.Load() {
		sleepShort()
	}
	return nil
}

// bwClient: perftest's run_iter_bw, with the WRs the window allows posted
// as one chain (one ibv_post_send) and completions polled up to 64 at a time.
// With -D the run ends at the deadline after a padding of WRs up to the next
// signaled one, so that every posted WR is accounted for.
func (r *res) bwClient(size int) (perf.BWResult, int, error) {
	p := r.p
	duration := p.Duration > 0
	iters := p.Iters
	noPeak := p.NoPeak || duration
	var posted, completed []int64
	if noPeak {
		posted, completed = make([]int64, 1), make([]int64, 1)
	} else {
		posted, completed = make([]int64, iters), make([]int64, iters)
	}
	cqMod := max(1, min(p.CQMod, p.TxDepth))
	op := verbs.OpSend
	if p.Verb == "write" {
		op = verbs.OpRDMAWrite
	}
	sge := r.mr.SGE(0, size)
	base := r.baseFlags(size)
	for i := range r.swr {
		r.swr[i].Opcode = op
		r.swr[i].RemoteAddr = r.remote.VAddr + uint64(r.half)
		r.swr[i].RKey = r.remote.RKey
		r.sge[i] = sge
	}
	w := waiter{oob: r.oob}
	start := clock.Now()
	var deadline int64
	if duration {
		deadline = start + int64(p.Duration)*1e9
		iters = math.MaxInt
	}
	posted[0] = start
	scnt, ccnt := 0, 0
	for scnt < iters || ccnt < iters {
		if duration && iters == math.MaxInt && clock.Now() >= deadline {
			iters = scnt + (cqMod-scnt%cqMod)%cqMod
			continue
		}
		if n := min(p.TxDepth-(scnt-ccnt), iters-scnt); n > 0 {
			now := clock.Now()
			for k := range n {
				idx := scnt + k
				f := base
				if idx%cqMod == cqMod-1 || idx == iters-1 {
					f |= verbs.SendSignaled
				}
				r.swr[k].Flags = f
				if !noPeak {
					posted[idx] = now
				}
			}
			if _, err := r.qp.PostSend(r.swr[:n]); err != nil {
				return perf.BWResult{}, scnt, err
			}
			scnt += n
			r.progressN(scnt)
		}
		if ccnt >= scnt {
			continue
		}
		got, err := r.scq.Poll(r.wcs)
		if err != nil {
			return perf.BWResult{}, scnt, err
		}
		if got == 0 {
			if err := w.spin(); err != nil {
				return perf.BWResult{}, scnt, err
			}
			continue
		}
		w.reset()
		now := clock.Now()
		for i := range got {
			if r.wcs[i].Status != verbs.WCSuccess {
				return perf.BWResult{}, scnt, fmt.Errorf("rdmaperf: completion with error: %w", r.wcs[i].Err())
			}
			ccnt += cqMod
			if !noPeak {
				if ccnt > iters {
					completed[iters-1] = now
				} else {
					completed[ccnt-1] = now
				}
			}
		}
	}
	end := clock.Now()
	if noPeak {
		completed[0] = end
	}
	return perf.BWStats(p.Test, size, scnt, posted, completed, cqMod, noPeak, p.ReportGbits), scnt, nil
}

func (r *res) progressN(n int) {
	if r.hooks.Progress != nil {
		r.hooks.Progress.Store(int64(n))
	}
}

// bwServer: perftest's run_iter_bw_server for send_bw: receive completions
// in batches, repost receives in batches, time from the first receive.
func (r *res) bwServer(size int) (perf.BWResult, int, error) {
	p := r.p
	duration := p.Duration > 0
	iters := p.Iters
	w := waiter{oob: r.oob, stopOnDone: duration}
	rxBatch := len(r.rwr)
	rposted := min(p.RxDepth, iters)
	if duration {
		rposted = p.RxDepth
	}
	consumed, rcnt := 0, 0
	var start int64
	for duration || rcnt < iters {
		got, err := r.rcq.Poll(r.wcs)
		if err != nil {
			return perf.BWResult{}, rcnt, err
		}
		if got == 0 {
			if err := w.spin(); err != nil {
				if duration && errors.Is(err, errPeerGone) {
					rcnt += r.drain(r.rcq)
					break
				}
				return perf.BWResult{}, rcnt, err
			}
			continue
		}
		w.reset()
		if start == 0 {
			start = clock.Now()
		}
		for i := range got {
			if r.wcs[i].Status != verbs.WCSuccess {
				return perf.BWResult{}, rcnt, fmt.Errorf("rdmaperf: receive completion with error: %w", r.wcs[i].Err())
			}
		}
		rcnt += got
		consumed += got
		if consumed >= rxBatch && (duration || rposted < iters) {
			k := consumed
			if !duration {
				k = min(k, iters-rposted)
			}
			if err := r.postRecvs(size, k); err != nil {
				return perf.BWResult{}, rcnt, err
			}
			rposted += k
			consumed -= k
		}
		r.progressN(rcnt)
	}
	end := clock.Now()
	return perf.BWStats(p.Test, size, rcnt, []int64{start}, []int64{end}, 1, true, p.ReportGbits), rcnt, nil
}

// drain counts the completions still queued on cq.
func (r *res) drain(cq *verbs.CQ) int {
	total := 0
	for {
		n, err := cq.Poll(r.wcs)
		if err != nil || n == 0 {
			return total
		}
		total += n
	}
}
