package rdmatest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ResourceKinds are the `rdma resource show` object kinds counted per
// process. A kind the installed rdma tool or kernel does not know is left
// out of the counts (and reported by Resources' second result).
var ResourceKinds = []string{"qp", "cq", "mr", "pd", "cm_id", "srq", "ctx"}

// Counts maps a resource kind ("qp", "fd:eventfd", ...) to how many exist.
type Counts map[string]int

// String lists the non-zero counts in a stable order.
func (c Counts) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if c[k] != 0 {
			fmt.Fprintf(&b, "%s=%d ", k, c[k])
		}
	}
	return strings.TrimSpace(b.String())
}

// Diff returns after-before for every key of either, keeping non-zero ones.
func Diff(before, after Counts) Counts {
	d := Counts{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok && v != 0 {
			d[k] = -v
		}
	}
	return d
}

// RDMAResources counts the RDMA objects owned by process pid, per kind, from
// `rdma -j resource show KIND`. The kernel records the *thread* that created
// an object (its pid field is that thread's id), and cgo calls run on any of
// a Go process's threads, so an object counts when its pid is one of the
// process's threads (/proc/PID/task), or when it has no pid (its thread has
// exited) but the process's command name and is not the kernel's.
// Kernel-owned objects (GSI QPs, comm "ib_core") are not counted.
// unsupported lists kinds the tool or kernel rejected.
func RDMAResources(pid int) (c Counts, unsupported []string, err error) {
	c = Counts{}
	own := ownerOf(pid)
	for _, kind := range ResourceKinds {
		out, err := exec.Command("rdma", "-j", "resource", "show", kind).CombinedOutput()
		if err != nil {
			unsupported = append(unsupported, kind)
			continue
		}
		n, err := countOwned(out, own)
		if err != nil {
			return nil, nil, fmt.Errorf("rdma resource show %s: %w: %s", kind, err, out)
		}
		c[kind] = n
	}
	if len(unsupported) == len(ResourceKinds) {
		return nil, unsupported, fmt.Errorf("rdma resource show works for no kind (is rdma (iproute2) installed, are we root?)")
	}
	return c, unsupported, nil
}

// owner identifies a process's objects in `rdma -j` listings.
type owner struct {
	tids map[int]bool
	comm string
}

// ownerOf is process pid as an owner: its threads and its command name.
func ownerOf(pid int) owner {
	own := owner{tids: map[int]bool{pid: true}}
	if tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid)); err == nil {
		for _, d := range tasks {
			if tid, err := strconv.Atoi(d.Name()); err == nil {
				own.tids[tid] = true
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
		own.comm = strings.TrimSpace(string(b))
	}
	return own
}

func (o owner) owns(obj map[string]any) bool {
	if p, ok := obj["pid"].(float64); ok {
		return o.tids[int(p)]
	}
	comm, _ := obj["comm"].(string)
	return comm != "" && comm == o.comm && comm != "ib_core" && !strings.HasPrefix(comm, "[")
}

// countOwned counts the objects of a `rdma -j` listing that o owns.
func countOwned(out []byte, o owner) (int, error) {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return 0, nil
	}
	var objs []map[string]any
	if err := json.Unmarshal([]byte(s), &objs); err != nil {
		// some iproute2 versions print one JSON array per device
		dec := json.NewDecoder(strings.NewReader(s))
		objs = objs[:0]
		for dec.More() {
			var part []map[string]any
			if err := dec.Decode(&part); err != nil {
				return 0, err
			}
			objs = append(objs, part...)
		}
	}
	n := 0
	for _, obj := range objs {
		if o.owns(obj) {
			n++
		}
	}
	return n, nil
}

// FDs counts this process's open file descriptors by kind: "fd" (all),
// "fd:eventfd", "fd:eventpoll", "fd:socket", "fd:uverbs" (/dev/infiniband
// files), "fd:anon:NAME" for other anonymous inodes, "fd:pipe", "fd:file".
func FDs() (Counts, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	c := Counts{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the fd ReadDir itself used, closed meanwhile
		}
		c["fd"]++
		switch {
		case target == "anon_inode:[eventfd]":
			c["fd:eventfd"]++
		case target == "anon_inode:[eventpoll]":
			c["fd:eventpoll"]++
		case strings.HasPrefix(target, "socket:"):
			c["fd:socket"]++
		case strings.HasPrefix(target, "pipe:"):
			c["fd:pipe"]++
		case strings.HasPrefix(target, "/dev/infiniband/"):
			c["fd:uverbs"]++
		case strings.HasPrefix(target, "anon_inode:"):
			c["fd:anon:"+strings.Trim(strings.TrimPrefix(target, "anon_inode:"), "[]")]++
		default:
			c["fd:file"]++
		}
	}
	return c, nil
}

