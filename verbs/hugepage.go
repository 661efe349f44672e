package verbs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

// Region is mmap'd memory registered as one MR over all of it: huge-page
// backed (MAP_HUGETLB, HugePageSize pages) when asked for and available,
// normal pages otherwise. It is what a memory pool registers its chunks in
// (ms_async_rdma_enable_hugepage). Close deregisters the MR and unmaps the
// memory.
type Region struct {
	buf      *Buffer
	mr       *MR
	huge     bool
	fallback error
}

// hugeFallbacks counts regions that asked for huge pages and got normal
// pages; the first one in the process is logged at Warn, later ones at Debug
// (one pool growing block by block would otherwise repeat the advice).
var hugeFallbacks atomic.Uint64

// HugeFallbacks is the number of regions, process-wide, that asked for huge
// pages and were backed by normal pages instead.
func HugeFallbacks() uint64 { return hugeFallbacks.Load() }

// RegRegion maps size bytes of zeroed memory (an anonymous private mmap with
// MAP_POPULATE) and registers all of it with access.
//
// With huge, the mapping uses MAP_HUGETLB pages of HugePageSize and size is
// rounded up to a multiple of it. When the kernel refuses (ENOMEM: no free
// huge pages reserved; EINVAL: no hugetlb support) the region falls back to
// normal pages of the requested size; the first fallback in the process is
// logged with the reason and how to reserve pages (`sysctl
// vm.nr_hugepages=N`), and FallbackReason says why for every such region.
//
// A registration failure unmaps the memory and is returned (an
// ErrMemlockTooLow error when RLIMIT_MEMLOCK is the cause). The fallback
// is logged to log (nil: slog.Default()), the caller's configured logger.
func (p *PD) RegRegion(size int, access Access, huge bool, log *slog.Logger) (*Region, error) {
	if size <= 0 {
		return nil, kindErr("mmap", syscall.EINVAL, nil, "size must be positive")
	}
	r := &Region{}
	var err error
	if huge {
		r.buf, err = MapBuffer(size, true)
		if err == nil {
			r.huge = true
		} else if !Supported {
			return nil, err // built without cgo: nothing to fall back to
		} else {
			r.fallback = hugeAdvice(size, err)
			level := slog.LevelDebug
			if hugeFallbacks.Add(1) == 1 {
				level = slog.LevelWarn
			}
			if log == nil {
				log = slog.Default()
			}
			log.Log(context.Background(), level, r.fallback.Error()+"; using normal pages")
		}
	}
	if r.buf == nil {
		if r.buf, err = MapBuffer(size, false); err != nil {
			return nil, err
		}
	}
	if r.mr, err = p.RegMR(r.buf, access); err != nil {
		_ = r.buf.Free()
		return nil, err
	}
	return r, nil
}

// hugeAdvice explains why a MAP_HUGETLB mapping of size bytes failed (err,
// from MapBuffer) and how to reserve huge pages; the result wraps err's
// errno.
func hugeAdvice(size int, err error) error {
	pages := (size + HugePageSize - 1) / HugePageSize
	why := "not enough free huge pages"
	en := syscall.ENOMEM
	var ve *Error
	if errors.As(err, &ve) {
		en = ve.Errno
	}
	if en != syscall.ENOMEM {
		why = "the kernel refused MAP_HUGETLB"
	}
	state := "/proc/meminfo unreadable"
	want := pages // pages to reserve, on top of those reserved now
	if info, ierr := ReadHugePageInfo(); ierr == nil {
		state = fmt.Sprintf("HugePages_Total=%d HugePages_Free=%d HugePages_Rsvd=%d",
			info.Total, info.Free, info.Rsvd)
		want = info.Total + pages - min(pages, max(info.Free-info.Rsvd, 0))
	}
	unit := "pages"
	if pages == 1 {
		unit = "page"
	}
	return &Error{Op: "mmap MAP_HUGETLB", Errno: en, Detail: fmt.Sprintf(
		"%s for a %d KiB region (%d %s of %d MiB; %s); reserve them with "+
			"`sysctl vm.nr_hugepages=%d` (or a vm.nr_hugepages line in /etc/sysctl.conf)",
		why, (size+1023)>>10, pages, unit, HugePageSize>>20, state, want)}
}

