package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/mempool"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// Work request ids. The kind lives in the top byte; the low 32 bits carry a
// chunk index for TX and RX chunks.
const (
	// BeaconID is the wr_id of the zero-SGE signaled send posted on a QP in
	// ERR: its completion marks the QP's send queue drained (Ceph's
	// 0xDEADBEEF).
	BeaconID uint64 = 0xDEADBEEF

	kindShift        = 56
	kindTX    uint64 = 1 << kindShift // a TX chunk
	kindCtl   uint64 = 2 << kindShift // a WR without a chunk (FIN, RDMA WRITE notices)
	kindRX    uint64 = 3 << kindShift // an RX chunk
	kindMask  uint64 = 0xff << kindShift
)

// TXID is the wr_id of a send WR carrying TX chunk idx.
func TXID(idx uint32) uint64 { return kindTX | uint64(idx) }

// CtlID is the wr_id of a send WR that carries no TX chunk (a FIN).
func CtlID() uint64 { return kindCtl }

// MaxPoll is how many completions one poll call takes from a CQ.
const MaxPoll = 32

// DefaultCQDepth is Ceph's CQ depth (bounded by what the device allows).
const DefaultCQDepth = 30000

// RxItem is one received SEND handed to its connection: the chunk of the RX
// pool holding Len bytes, with the connection's receive sequence number
// (assigned at completion, consecutive from 0). Len 0 without HasImm is the
// peer's FIN. HasImm marks a completion that carried immediate data (a
// SEND_WITH_IMM or an RDMA_WRITE_WITH_IMM, whose bytes went to the memory
// the WRITE named, not to Chunk; Len is then that WRITE's length).
type RxItem struct {
	Seq    uint64
	Chunk  uint32
	Len    uint32
	Imm    uint32
	HasImm bool
}

// Conn is what a connection gives the dispatcher. Every method is called on
// the polling goroutine, never with a dispatcher lock held; it must not
// block.
type Conn interface {
	// OnRecv hands over received SENDs, in completion order; the slice is
	// reused after the call (copy the items). The chunks now belong to the
	// connection, which gives them back with ReturnRX.
	OnRecv(items []RxItem)
	// OnTxComplete reports that n of the connection's send WRs completed
	// (their chunks are already back in the pool).
	OnTxComplete(n int)
	// OnTxSpace tells a connection that waited (WaitTxSpace) that TX chunks
	// were returned.
	OnTxSpace()
	// OnFault reports a fatal error of the connection's QP.
	OnFault(err error)
}

// Options configure a dispatcher (see config for the ms_async_rdma_*
// options they come from).
type Options struct {
	DeviceName    string
	Port          int
	GIDIndex      int // -1: pick the RoCEv2 IPv4 GID
	ChunkSize     int
	SendBuffers   int
	RecvBuffers   int // 0 unlimited
	RecvQueueLen  int
	SupportSRQ    bool
	PollingUS     int
	HugePages     bool
	CQDepth       int // 0: DefaultCQDepth
	RXBlockChunks int // 0: RecvQueueLen
	// Context, when set, is used instead of opening DeviceName: the rdma_cm
	// path passes librdmacm's context of the device (CMID.Context), whose
	// PDs and CQs rdma_create_qp accepts.
	Context *verbs.Context
}

// entry is a registered QP.
type entry struct {
	qp      *verbs.QP
	conn    Conn
	seq     uint64 // next receive sequence number (poller only)
	batch   []RxItem
	txDone  int
	inBatch bool
	// Inflight counts send WRs posted and not completed (posters add, the
	// poller subtracts).
	inflight  atomic.Int64
	rxDeficit atomic.Int64 // per-QP RQ: receive WRs owed to the QP

	// retirement (under Dispatcher.mu)
	retired    bool
	lingerEnd  time.Time // move to ERR when inflight reaches 0 or at this time
	errored    bool      // moved to ERR, beacon posted
	beaconDone bool
	rqDepth    int
	after      func()
}

// QPHandle is a registered QP: the connection's view of its dispatcher entry.
type QPHandle struct {
	d *Dispatcher
	e *entry
}

// QP is the verbs QP.
func (h *QPHandle) QP() *verbs.QP { return h.e.qp }

// Inflight is the number of the QP's send WRs not yet completed.
func (h *QPHandle) Inflight() int { return int(h.e.inflight.Load()) }

