package msgr

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// rxBufPool recycles the buffers big received messages are read into (a
// frame of ownFrameMin to ownFrameStep bytes gets a buffer of its own,
// which becomes the Message's storage: frames.go). Without it every such
// message cost a fresh allocation: zeroed memory, page faults and a GC
// cycle every few dozen 64 KiB messages (issue 9's profile of msgr_bw).
//
// A buffer comes back only through Message.Release. One the application
// keeps, or drops without releasing, is garbage collected like any other
// memory: the pool holds only released buffers, and sync.Pool lets the GC
// empty it, so nothing the application forgets stays pinned.
//
// Buffers are classed by size, four classes per doubling from ownFrameMin
// (at most a quarter of a buffer is slack), so a stream of one message
// size reuses one class.
type rxBufPool struct {
	classes [rxBufClasses]sync.Pool
	// reused and allocated count the buffers handed out from the pool and
	// made new; released counts those given back (by Message.Release, or
	// by the messenger for a frame no message took).
	reused, allocated, released atomic.Uint64
}

// rxBuf is one pooled buffer.
type rxBuf struct {
	b     []byte // len(b) is the class size
	class int
	pool  *rxBufPool
}

const (
	rxBufMinShift = 14 // ownFrameMin, 16 KiB
	rxBufMaxShift = 20 // ownFrameStep, 1 MiB
	rxBufClasses  = (rxBufMaxShift-rxBufMinShift)*4 + 1
)

// rxBufClass is the smallest class that holds n bytes (n ≤ ownFrameStep),
// and that class's size.
func rxBufClass(n int) (class, size int) {
	if n <= 1<<rxBufMinShift {
		return 0, 1 << rxBufMinShift
	}
	shift := bits.Len(uint(n-1)) - 1 // 2^shift < n ≤ 2^(shift+1)
	quarter := 1 << (shift - 2)
	steps := (n - 1<<shift + quarter - 1) / quarter // 1..4 quarters above 2^shift
	class = (shift-rxBufMinShift)*4 + steps
	return class, 1<<shift + steps*quarter
}

// get returns a buffer of at least n bytes (n ≤ ownFrameStep).
func (p *rxBufPool) get(n int) *rxBuf {
	class, size := rxBufClass(n)
	if b, ok := p.classes[class].Get().(*rxBuf); ok {
		p.reused.Add(1)
		return b
	}
	p.allocated.Add(1)
	return &rxBuf{b: make([]byte, size), class: class, pool: p}
}

// put makes b available again; nothing may use its memory after.
func (b *rxBuf) put() {
	b.pool.released.Add(1)
	b.pool.classes[b.class].Put(b)
}

// RxBufStats are the receive-buffer pool's counters (RxBufStats).
type RxBufStats struct {
	// Reused and Allocated count the buffers big messages were read into,
	// taken from the pool and made new; Released counts the buffers given
	// back: by Message.Release, or by the messenger for a frame no message
	// took (a duplicate, a fault, a dropped socket).
	Reused, Allocated, Released uint64
}

// RxBufStats returns the counters of the pool that big received messages'
// storage comes from (see Message.Release).
func (m *Messenger) RxBufStats() RxBufStats {
	return RxBufStats{Reused: m.rxBufs.reused.Load(), Allocated: m.rxBufs.allocated.Load(), Released: m.rxBufs.released.Load()}
}