// Buffer is the region's memory.
func (r *Region) Buffer() *Buffer {
	if r == nil {
		return nil
	}
	return r.buf
}

// MR is the registration covering the whole region.
func (r *Region) MR() *MR {
	if r == nil {
		return nil
	}
	return r.mr
}

// Bytes is the region's memory as a slice (nil after Close).
func (r *Region) Bytes() []byte {
	if r == nil {
		return nil
	}
	return r.buf.Bytes()
}

// Len is the region's size in bytes (rounded up to HugePageSize when huge).
func (r *Region) Len() int {
	if r == nil {
		return 0
	}
	return r.buf.Len()
}

// Huge reports whether the region is backed by MAP_HUGETLB pages.
func (r *Region) Huge() bool { return r != nil && r.huge }

// FallbackReason is why a region that asked for huge pages has normal pages
// (wrapping the mmap errno), or nil.
func (r *Region) FallbackReason() error {
	if r == nil {
		return nil
	}
	return r.fallback
}

// Close deregisters the MR and unmaps the memory; idempotent and nil-safe.
func (r *Region) Close() error {
	if r == nil {
		return nil
	}
	return errors.Join(r.mr.Close(), r.buf.Free())
}

// HugePageInfo is the system's huge page pool as /proc/meminfo reports it
// (for the default huge page size).
type HugePageInfo struct {
	Total    int // HugePages_Total: pages reserved (vm.nr_hugepages + surplus)
	Free     int // HugePages_Free: pages not faulted in by anyone
	Rsvd     int // HugePages_Rsvd: promised to mappings, not yet faulted in
	Surp     int // HugePages_Surp: surplus pages above vm.nr_hugepages
	PageSize int // Hugepagesize, in bytes
}

// ReadHugePageInfo reads the huge page counters from /proc/meminfo.
func ReadHugePageInfo() (HugePageInfo, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return HugePageInfo{}, fmt.Errorf("verbs: huge page info: %w", err)
	}
	return ParseHugePageInfo(b)
}

// ParseHugePageInfo decodes the huge page lines of a /proc/meminfo text;
// other lines are ignored. It fails when HugePages_Total, HugePages_Free or
// Hugepagesize is missing or a value is not a non-negative integer.
func ParseHugePageInfo(meminfo []byte) (HugePageInfo, error) {
	var info HugePageInfo
	var seen int
	const total, free, size = 1, 2, 4
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		key, rest, ok := bytes.Cut(sc.Bytes(), []byte{':'})
		if !ok {
			continue
		}
		var dst *int
		var bit int
		unit := false // the value is in kB
		switch string(key) {
		case "HugePages_Total":
			dst, bit = &info.Total, total
		case "HugePages_Free":
			dst, bit = &info.Free, free
		case "HugePages_Rsvd":
			dst = &info.Rsvd
		case "HugePages_Surp":
			dst = &info.Surp
		case "Hugepagesize":
			dst, bit, unit = &info.PageSize, size, true
		default:
			continue
		}
		f := bytes.Fields(rest)
		kb := len(f) == 2 && string(f[1]) == "kB"
		if kb != unit || (len(f) != 1 && !kb) {
			return HugePageInfo{}, fmt.Errorf("verbs: /proc/meminfo: bad %s line %q", key, sc.Bytes())
		}
		v, err := strconv.ParseUint(string(f[0]), 10, 31)
		if err != nil {
			return HugePageInfo{}, fmt.Errorf("verbs: /proc/meminfo: %s: %w", key, err)
		}
		*dst = int(v)
		if kb {
			if v > (1<<31-1)>>10 {
				return HugePageInfo{}, fmt.Errorf("verbs: /proc/meminfo: %s %d kB out of range", key, v)
			}
			*dst = int(v) << 10
		}
		seen |= bit
	}
	if err := sc.Err(); err != nil {
		return HugePageInfo{}, fmt.Errorf("verbs: /proc/meminfo: %w", err)
	}
	if seen != total|free|size {
		return HugePageInfo{}, errors.New("verbs: /proc/meminfo has no huge page counters (kernel without hugetlbfs?)")
	}
	return info, nil
}