// AddInflight is called by the connection around posting n send WRs (and
// with a negative n for WRs the post did not take). Posting wakes a
// sleeping poller: a send means a completion, and usually a reply, will
// follow, so the poller busy-polls for them instead of waiting for the
// completion-channel interrupt (the wake-up happens while the device is
// still sending, off the critical path).
func (h *QPHandle) AddInflight(n int) {
	h.e.inflight.Add(int64(n))
	if n > 0 {
		h.d.kick()
	}
}

// kick wakes the poller if it sleeps; it never blocks and costs one atomic
// load while the poller is busy-polling.
func (d *Dispatcher) kick() {
	if d.asleep.Load() && d.asleep.CompareAndSwap(true, false) {
		d.wake()
	}
}

// Dispatcher is one stack's RDMA dispatcher.
type Dispatcher struct {
	opts Options
	ctx  *verbs.Context
	pd   *verbs.PD
	gid  verbs.GIDEntry
	port verbs.PortAttr
	dev  verbs.DeviceAttr

	txCh, rxCh *verbs.CompChannel
	txCQ, rxCQ *verbs.CQ
	srq        *verbs.SRQ
	tx, rx     *mempool.Pool
	wakeFD     int

	mu       sync.Mutex
	byQPN    map[uint32]*entry
	retiring []*entry
	waiters  []Conn
	waitSet  map[Conn]struct{}
	// closedQPs: Close destroyed every QP; later retirements finish at once.
	closedQPs bool

	rxPostMu   sync.Mutex
	srqDeficit atomic.Int64
	rxReqs     []verbs.RecvRequest // under rxPostMu
	rxSGEs     []verbs.SGE
	rxIdx      []uint32

	// Counters, updated by the poller and by connections.
	C Counters

	stopping atomic.Bool
	asleep   atomic.Bool // the poller is (about to be) waiting in poll(2)
	done     chan struct{}
	started  bool
	closeMu  sync.Mutex
	closed   bool
}

// Counters are the dispatcher's counters, after Ceph's l_msgr_rdma_*
// perf counters. Connections add to the TX ones.
type Counters struct {
	PollingOn, PollingOff    atomic.Uint64 // transitions into busy polling / sleep
	TXCompletions            atomic.Uint64
	RXCompletions            atomic.Uint64
	RXBytes                  atomic.Uint64
	CQEvents                 atomic.Uint64
	QPsCreated, QPsDestroyed atomic.Uint64
	HandshakeErrors          atomic.Uint64
	TxNoMem, TxPartialMem    atomic.Uint64
	Posts, PostedWRs         atomic.Uint64 // ibv_post_send calls and the WRs they carried
	TXBytes                  atomic.Uint64
	MergeEnter, MergeLeave   atomic.Uint64
	MergeDeferred            atomic.Uint64
	AsyncEvents              atomic.Uint64
	RXDeficit                atomic.Uint64 // RX reposts that had to wait for a free chunk
	// RDMA WRITE of large payloads (ms_async_rdma_send_msg_size > 0):
	// WRITE WRs posted and their bytes, receive buffers advertised to
	// peers and advertised by them (one per buffer, initial and again),
	// and sends above the threshold that found no free peer buffer and
	// went by SEND.
	WriteWRs, WriteBytes     atomic.Uint64
	AdvertsSent, AdvertsRecv atomic.Uint64
	WriteFallbacks           atomic.Uint64
	WCErrors                 [32]atomic.Uint64 // by verbs.WCStatus
}

// Stats is a snapshot of the dispatcher's counters and pools.
type Stats struct {
	PollingOn, PollingOff        uint64
	TXCompletions, RXCompletions uint64
	RXBytes, TXBytes             uint64
	CQEvents                     uint64
	QPsCreated, QPsActive        uint64
	QPsDestroyed                 uint64
	HandshakeErrors              uint64
	TxNoMem, TxPartialMem        uint64
	Posts, PostedWRs             uint64
	MergeEnter, MergeLeave       uint64
	MergeDeferred                uint64
	AsyncEvents, RXDeficit       uint64
	WriteWRs, WriteBytes         uint64
	AdvertsSent, AdvertsRecv     uint64
	WriteFallbacks               uint64
	InflightTXChunks             int
	RXBuffersInUse, RXBuffers    int
	TXExhaustions                uint64
	WCErrors                     map[string]uint64
}

// WRsPerPost is the average number of send WRs per ibv_post_send.
func (s Stats) WRsPerPost() float64 {
	if s.Posts == 0 {
		return 0
	}
	return float64(s.PostedWRs) / float64(s.Posts)
}

