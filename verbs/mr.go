package verbs

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/asyncmsgr/asyncmsgr/verbs/cshim"
)

// AllocPD allocates a protection domain.
func (c *Context) AllocPD() (*PD, error) {
	const op = "ibv_alloc_pd"
	if err := c.usable(op); err != nil {
		return nil, err
	}
	var h uintptr
	n, err := newNodeFor(op, func() (err error) { h, err = cshim.AllocPD(c.h); return err }, c.nodeOrNil())
	if err != nil {
		return nil, err
	}
	p := &PD{n: n, h: h, ctx: c}
	arm(n, p, func() error { return cshim.DeallocPD(h) })
	return p, nil
}

// AllocBuffer allocates size zeroed bytes of page-aligned C memory (never
// moved or freed by the Go GC) for registration.
func AllocBuffer(size int) (*Buffer, error) {
	const op = "posix_memalign"
	if size <= 0 {
		return nil, kindErr(op, syscall.EINVAL, nil, "size must be positive")
	}
	p, err := cshim.Malloc(size, os.Getpagesize())
	if err != nil {
		return nil, opErr(op, err)
	}
	n, _ := newNode(op)
	b := &Buffer{n: n, p: p, size: size}
	arm(n, b, func() error { cshim.Free(p); return nil })
	return b, nil
}

// HugePageSize is the huge page size MapBuffer uses (2 MiB).
const HugePageSize = 2 << 20

// MapBuffer allocates size zeroed bytes with an anonymous private mmap, which
// the Go GC never moves or frees. With huge it uses MAP_HUGETLB pages of
// HugePageSize (size is rounded up) and MAP_POPULATE; when the system has no
// free huge pages that fails with ENOMEM and the caller may fall back to
// huge=false. Free unmaps it.
func MapBuffer(size int, huge bool) (*Buffer, error) {
	op := "mmap"
	if size <= 0 {
		return nil, kindErr(op, syscall.EINVAL, nil, "size must be positive")
	}
	if huge {
		op = "mmap MAP_HUGETLB"
		size = (size + HugePageSize - 1) &^ (HugePageSize - 1)
	}
	p, err := cshim.Mmap(size, huge)
	if err != nil {
		return nil, opErr(op, err)
	}
	n, _ := newNode(op)
	b := &Buffer{n: n, p: p, size: size}
	arm(n, b, func() error { return cshim.Munmap(p, size) })
	return b, nil
}

// Bytes is the buffer's memory as a slice (nil after Free).
func (b *Buffer) Bytes() []byte {
	if b == nil || b.n.isClosed() {
		return nil
	}
	return cshim.Bytes(b.p, b.size)
}

// RegMR registers the whole buffer.
func (p *PD) RegMR(buf *Buffer, access Access) (*MR, error) {
	return p.RegMRRange(buf, 0, buf.Len(), access)
}

// RegMRRange registers buf[off:off+length]. A zero length or a range outside
// the buffer fails with EINVAL before reaching the device; an ENOMEM from the
// kernel with a finite RLIMIT_MEMLOCK is reported as ErrMemlockTooLow.
func (p *PD) RegMRRange(buf *Buffer, off, length int, access Access) (*MR, error) {
	const op = "ibv_reg_mr"
	if buf == nil || buf.n.isClosed() {
		return nil, goneErr(op)
	}
	if length <= 0 || off < 0 || off+length > buf.size {
		return nil, kindErr(op, syscall.EINVAL, nil, fmt.Sprintf("range [%d,+%d) of a %d-byte buffer", off, length, buf.size))
	}
	n, err := newNode(op, p.nodeOrNil(), buf.n)
	if err != nil {
		return nil, err
	}
	addr := buf.p + uintptr(off)
	h, lkey, rkey, err := cshim.RegMR(p.h, addr, length, int(access))
	if err != nil {
		n.detach()
		if errors.Is(err, syscall.ENOMEM) {
			return nil, memlockErr(op, syscall.ENOMEM)
		}
		return nil, opErr(op, err)
	}
	m := &MR{n: n, h: h, buf: buf, addr: addr, length: length, lkey: lkey, rkey: rkey}
	arm(n, m, func() error { return cshim.DeregMR(h) })
	return m, nil
}

// Bytes is the registered range as a slice.
func (m *MR) Bytes() []byte {
	if m == nil || m.buf.n.isClosed() {
		return nil
	}
	return cshim.Bytes(m.addr, m.length)
}
