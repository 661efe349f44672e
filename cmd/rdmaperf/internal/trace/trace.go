package trace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// DoorbellSymbol is the kernel function a userspace ibv_post_send reaches
// on rxe (a write() on the uverbs fd with IB_USER_VERBS_CMD_POST_SEND).
const DoorbellSymbol = "ib_uverbs_post_send"

// ErrUnavailable wraps every reason tracing cannot start.
var ErrUnavailable = errors.New("rdmaperf --trace unavailable")

// geteuid is os.Geteuid (a variable for the tests).
var geteuid = os.Geteuid

// Tracer holds the kprobe and the device's counter directory.
type Tracer struct {
	m     *ebpf.Map
	prog  *ebpf.Program
	kp    link.Link
	hwDir string
	tgid  uint32
}

// Snapshot is the counters at one moment.
type Snapshot struct {
	Doorbells uint64
	HW        map[string]uint64
}

// Open attaches the doorbell counter for this process (thread group) and
// finds device dev's hw_counters on port. Without root, BPF or the symbol it
// fails with an error wrapping ErrUnavailable that says what is missing.
func Open(dev string, port int) (*Tracer, error) {
	if geteuid() != 0 {
		return nil, fmt.Errorf("%w: needs root (eBPF kprobes and the device's hw_counters); run as root or drop --trace", ErrUnavailable)
	}
	if dev == "" {
		ents, _ := os.ReadDir("/sys/class/infiniband")
		if len(ents) == 0 {
			return nil, fmt.Errorf("%w: no RDMA device in /sys/class/infiniband", ErrUnavailable)
		}
		dev = ents[0].Name()
	}
	t := &Tracer{hwDir: filepath.Join("/sys/class/infiniband", dev, "ports", strconv.Itoa(port), "hw_counters"), tgid: uint32(os.Getpid())}
	if _, err := os.Stat(t.hwDir); err != nil {
		return nil, fmt.Errorf("%w: device counters: %v", ErrUnavailable, err)
	}
	_ = rlimit.RemoveMemlock()
	var err error
	t.m, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("%w: create BPF map: %v", ErrUnavailable, err)
	}
	t.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "rdmaperf_db",
		Type:         ebpf.Kprobe,
		License:      "GPL",
		Instructions: program(t.m.FD(), t.tgid),
	})
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("%w: load BPF program: %v", ErrUnavailable, err)
	}
	t.kp, err = link.Kprobe(DoorbellSymbol, t.prog, nil)
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("%w: kprobe on %s (is ib_uverbs loaded? grep %s /proc/kallsyms): %v", ErrUnavailable, DoorbellSymbol, DoorbellSymbol, err)
	}
	return t, nil
}

// program counts calls made by thread group tgid into map slot 0:
//
//	if (bpf_get_current_pid_tgid() >> 32 != tgid) return 0;
//	u32 k = 0; u64 *v = bpf_map_lookup_elem(map, &k);
//	if (v) __sync_fetch_and_add(v, 1);
//	return 0;
func program(mapFD int, tgid uint32) asm.Instructions {
	return asm.Instructions{
		asm.FnGetCurrentPidTgid.Call(),
		asm.RSh.Imm(asm.R0, 32),
		asm.JNE.Imm(asm.R0, int32(tgid), "out"),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, mapFD),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}
}

// Close detaches and frees everything; nil-safe and idempotent.
func (t *Tracer) Close() error {
	if t == nil {
		return nil
	}
	if t.kp != nil {
		_ = t.kp.Close()
		t.kp = nil
	}
	if t.prog != nil {
		_ = t.prog.Close()
		t.prog = nil
	}
	if t.m != nil {
		_ = t.m.Close()
		t.m = nil
	}
	return nil
}

// Snap reads the counters now.
func (t *Tracer) Snap() (Snapshot, error) {
	s := Snapshot{HW: map[string]uint64{}}
	var v uint64
	if err := t.m.Lookup(uint32(0), &v); err != nil {
		return s, fmt.Errorf("rdmaperf: read doorbell counter: %w", err)
	}
	s.Doorbells = v
	ents, err := os.ReadDir(t.hwDir)
	if err != nil {
		return s, err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(t.hwDir, e.Name()))
		if err != nil {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			s.HW[e.Name()] = n
		}
	}
	return s, nil
}

// Delta is what changed between two snapshots, per message.
type Delta struct {
	Msgs            int               `json:"msgs"`
	Doorbells       uint64            `json:"doorbells"`
	DoorbellsPerMsg float64           `json:"doorbells_per_msg"`
	SentPkts        uint64            `json:"sent_pkts"`
	RcvdPkts        uint64            `json:"rcvd_pkts"`
	Retransmits     uint64            `json:"retransmits"`
	Errors          uint64            `json:"errors"`
	HW              map[string]uint64 `json:"hw_counters"`
}

// Diff computes b - a for msgs messages.
func Diff(a, b Snapshot, msgs int) Delta {
	d := Delta{Msgs: msgs, Doorbells: b.Doorbells - a.Doorbells, HW: map[string]uint64{}}
	if msgs > 0 {
		d.DoorbellsPerMsg = float64(d.Doorbells) / float64(msgs)
	}
	for k, v := range b.HW {
		dv := v - a.HW[k]
		if v < a.HW[k] {
			dv = 0
		}
		if dv != 0 {
			d.HW[k] = dv
		}
		switch {
		case k == "sent_pkts":
			d.SentPkts = dv
		case k == "rcvd_pkts":
			d.RcvdPkts = dv
		case k == "completer_retry_err" || k == "rcvd_rnr_err" || k == "send_rnr_err" || k == "duplicate_request":
			d.Retransmits += dv
		case strings.HasSuffix(k, "_err") || strings.HasSuffix(k, "_errors") || k == "link_downed":
			d.Errors += dv
		}
	}
	return d
}

// String is the one-line text form printed after a result row.
func (d Delta) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, " trace: doorbells %d (%.4f/msg over %d msgs) sent_pkts %d rcvd_pkts %d retransmits %d errors %d",
		d.Doorbells, d.DoorbellsPerMsg, d.Msgs, d.SentPkts, d.RcvdPkts, d.Retransmits, d.Errors)
	keys := make([]string, 0, len(d.HW))
	for k := range d.HW {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > 0 {
		b.WriteString(" |")
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%d", k, d.HW[k])
		}
	}
	return b.String()
}