// Open opens the device and builds every shared resource; Start launches the
// poller. A machine without the device (or without cgo) gets an error
// wrapping verbs.ErrNoDevice or verbs.ErrNotSupported.
func Open(opts Options) (_ *Dispatcher, err error) {
	if opts.Port <= 0 {
		opts.Port = 1
	}
	if opts.CQDepth <= 0 {
		opts.CQDepth = DefaultCQDepth
	}
	if opts.RecvQueueLen <= 0 {
		opts.RecvQueueLen = 4096
	}
	d := &Dispatcher{opts: opts, byQPN: map[uint32]*entry{}, waitSet: map[Conn]struct{}{}, wakeFD: -1, done: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = d.Close()
		}
	}()
	if opts.Context != nil {
		d.ctx = opts.Context
	} else if d.ctx, err = verbs.Open(opts.DeviceName); err != nil {
		return nil, fmt.Errorf("dispatcher: open device %q: %w", opts.DeviceName, err)
	}
	if d.dev, err = d.ctx.QueryDevice(); err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	if d.port, err = d.ctx.QueryPort(opts.Port); err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	if err = d.ctx.PortActive(opts.Port); err != nil {
		return nil, fmt.Errorf("dispatcher: %s port %d: %w", d.ctx.Name(), opts.Port, err)
	}
	if d.gid, err = d.ctx.PickGID(opts.Port, opts.GIDIndex); err != nil {
		return nil, fmt.Errorf("dispatcher: %s port %d gid %d: %w", d.ctx.Name(), opts.Port, opts.GIDIndex, err)
	}
	need := uint64(opts.SendBuffers)*uint64(opts.ChunkSize) + uint64(opts.RecvQueueLen)*uint64(opts.ChunkSize)
	if err = mempool.CheckMemlock(need); err != nil {
		return nil, err
	}
	if d.pd, err = d.ctx.AllocPD(); err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	depth := opts.CQDepth
	if d.dev.MaxCQE > 0 && depth > d.dev.MaxCQE {
		depth = d.dev.MaxCQE
	}
	if d.txCh, err = d.ctx.CreateCompChannel(); err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	if d.rxCh, err = d.ctx.CreateCompChannel(); err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	if d.txCQ, err = d.ctx.CreateCQ(depth, d.txCh, 0); err != nil {
		return nil, fmt.Errorf("dispatcher: TX CQ of %d: %w", depth, err)
	}
	if d.rxCQ, err = d.ctx.CreateCQ(depth, d.rxCh, 0); err != nil {
		return nil, fmt.Errorf("dispatcher: RX CQ of %d: %w", depth, err)
	}
	if d.tx, err = mempool.NewTX(d.pd, mempool.Options{ChunkSize: opts.ChunkSize, Count: opts.SendBuffers, HugePages: opts.HugePages}); err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	blk := opts.RXBlockChunks
	if blk <= 0 {
		blk = opts.RecvQueueLen
	}
	if d.rx, err = mempool.NewRX(d.pd, mempool.Options{ChunkSize: opts.ChunkSize, Count: opts.RecvBuffers, BlockChunks: blk, HugePages: opts.HugePages}); err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	if opts.SupportSRQ {
		n := opts.RecvQueueLen
		if d.dev.MaxSRQWR > 0 && n > d.dev.MaxSRQWR {
			n = d.dev.MaxSRQWR
		}
		if d.srq, err = d.pd.CreateSRQ(verbs.SRQInitAttr{MaxWR: n, MaxSGE: 1, Limit: n / 8}); err != nil {
			return nil, fmt.Errorf("dispatcher: SRQ of %d: %w", n, err)
		}
		d.srqDeficit.Store(int64(n))
		d.refillSRQ()
	}
	if d.wakeFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return nil, fmt.Errorf("dispatcher: eventfd: %w", err)
	}
	return d, nil
}

// Context is the device context.
func (d *Dispatcher) Context() *verbs.Context { return d.ctx }

// PD is the protection domain every MR and QP of the stack uses.
func (d *Dispatcher) PD() *verbs.PD { return d.pd }

// GID is the local GID entry QPs use.
func (d *Dispatcher) GID() verbs.GIDEntry { return d.gid }

// LID is the port's LID (0 on RoCE).
func (d *Dispatcher) LID() uint16 { return d.port.LID }

// Port is the device port.
func (d *Dispatcher) Port() int { return d.opts.Port }

// TX is the TX pool.
func (d *Dispatcher) TX() *mempool.Pool { return d.tx }

// RX is the RX pool.
func (d *Dispatcher) RX() *mempool.Pool { return d.rx }

// MaxSendWR is the send-queue depth QPs get (one slot kept for the beacon).
func (d *Dispatcher) MaxSendWR() int {
	n := d.opts.SendBuffers
	if d.dev.MaxQPWR > 0 && n+1 > d.dev.MaxQPWR {
		n = d.dev.MaxQPWR - 1
	}
	return n
}