// Resources is RDMAResources(own pid) merged with FDs: one snapshot for
// before/after leak checks. It fails the test when neither can be read.
func Resources(t testing.TB) Counts {
	t.Helper()
	c, _, err := RDMAResources(os.Getpid())
	if err != nil {
		t.Fatalf("rdma resources: %v", err)
	}
	fds, err := FDs()
	if err != nil {
		t.Fatalf("fd count: %v", err)
	}
	for k, v := range fds {
		c[k] = v
	}
	return c
}

// WaitResources waits (bounded by limit) until Resources equals want on every
// key of want, since QPs die asynchronously (a dead QP is destroyed after
// its beacon completes). It returns the last snapshot; the caller asserts.
func WaitResources(t testing.TB, want Counts, limit time.Duration) Counts {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := Resources(t)
		same := true
		for k, v := range want {
			if got[k] != v {
				same = false
				break
			}
		}
		if same || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SettledResources returns a snapshot once three in a row, 100 ms apart,
// agree (bounded by limit: then the last one): a baseline taken while a
// closed connection's side-channel socket or QP is still being torn down
// would count that object as if it belonged to the baseline.
func SettledResources(t testing.TB, limit time.Duration) Counts {
	t.Helper()
	deadline := time.Now().Add(limit)
	last, same := Resources(t), 0
	for same < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		got := Resources(t)
		if len(Diff(last, got)) == 0 {
			same++
		} else {
			same = 0
		}
		last = got
	}
	return last
}

// ProcCPU is the CPU time (user + system) this process has used, from
// /proc/self/stat, with the kernel's clock-tick resolution (10 ms).
func ProcCPU() (time.Duration, error) {
	u, s, err := ProcCPUSplit()
	return u + s, err
}

// ProcCPUSplit is ProcCPU as user and system time. (With Soft-RoCE, rxe's
// packet processing runs in the kernel and much of it is charged to the
// process that posts or polls.)
func ProcCPUSplit() (user, sys time.Duration, err error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStatSplit(string(b))
}

// clockTicks is USER_HZ, which is 100 on every Linux architecture Go
// supports (sysconf(_SC_CLK_TCK) returns it).
const clockTicks = 100

func parseStatCPU(s string) (time.Duration, error) {
	u, st, err := parseStatSplit(s)
	return u + st, err
}

func parseStatSplit(s string) (user, sys time.Duration, err error) {
	// comm (field 2) may contain spaces and parentheses: fields after the
	// last ')' start at field 3 (state).
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/self/stat: no ')' in %q", s)
	}
	f := strings.Fields(s[i+1:])
	// field 14 utime, 15 stime -> indices 11, 12 after field 3
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/self/stat: %d fields after comm", len(f))
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/self/stat utime %q: %w", f[11], err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/self/stat stime %q: %w", f[12], err)
	}
	return time.Duration(ut) * time.Second / clockTicks, time.Duration(st) * time.Second / clockTicks, nil
}

// QPInfo is one QP from `rdma -j resource show qp`.
type QPInfo struct {
	Dev   string // "rxe0"
	LQPN  int
	RQPN  int // remote QPN (0 until connected)
	Type  string
	State string // "RESET", "INIT", "RTR", "RTS", "ERR", ...
}

// OwnQPs lists the QPs process pid owns (see RDMAResources for ownership).
func OwnQPs(pid int) ([]QPInfo, error) {
	own := ownerOf(pid)
	out, err := exec.Command("rdma", "-j", "resource", "show", "qp").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("rdma resource show qp: %w: %s", err, out)
	}
	var objs []map[string]any
	if s := strings.TrimSpace(string(out)); s != "" {
		if err := json.Unmarshal([]byte(s), &objs); err != nil {
			return nil, fmt.Errorf("rdma resource show qp: %w: %s", err, out)
		}
	}
	var qps []QPInfo
	for _, o := range objs {
		if !own.owns(o) {
			continue
		}
		q := QPInfo{}
		q.Dev, _ = o["ifname"].(string)
		q.Type, _ = o["type"].(string)
		q.State, _ = o["state"].(string)
		if v, ok := o["lqpn"].(float64); ok {
			q.LQPN = int(v)
		}
		if v, ok := o["rqpn"].(float64); ok {
			q.RQPN = int(v)
		}
		qps = append(qps, q)
	}
	return qps, nil
}

// ProcCPUPrecise is the process's CPU time from
// clock_gettime(CLOCK_PROCESS_CPUTIME_ID): nanosecond accounting of every
// thread, including exited ones, where /proc/self/stat counts clock ticks.
func ProcCPUPrecise() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()), nil
}
