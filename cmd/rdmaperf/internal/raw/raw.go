package raw

import (
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

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
	// spinBudget: empty polling rounds one PostSpin crossing makes at most
	// before it returns to Go (which checks the peer and the stall clock,
	// then calls again). The time bound (goRuntime.maxTicks, see the
	// package doc) normally ends a crossing first; this backs it up when
	// it is turned off.
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
	rt    goRuntime
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
	r := &res{p: p, oob: oob, hooks: h, rt: loadGoRuntime(p)}
	defer r.close()
	defer r.rt.enter()()
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

func runLimit(p *perf.Params) time.Duration {
	if p.Duration > 0 {
		return time.Duration(p.Duration+120) * time.Second
	}
	return 600 * time.Second
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