// CreateQP creates an RC QP on the shared CQs (and the SRQ when enabled),
// moves it to INIT, registers it for conn, and without SRQ posts its
// receive buffers. The caller moves it to RTR/RTS (verbs.QP.ToRTR/ToRTS).
func (d *Dispatcher) CreateQP(conn Conn) (*QPHandle, error) {
	return d.CreateQPWith(conn, d.pd.CreateQP, true)
}

// CreateQPWith is CreateQP with the QP made by create (e.g. CMID.CreateQP
// bound to the dispatcher's PD); toInit says whether to move it to INIT
// (rdma_create_qp already does).
func (d *Dispatcher) CreateQPWith(conn Conn, create func(verbs.QPInitAttr) (*verbs.QP, error), toInit bool) (*QPHandle, error) {
	attr := verbs.QPInitAttr{SendCQ: d.txCQ, RecvCQ: d.rxCQ, SRQ: d.srq, MaxSendWR: d.MaxSendWR() + 1, MaxSendSGE: 1, MaxRecvSGE: 1}
	rq := 0
	if d.srq == nil {
		rq = d.opts.RecvQueueLen
		if d.dev.MaxQPWR > 0 && rq > d.dev.MaxQPWR {
			rq = d.dev.MaxQPWR
		}
		attr.MaxRecvWR = rq
	}
	qp, err := create(attr)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: create QP: %w", err)
	}
	if toInit {
		ip := verbs.DefaultConnParams()
		ip.Port = d.opts.Port
		if err := qp.ToInit(ip); err != nil {
			_ = qp.Close()
			return nil, fmt.Errorf("dispatcher: QP to INIT: %w", err)
		}
	}
	e := &entry{qp: qp, conn: conn, rqDepth: rq, batch: make([]RxItem, 0, MaxPoll)}
	d.mu.Lock()
	d.byQPN[qp.Num()] = e
	d.mu.Unlock()
	d.C.QPsCreated.Add(1)
	if rq > 0 {
		e.rxDeficit.Store(int64(rq))
		d.refillQP(e)
	}
	return &QPHandle{d: d, e: e}, nil
}

// Retire hands the QP back: once its inflight sends completed (or after
// linger), it is moved to ERR, a beacon is posted, and it is destroyed after
// the beacon's completion with both CQs drained. The Conn is not called
// again. Idempotent.
func (h *QPHandle) Retire(linger time.Duration) { h.RetireThen(linger, nil) }

// RetireThen is Retire, then runs after (on the poller, or in Close) once
// the QP is destroyed; a second call does nothing.
func (h *QPHandle) RetireThen(linger time.Duration, after func()) {
	if h == nil {
		return
	}
	d, e := h.d, h.e
	d.mu.Lock()
	if e.retired {
		d.mu.Unlock()
		return
	}
	if d.closedQPs {
		d.mu.Unlock()
		if after != nil {
			after()
		}
		return
	}
	e.retired = true
	e.after = after
	e.lingerEnd = time.Now().Add(linger)
	d.retiring = append(d.retiring, e)
	d.mu.Unlock()
	d.wake()
}

func (d *Dispatcher) wake() {
	if d.wakeFD >= 0 {
		var one = [8]byte{1}
		_, _ = unix.Write(d.wakeFD, one[:])
	}
}

// WaitTxSpace registers c to be told (OnTxSpace) when TX chunks are
// returned. Callers retry their allocation after registering.
func (d *Dispatcher) WaitTxSpace(c Conn) {
	d.mu.Lock()
	if _, ok := d.waitSet[c]; !ok {
		d.waitSet[c] = struct{}{}
		d.waiters = append(d.waiters, c)
	}
	d.mu.Unlock()
}

// ReturnRX gives received chunks back; receive WRs owed to the SRQ (or to
// h's QP) are reposted from them.
func (h *QPHandle) ReturnRX(chunks ...uint32) {
	d := h.d
	d.rx.Put(chunks...)
	if d.srq != nil {
		if d.srqDeficit.Load() > 0 {
			d.refillSRQ()
		}
	} else if h.e.rxDeficit.Load() > 0 {
		d.refillQP(h.e)
	}
}

