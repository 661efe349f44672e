package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

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
// block, in particular not on a lock its own senders hold while they copy
// (rdmastack hands the completions to a per-connection inbox instead).
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
	DeviceName   string
	Port         int
	GIDIndex     int // -1: pick the RoCEv2 IPv4 GID
	ChunkSize    int
	SendBuffers  int
	RecvBuffers  int // 0 unlimited
	RecvQueueLen int
	SupportSRQ   bool
	PollingUS    int
	HugePages    bool
	// Logger receives the dispatcher's log lines (nil: slog.Default()).
	Logger *slog.Logger
	// CQDepth fixes every CQ's size (bounded by the device); 0 sizes each
	// CQ pair for the QPs on it, growing it as QPs are added (cqroom.go).
	CQDepth       int
	RXBlockChunks int // 0: RecvQueueLen
	// Context, when set, is used instead of opening DeviceName: the rdma_cm
	// path passes librdmacm's context of the device (CMID.Context), whose
	// PDs and CQs rdma_create_qp accepts.
	Context *verbs.Context
}

// Dispatcher is one stack's RDMA dispatcher.
type Dispatcher struct {
	opts Options
	log  *slog.Logger
	ctx  *verbs.Context
	pd   *verbs.PD
	gid  verbs.GIDEntry
	port verbs.PortAttr
	dev  verbs.DeviceAttr

	txCh, rxCh *verbs.CompChannel
	txCQ, rxCQ *verbs.CQ
	srq        *verbs.SRQ
	srqDepth   int    // receive WRs the SRQ is kept filled with
	room       cqRoom // the shared CQ pair's QPs
	tx, rx     *mempool.Pool
	wakeFD     int

	mu       sync.Mutex
	byQPN    map[uint32]*entry
	retiring []*entry
	waiters  []Conn
	waitSet  map[Conn]struct{}
	sets     []*CQSet // worker CQ pairs (NewCQSet), destroyed after the QPs
	// closedQPs: Close destroyed every QP; later retirements finish at once.
	closedQPs bool

	rxPostMu   sync.Mutex
	srqDeficit atomic.Int64
	srqBatch   int64               // repostBatch of the SRQ (set at creation)
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

// Open opens the device and builds every shared resource; Start launches the
// poller. A machine without the device (or without cgo) gets an error
// wrapping verbs.ErrNoDevice or verbs.ErrNotSupported.
func Open(opts Options) (_ *Dispatcher, err error) {
	if opts.Port <= 0 {
		opts.Port = 1
	}
	if opts.RecvQueueLen <= 0 {
		opts.RecvQueueLen = 4096
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &Dispatcher{log: opts.Logger, opts: opts, byQPN: map[uint32]*entry{}, waitSet: map[Conn]struct{}{}, wakeFD: -1, done: make(chan struct{})}
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
	if d.tx, err = mempool.NewTX(d.pd, mempool.Options{ChunkSize: opts.ChunkSize, Count: opts.SendBuffers, HugePages: opts.HugePages, Logger: opts.Logger}); err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	blk := opts.RXBlockChunks
	if blk <= 0 {
		blk = opts.RecvQueueLen
	}
	if d.rx, err = mempool.NewRX(d.pd, mempool.Options{ChunkSize: opts.ChunkSize, Count: opts.RecvBuffers, BlockChunks: blk, HugePages: opts.HugePages, Logger: opts.Logger}); err != nil {
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
		d.srqDepth = n
		d.srqBatch = repostBatch(n)
		d.srqDeficit.Store(int64(n))
		d.refillSRQ()
	}
	// The CQs come last: their size follows from the pools and the SRQ.
	if err = d.makeCQPair("", &d.txCh, &d.rxCh, &d.txCQ, &d.rxCQ); err != nil {
		return nil, err
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
	sets := d.sets
	d.sets = nil
	d.mu.Unlock()
	for _, s := range sets {
		add(s.close())
	}
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
