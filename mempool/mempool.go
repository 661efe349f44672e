package mempool

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// ErrExhausted is returned when a pool has no free chunk and may not grow.
var ErrExhausted = errors.New("mempool: no free chunk")

// HugePageSize is the unit huge-page regions are rounded up to.
const HugePageSize = verbs.HugePageSize

// Options size a pool.
type Options struct {
	// ChunkSize is the size of every chunk in bytes (ms_async_rdma_buffer_size).
	ChunkSize int
	// Count is the number of TX chunks (ms_async_rdma_send_buffers), or for
	// the RX pool the maximum number of chunks (ms_async_rdma_receive_buffers,
	// 0 = unlimited).
	Count int
	// BlockChunks is how many chunks the RX pool registers per growth step
	// (default 256, bounded by Count).
	BlockChunks int
	// HugePages asks for huge-page backed memory (ms_async_rdma_enable_hugepage):
	// every block is mmap'd with MAP_HUGETLB, rounded up to HugePageSize; a
	// block for which the kernel has no free huge pages falls back to normal
	// pages (logged once per process; Stats.HugeBlocks and Stats.Memory
	// tell).
	HugePages bool
	// Access is the MR access (default local write).
	Access verbs.Access
	// Logger receives the huge-page fallback warning: the messenger's
	// configured logger (config.Config.Log()); nil is slog.Default().
	Logger *slog.Logger
}

// Stats is a snapshot of a pool's counters.
type Stats struct {
	Chunks      int    // chunks the pool owns now
	InUse       int    // chunks handed out and not returned
	Exhaustions uint64 // Get calls that found no free chunk
	Blocks      int    // registered blocks (1 for the TX cluster)
	// HugePages: every block is backed by MAP_HUGETLB huge pages.
	HugePages bool
	// HugeBlocks is how many blocks are huge-page backed; with huge pages
	// asked for, Blocks-HugeBlocks fell back to normal pages (too few
	// reserved: sysctl vm.nr_hugepages).
	HugeBlocks int
	// Bytes is the memory the pool has registered (huge-page regions are
	// rounded up to whole pages).
	Bytes int64
}

// Memory names the memory backing the pool: "hugetlb" (every block on huge
// pages), "normal" (none), or "mixed" (some blocks fell back).
func (s Stats) Memory() string {
	switch {
	case s.Blocks > 0 && s.HugeBlocks == s.Blocks:
		return "hugetlb"
	case s.HugeBlocks == 0:
		return "normal"
	}
	return "mixed"
}

// CheckMemlock checks RLIMIT_MEMLOCK against need bytes and returns an error
// that says how much is needed and how to raise it.
func CheckMemlock(need uint64) error {
	if err := verbs.CheckMemlock(need); err != nil {
		return fmt.Errorf("mempool: registering %d MiB needs RLIMIT_MEMLOCK >= %d KiB "+
			"(raise it with `ulimit -l unlimited`, LimitMEMLOCK=infinity in a systemd unit, "+
			"or a memlock line in /etc/security/limits.conf): %w", need>>20, (need+1023)>>10, err)
	}
	return nil
}

// block is one registered region.
type block struct {
	reg   *verbs.Region
	buf   *verbs.Buffer
	mr    *verbs.MR
	base  uint64
	first uint32 // index of its first chunk
	n     uint32
}

// Pool is a set of fixed-size chunks of registered memory, identified by a
// dense index (the wr_id space of the dispatcher). Get and Put are safe for
// concurrent use; they take one short lock per call, for a whole batch.
type Pool struct {
	pd        *verbs.PD
	chunkSize int
	max       int // 0 unlimited
	blockN    int
	access    verbs.Access
	huge      bool
	name      string
	log       *slog.Logger

	mu     sync.Mutex
	free   []uint32
	blocks []block
	// byIndex resolves a chunk index to its block quickly (chunk index /
	// blockN when every block has blockN chunks; kept general).
	chunks      atomic.Int64
	inUse       atomic.Int64
	hugeBlocks  int   // p.mu
	bytes       int64 // p.mu
	exhaustions atomic.Uint64
	closed      bool
}

// NewTX builds the TX cluster: one region of opts.Count chunks registered as
// one MR.
func NewTX(pd *verbs.PD, opts Options) (*Pool, error) {
	if opts.Count <= 0 || opts.ChunkSize <= 0 {
		return nil, fmt.Errorf("mempool: TX pool needs a positive chunk size and count (got %d x %d)", opts.Count, opts.ChunkSize)
	}
	p := newPool(pd, opts, "tx")
	p.max = opts.Count
	p.blockN = opts.Count
	return p.firstBlock()
}

// NewRX builds the RX pool; it registers its first block now and grows in
// blocks of opts.BlockChunks up to opts.Count chunks (0 = unlimited).
func NewRX(pd *verbs.PD, opts Options) (*Pool, error) {
	if opts.ChunkSize <= 0 || opts.Count < 0 {
		return nil, fmt.Errorf("mempool: RX pool needs a positive chunk size (got %d)", opts.ChunkSize)
	}
	p := newPool(pd, opts, "rx")
	p.max = opts.Count
	p.blockN = opts.BlockChunks
	if p.blockN <= 0 {
		p.blockN = 256
	}
	if p.max > 0 && p.blockN > p.max {
		p.blockN = p.max
	}
	return p.firstBlock()
}

// firstBlock registers the pool's first block, once RLIMIT_MEMLOCK leaves
// room for it.
func (p *Pool) firstBlock() (*Pool, error) {
	if err := CheckMemlock(p.regionSize(p.blockN)); err != nil {
		return nil, err
	}
	if err := p.grow(); err != nil {
		return nil, err
	}
	return p, nil
}