// postRX takes up to want chunks from the RX pool and posts them with post.
// It returns how many were posted.
func (d *Dispatcher) postRX(want int, post func([]verbs.RecvRequest) (int, error)) int {
	d.rxPostMu.Lock()
	defer d.rxPostMu.Unlock()
	total := 0
	for want > 0 {
		n := min(want, 64)
		if cap(d.rxIdx) < n {
			d.rxIdx = make([]uint32, 64)
			d.rxReqs = make([]verbs.RecvRequest, 64)
			d.rxSGEs = make([]verbs.SGE, 64)
		}
		got := d.rx.Get(d.rxIdx[:n], true)
		if got == 0 {
			d.C.RXDeficit.Add(1)
			break
		}
		for i := 0; i < got; i++ {
			d.rxSGEs[i] = d.rx.SGE(d.rxIdx[i], d.rx.ChunkSize())
			d.rxReqs[i] = verbs.RecvRequest{ID: kindRX | uint64(d.rxIdx[i]), SG: d.rxSGEs[i : i+1]}
		}
		posted, err := post(d.rxReqs[:got])
		if posted < got {
			d.rx.Put(d.rxIdx[posted:got]...)
		}
		total += posted
		want -= posted
		if err != nil {
			slog.Debug("dispatcher: post receive", "err", err)
			break
		}
		if got < n {
			break
		}
	}
	return total
}

func (d *Dispatcher) refillSRQ() {
	if d.srq == nil {
		return
	}
	want := int(d.srqDeficit.Load())
	if want <= 0 {
		return
	}
	n := d.postRX(want, d.srq.PostRecv)
	d.srqDeficit.Add(-int64(n))
}

func (d *Dispatcher) refillQP(e *entry) {
	want := int(e.rxDeficit.Load())
	if want <= 0 {
		return
	}
	n := d.postRX(want, e.qp.PostRecv)
	e.rxDeficit.Add(-int64(n))
}

// Start launches the polling goroutine.
func (d *Dispatcher) Start() {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.started || d.closed {
		return
	}
	d.started = true
	go d.run()
}

// errPortDown is reported to every connection when the port goes down.
var errPortDown = fmt.Errorf("dispatcher: port error event: %w", errors.Join(verbs.ErrPortDown, net.ErrClosed))

// idleCheck is how many empty polls pass between clock reads (and
// reaping, and yielding the thread) while the poller busy-polls an idle CQ
// pair: on VMs whose clocksource has no vDSO every clock read traps.
const idleCheck = 16

func (d *Dispatcher) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(d.done)
	wcs := make([]verbs.WorkCompletion, MaxPoll)
	touched := make([]*entry, 0, MaxPoll)
	rets := make([]uint32, 0, MaxPoll)
	pollWindow := time.Duration(d.opts.PollingUS) * time.Microsecond
	var idleSince time.Time
	pfd := []unix.PollFd{
		{Fd: int32(d.txCh.FD()), Events: unix.POLLIN},
		{Fd: int32(d.rxCh.FD()), Events: unix.POLLIN},
		{Fd: int32(d.ctx.AsyncFD()), Events: unix.POLLIN},
		{Fd: int32(d.wakeFD), Events: unix.POLLIN},
	}
	var txUnacked, rxUnacked int
	spins, idle := 0, 0
	d.C.PollingOn.Add(1)
	for !d.stopping.Load() {
		n := d.pollTX(wcs, &touched, &rets) + d.pollRX(wcs, &touched)
		if spins++; spins&1023 == 0 {
			d.handleAsync() // also while completions keep flowing
			d.reap(n == 0)
		}
		if n > 0 {
			idleSince, idle = time.Time{}, 0
			continue
		}
		// Idle: spin on the CQs. The clock is read, retired QPs reaped
		// and the thread yielded only every idleCheck empty polls: a
		// Gosched on a locked thread hands the P to another thread and
		// back (two futex wake-ups), which costs more than a poll.
		if idle++; idle%idleCheck != 0 {
			continue
		}
		d.reap(true)
		now := time.Now()
		if idleSince.IsZero() {
			idleSince = now
		}
		if now.Sub(idleSince) < pollWindow {
			runtime.Gosched() // let other goroutines have this P now and then (GOMAXPROCS=1)
			continue
		}
		// Sleep: re-arm, poll once more, then wait on the fds.
		_ = d.txCQ.ReqNotify(false)
		_ = d.rxCQ.ReqNotify(false)
		if d.pollTX(wcs, &touched, &rets)+d.pollRX(wcs, &touched) > 0 {
			idleSince, idle = time.Time{}, 0
			continue
		}
		d.C.PollingOff.Add(1)
		timeout := -1
		d.mu.Lock()
		if len(d.retiring) > 0 {
			timeout = 20
		}
		d.mu.Unlock()
		for i := range pfd {
			pfd[i].Revents = 0
		}
		d.asleep.Store(true)
		_, err := unix.Poll(pfd, timeout)
		d.asleep.Store(false)
		if err != nil && err != unix.EINTR {
			slog.Error("dispatcher: poll", "err", err)
		}
		var buf [8]byte
		_, _ = unix.Read(d.wakeFD, buf[:])
		for {
			cq, err := d.txCh.GetEvent()
			if err != nil || cq == nil {
				break
			}
			txUnacked++
			d.C.CQEvents.Add(1)
		}
		for {
			cq, err := d.rxCh.GetEvent()
			if err != nil || cq == nil {
				break
			}
			rxUnacked++
			d.C.CQEvents.Add(1)
		}
		if txUnacked >= 64 {
			d.txCQ.AckEvents()
			txUnacked = 0
		}
		if rxUnacked >= 64 {
			d.rxCQ.AckEvents()
			rxUnacked = 0
		}
		d.handleAsync()
		d.C.PollingOn.Add(1)
		idleSince, idle = time.Time{}, 0
	}
	d.txCQ.AckEvents()
	d.rxCQ.AckEvents()
}

func (d *Dispatcher) lookup(qpn uint32, cache **entry) *entry {
	if c := *cache; c != nil && c.qp.Num() == qpn {
		return c
	}
	d.mu.Lock()
	e := d.byQPN[qpn]
	d.mu.Unlock()
	*cache = e
	return e
}

func (d *Dispatcher) countWCErr(s verbs.WCStatus) {
	if s >= 0 && int(s) < len(d.C.WCErrors) {
		d.C.WCErrors[s].Add(1)
	}
}

// liveConn returns e's Conn unless e is retired.
func (d *Dispatcher) liveConn(e *entry) Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.retired {
		return nil
	}
	return e.conn
}

func (d *Dispatcher) pollTX(wcs []verbs.WorkCompletion, touched *[]*entry, rets *[]uint32) int {
	n, err := d.txCQ.Poll(wcs)
	if err != nil || n == 0 {
		return 0
	}
	d.C.TXCompletions.Add(uint64(n))
	var cache *entry
	*touched = (*touched)[:0]
	*rets = (*rets)[:0]
	for i := range wcs[:n] {
		wc := &wcs[i]
		e := d.lookup(wc.QPNum, &cache)
		if wc.ID == BeaconID {
			if e != nil {
				d.mu.Lock()
				e.beaconDone = true
				d.mu.Unlock()
			}
			continue
		}
		if wc.ID&kindMask == kindTX {
			*rets = append(*rets, uint32(wc.ID))
		}
		if wc.Status != verbs.WCSuccess {
			d.countWCErr(wc.Status)
			if e != nil {
				if c := d.liveConn(e); c != nil {
					c.OnFault(fmt.Errorf("rdma: send completion on QP %d: %w", wc.QPNum, errors.Join(wc.Status, net.ErrClosed)))
				}
			}
		}
		if e != nil {
			e.inflight.Add(-1)
			if !e.inBatch {
				e.inBatch = true
				*touched = append(*touched, e)
			}
			e.txDone++
		}
	}
	if len(*rets) > 0 {
		d.tx.Put(*rets...)
	}
	for _, e := range *touched {
		e.inBatch = false
		k := e.txDone
		e.txDone = 0
		if c := d.liveConn(e); c != nil {
			c.OnTxComplete(k)
		}
	}
	if len(*rets) > 0 {
		d.mu.Lock()
		ws := d.waiters
		d.waiters = nil
		clear(d.waitSet)
		d.mu.Unlock()
		for _, c := range ws {
			c.OnTxSpace()
		}
	}
	return n
}