func newPool(pd *verbs.PD, opts Options, name string) *Pool {
	acc := opts.Access
	if acc == 0 {
		acc = verbs.AccessLocalWrite
	}
	return &Pool{pd: pd, chunkSize: opts.ChunkSize, access: acc, huge: opts.HugePages, name: name, log: opts.Logger}
}

// regionSize is the memory a block of n chunks takes (whole huge pages when
// they are asked for).
func (p *Pool) regionSize(n int) uint64 {
	size := uint64(n) * uint64(p.chunkSize)
	if p.huge {
		size = (size + HugePageSize - 1) / HugePageSize * HugePageSize
	}
	return size
}

// grow registers one more block; p.mu held or pool not yet shared.
func (p *Pool) grow() error {
	n := p.blockN
	have := int(p.chunks.Load())
	if p.max > 0 {
		if have >= p.max {
			return ErrExhausted
		}
		if have+n > p.max {
			n = p.max - have
		}
	}
	// verbs.RegRegion maps (MAP_HUGETLB when asked for, falling back to
	// normal pages with one log line) and registers the whole region.
	reg, err := p.pd.RegRegion(n*p.chunkSize, p.access, p.huge, p.log)
	if err != nil {
		return fmt.Errorf("mempool: %s: register %d bytes: %w", p.name, n*p.chunkSize, err)
	}
	mr := reg.MR()
	b := block{reg: reg, buf: reg.Buffer(), mr: mr, base: mr.Addr(), first: uint32(have), n: uint32(n)}
	p.blocks = append(p.blocks, b)
	p.bytes += int64(reg.Len())
	if reg.Huge() {
		p.hugeBlocks++
	}
	for i := n - 1; i >= 0; i-- {
		p.free = append(p.free, b.first+uint32(i))
	}
	p.chunks.Add(int64(n))
	return nil
}

func (p *Pool) blockOf(idx uint32) *block {
	if len(p.blocks) == 0 {
		return nil
	}
	// Blocks are appended in index order; a binary search keeps this cheap.
	lo, hi := 0, len(p.blocks)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if p.blocks[mid].first <= idx {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return &p.blocks[lo]
}

// ChunkSize is the size of every chunk.
func (p *Pool) ChunkSize() int { return p.chunkSize }

// Get takes up to len(dst) free chunks into dst and returns how many. With
// grow set (RX) it registers a new block when the free list is empty and the
// cap allows. Zero chunks counts one exhaustion event.
func (p *Pool) Get(dst []uint32, grow bool) int {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0
	}
	if len(p.free) < len(dst) && grow {
		for len(p.free) < len(dst) {
			if p.grow() != nil {
				break
			}
		}
	}
	n := copy(dst, p.free[max(0, len(p.free)-len(dst)):])
	p.free = p.free[:len(p.free)-n]
	p.mu.Unlock()
	if n == 0 && len(dst) > 0 {
		p.exhaustions.Add(1)
	}
	p.inUse.Add(int64(n))
	return n
}

// Put returns chunks to the free list.
func (p *Pool) Put(idx ...uint32) {
	if len(idx) == 0 {
		return
	}
	p.mu.Lock()
	if !p.closed {
		p.free = append(p.free, idx...)
	}
	p.mu.Unlock()
	p.inUse.Add(-int64(len(idx)))
}

// Free is the number of free chunks.
func (p *Pool) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

// Bytes is chunk idx's memory (ChunkSize bytes).
func (p *Pool) Bytes(idx uint32) []byte {
	p.mu.Lock()
	b := p.blockOf(idx)
	p.mu.Unlock()
	if b == nil {
		return nil
	}
	off := int(idx-b.first) * p.chunkSize
	return b.buf.Bytes()[off : off+p.chunkSize]
}

// SGE describes the first length bytes of chunk idx.
func (p *Pool) SGE(idx uint32, length int) verbs.SGE {
	p.mu.Lock()
	b := p.blockOf(idx)
	p.mu.Unlock()
	if b == nil {
		return verbs.SGE{}
	}
	return verbs.SGE{Addr: b.base + uint64(idx-b.first)*uint64(p.chunkSize), Length: uint32(length), LKey: b.mr.LKey()}
}

// Contains reports whether b lies entirely inside one chunk of the pool, and
// which (for zero-copy sends of buffers that already live in the TX region).
func (p *Pool) Contains(b []byte) (idx uint32, off int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	a := uint64(uintptr(unsafe.Pointer(&b[0])))
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.blocks {
		bl := &p.blocks[i]
		end := bl.base + uint64(bl.n)*uint64(p.chunkSize)
		if a >= bl.base && a+uint64(len(b)) <= end {
			rel := a - bl.base
			c := rel / uint64(p.chunkSize)
			o := int(rel % uint64(p.chunkSize))
			if o+len(b) > p.chunkSize {
				return 0, 0, false
			}
			return bl.first + uint32(c), o, true
		}
	}
	return 0, 0, false
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	nb, hb, by := len(p.blocks), p.hugeBlocks, p.bytes
	p.mu.Unlock()
	return Stats{Chunks: int(p.chunks.Load()), InUse: int(p.inUse.Load()), Exhaustions: p.exhaustions.Load(),
		Blocks: nb, HugePages: nb > 0 && hb == nb, HugeBlocks: hb, Bytes: by}
}

// Close deregisters and frees every block; idempotent and nil-safe. Chunks
// still in use must no longer be touched by the device (their QPs destroyed).
func (p *Pool) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	for _, b := range p.blocks {
		if err := b.reg.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	p.blocks, p.free = nil, nil
	p.hugeBlocks, p.bytes = 0, 0
	return errors.Join(errs...)
}