func (d *Dispatcher) pollRX(wcs []verbs.WorkCompletion, touched *[]*entry) int {
	n, err := d.rxCQ.Poll(wcs)
	if err != nil || n == 0 {
		return 0
	}
	d.C.RXCompletions.Add(uint64(n))
	var cache *entry
	*touched = (*touched)[:0]
	reposts := 0
	for i := range wcs[:n] {
		wc := &wcs[i]
		idx := uint32(wc.ID)
		e := d.lookup(wc.QPNum, &cache)
		if d.srq != nil {
			reposts++
		} else if e != nil {
			e.rxDeficit.Add(1)
		}
		if wc.Status != verbs.WCSuccess || e == nil {
			d.rx.Put(idx)
			if wc.Status != verbs.WCSuccess {
				d.countWCErr(wc.Status)
			}
			if e != nil && wc.Status != verbs.WCWRFlushErr {
				if c := d.liveConn(e); c != nil {
					c.OnFault(fmt.Errorf("rdma: receive completion on QP %d: %w", wc.QPNum, errors.Join(wc.Status, net.ErrClosed)))
				}
			} else if e != nil {
				if c := d.liveConn(e); c != nil {
					c.OnFault(fmt.Errorf("rdma: receive flushed on QP %d: %w", wc.QPNum, errors.Join(wc.Status, net.ErrClosed)))
				}
			}
			continue
		}
		d.C.RXBytes.Add(uint64(wc.ByteLen))
		e.batch = append(e.batch, RxItem{Seq: e.seq, Chunk: idx, Len: wc.ByteLen, Imm: wc.Imm, HasImm: wc.HasImm})
		e.seq++
		if !e.inBatch {
			e.inBatch = true
			*touched = append(*touched, e)
		}
	}
	// Repost before handing data over, so the receive queue stays full.
	if reposts > 0 {
		d.srqDeficit.Add(int64(reposts))
		d.refillSRQ()
	}
	for _, e := range *touched {
		e.inBatch = false
		if d.srq == nil {
			d.refillQP(e)
		}
		if c := d.liveConn(e); c != nil {
			c.OnRecv(e.batch)
		} else {
			for _, it := range e.batch {
				d.rx.Put(it.Chunk)
			}
		}
		e.batch = e.batch[:0]
	}
	return n
}

// reap moves lingering retired QPs to ERR with a beacon and, with destroy
// (both CQs were just polled empty), destroys those whose beacon completed.
func (d *Dispatcher) reap(destroy bool) {
	d.mu.Lock()
	if len(d.retiring) == 0 {
		d.mu.Unlock()
		return
	}
	now := time.Now()
	var toErr, toDestroy []*entry
	keep := d.retiring[:0]
	for _, e := range d.retiring {
		switch {
		case e.beaconDone && destroy:
			toDestroy = append(toDestroy, e)
			continue
		case !e.errored && (e.inflight.Load() <= 0 || now.After(e.lingerEnd)):
			e.errored = true
			toErr = append(toErr, e)
		}
		keep = append(keep, e)
	}
	d.retiring = keep
	d.mu.Unlock()
	for _, e := range toErr {
		if err := e.qp.ToError(); err != nil {
			slog.Debug("dispatcher: QP to ERR", "qpn", e.qp.Num(), "err", err)
		}
		if _, err := e.qp.PostSend([]verbs.WorkRequest{{ID: BeaconID, Opcode: verbs.OpSend, Flags: verbs.SendSignaled}}); err != nil {
			// No beacon: nothing more can complete on it after a full poll.
			slog.Debug("dispatcher: beacon", "qpn", e.qp.Num(), "err", err)
			d.mu.Lock()
			e.beaconDone = true
			d.mu.Unlock()
		}
	}
	for _, e := range toDestroy {
		if err := e.qp.Close(); err != nil {
			slog.Warn("dispatcher: destroy QP", "qpn", e.qp.Num(), "err", err)
		}
		d.C.QPsDestroyed.Add(1)
		d.mu.Lock()
		delete(d.byQPN, e.qp.Num())
		d.mu.Unlock()
		if e.after != nil {
			e.after()
		}
	}
}

func (d *Dispatcher) handleAsync() {
	for {
		ev, err := d.ctx.GetAsyncEvent()
		if err != nil {
			return
		}
		d.C.AsyncEvents.Add(1)
		switch ev.Type {
		case verbs.EventQPFatal, verbs.EventQPReqErr, verbs.EventQPAccessErr, verbs.EventPathMigErr:
			d.mu.Lock()
			e := d.byQPN[ev.QPNum]
			d.mu.Unlock()
			if e != nil {
				if c := d.liveConn(e); c != nil {
					c.OnFault(fmt.Errorf("rdma: async event %s on QP %d: %w", ev.Type, ev.QPNum, net.ErrClosed))
				}
			}
		case verbs.EventPortErr, verbs.EventDeviceFatal:
			slog.Warn("dispatcher: faulting every connection", "event", ev.Type.String(), "port", ev.Port)
			for _, c := range d.liveConns() {
				c.OnFault(errPortDown)
			}
		case verbs.EventPortActive:
			slog.Info("dispatcher: port active", "device", d.ctx.Name(), "port", ev.Port)
		case verbs.EventSRQLimit:
			d.refillSRQ()
			if d.srq != nil {
				_ = d.srq.ArmLimit(d.srq.MaxWR() / 8)
			}
		case verbs.EventLastWQEReached:
			// The QP left the SRQ; its reaping waits for the beacon anyway.
		default:
			slog.Debug("dispatcher: async event", "event", ev.Type.String())
		}
	}
}

func (d *Dispatcher) liveConns() []Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	var cs []Conn
	for _, e := range d.byQPN {
		if !e.retired {
			cs = append(cs, e.conn)
		}
	}
	return cs
}

// FaultAll reports err to every live connection (used by tests and by the
// stack on device loss). Must not be called on the poller.
func (d *Dispatcher) FaultAll(err error) {
	for _, c := range d.liveConns() {
		c.OnFault(err)
	}
}

// QPsActive is the number of QPs not yet destroyed.
func (d *Dispatcher) QPsActive() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.byQPN)
}

// Stats returns a snapshot of the counters.
func (d *Dispatcher) Stats() Stats {
	s := Stats{
		PollingOn: d.C.PollingOn.Load(), PollingOff: d.C.PollingOff.Load(),
		TXCompletions: d.C.TXCompletions.Load(), RXCompletions: d.C.RXCompletions.Load(),
		RXBytes: d.C.RXBytes.Load(), TXBytes: d.C.TXBytes.Load(), CQEvents: d.C.CQEvents.Load(),
		QPsCreated: d.C.QPsCreated.Load(), QPsDestroyed: d.C.QPsDestroyed.Load(),
		HandshakeErrors: d.C.HandshakeErrors.Load(),
		TxNoMem:         d.C.TxNoMem.Load(), TxPartialMem: d.C.TxPartialMem.Load(),
		Posts: d.C.Posts.Load(), PostedWRs: d.C.PostedWRs.Load(),
		MergeEnter: d.C.MergeEnter.Load(), MergeLeave: d.C.MergeLeave.Load(), MergeDeferred: d.C.MergeDeferred.Load(),
		AsyncEvents: d.C.AsyncEvents.Load(), RXDeficit: d.C.RXDeficit.Load(),
		WriteWRs: d.C.WriteWRs.Load(), WriteBytes: d.C.WriteBytes.Load(),
		AdvertsSent: d.C.AdvertsSent.Load(), AdvertsRecv: d.C.AdvertsRecv.Load(),
		WriteFallbacks: d.C.WriteFallbacks.Load(),
		QPsActive:      uint64(d.QPsActive()),
	}
	if d.tx != nil {
		ts := d.tx.Stats()
		s.InflightTXChunks, s.TXExhaustions = ts.InUse, ts.Exhaustions
	}
	if d.rx != nil {
		rs := d.rx.Stats()
		s.RXBuffersInUse, s.RXBuffers = rs.InUse, rs.Chunks
	}
	for i := range d.C.WCErrors {
		if v := d.C.WCErrors[i].Load(); v > 0 {
			if s.WCErrors == nil {
				s.WCErrors = map[string]uint64{}
			}
			s.WCErrors[verbs.WCStatus(i).String()] = v
		}
	}
	return s
}

// Closed reports whether Close was called.
func (d *Dispatcher) Closed() bool {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	return d.closed
}

// Close stops the poller, destroys every QP still registered and releases
// all resources, children first. Idempotent and nil-safe.
func (d *Dispatcher) Close() error {
	if d == nil {
		return nil
	}
	d.closeMu.Lock()
	if d.closed {
		d.closeMu.Unlock()
		return nil
	}
	d.closed = true
	started := d.started
	d.closeMu.Unlock()
	d.stopping.Store(true)
	if started {
		d.wake()
		<-d.done
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	d.mu.Lock()
	var afters []func()
	for qpn, e := range d.byQPN {
		add(e.qp.Close())
		d.C.QPsDestroyed.Add(1)
		delete(d.byQPN, qpn)
		if e.after != nil {
			afters = append(afters, e.after)
		}
	}
	d.retiring = nil
	d.closedQPs = true
	d.mu.Unlock()
	for _, f := range afters {
		f()
	}
	if d.srq != nil {
		add(d.srq.Close())
	}
	if d.txCQ != nil {
		add(d.txCQ.Close())
	}
	if d.rxCQ != nil {
		add(d.rxCQ.Close())
	}
	if d.txCh != nil {
		add(d.txCh.Close())
	}
	if d.rxCh != nil {
		add(d.rxCh.Close())
	}
	add(d.tx.Close())
	add(d.rx.Close())
	if d.pd != nil {
		add(d.pd.Close())
	}
	if d.ctx != nil {
		add(d.ctx.Close())
	}
	if d.wakeFD >= 0 {
		_ = unix.Close(d.wakeFD)
		d.wakeFD = -1
	}
	return errors.Join(errs...)
}
