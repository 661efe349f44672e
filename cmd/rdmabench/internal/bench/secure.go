package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The cost of msgr2 secure mode (issue 10) is measured on the host, over the
// posix stack, with the messenger suite's Go benchmarks: a 2 B round trip
// and a 64 KiB stream, each in crc mode and in secure mode (cephx, AES-GCM
// records), alternated within every repetition so that the two modes share
// the machine's conditions.

// SecureFile holds the secure-mode runs (a JSON line per run) in Out.
const SecureFile = "secure.jsonl"

// The benchmarks of tests/msgrsuite, by the row they feed.
const (
	secureLatCRC = "BenchmarkMessengerLatency2B"
	secureLatSec = "BenchmarkMessengerLatency2BSecure"
	secureBWCRC  = "BenchmarkMessengerThroughput64K"
	secureBWSec  = "BenchmarkMessengerThroughput64KSecure"
	secureSuite  = "./tests/msgrsuite"
	// secureBenchtime is each benchmark's -test.benchtime: long enough
	// for tens of thousands of round trips on a quiet host.
	secureBenchtime = "2s"
)

// secureOrder is one repetition: crc and secure side by side per measure.
var secureOrder = []string{secureLatCRC, secureLatSec, secureBWCRC, secureBWSec}

// GoBench is one run of a Go benchmark: its ns/op and MB/s.
type GoBench struct {
	Name    string  `json:"name"`
	Rep     int     `json:"rep"`
	NsPerOp float64 `json:"ns_per_op,omitempty"`
	MBPerS  float64 `json:"mb_per_s,omitempty"`
	Err     string  `json:"error,omitempty"`
}

// MeasureSecure builds the messenger suite's test binary and runs the
// secure-mode benchmarks o.Reps times, writing Out/secure.jsonl.
func MeasureSecure(ctx context.Context, o Options, repo string) error {
	bin := filepath.Join(o.Out, "msgrsuite.test")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, secureSuite)
	build.Dir, build.Stdout, build.Stderr = repo, o.Log, o.Log
	if err := build.Run(); err != nil {
		return fmt.Errorf("secure mode: go test -c %s: %w", secureSuite, err)
	}
	f, err := os.Create(filepath.Join(o.Out, SecureFile))
	if err != nil {
		return err
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for rep := 1; rep <= o.Reps; rep++ {
		for _, name := range secureOrder {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r := GoBench{Name: name, Rep: rep}
			cmd := exec.CommandContext(ctx, bin, "-test.run", "^$", "-test.bench", "^"+name+"$",
				"-test.benchtime", secureBenchtime, "-test.count", "1")
			// The messenger logs to stderr; only the result lines matter.
			cmd.Dir = filepath.Join(repo, secureSuite)
			out, err := cmd.Output()
			if err == nil {
				r.NsPerOp, r.MBPerS, err = ParseGoBench(out, name)
			}
			if err != nil {
				r.Err = err.Error()
			}
			fmt.Fprintf(o.Log, "bench: secure mode rep %d/%d %s: %.0f ns/op %.2f MB/s %s\n", rep, o.Reps, name, r.NsPerOp, r.MBPerS, r.Err)
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	}
	return f.Close()
}

// goBenchLine is a result line of `go test -bench`: the name with its
// -GOMAXPROCS suffix, the iterations, then value/unit pairs.
var goBenchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// ParseGoBench reads name's ns/op and MB/s (0 when not reported) from the
// output of a go test binary.
func ParseGoBench(out []byte, name string) (nsPerOp, mbPerS float64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := goBenchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil || m[1] != name {
			continue
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, perr := strconv.ParseFloat(f[i], 64)
			if perr != nil {
				return 0, 0, fmt.Errorf("%s: %q is not a number", name, f[i])
			}
			switch f[i+1] {
			case "ns/op":
				nsPerOp = v
			case "MB/s":
				mbPerS = v
			}
		}
		if nsPerOp <= 0 {
			return 0, 0, fmt.Errorf("%s: no ns/op in %q", name, m[2])
		}
		return nsPerOp, mbPerS, nil
	}
	return 0, 0, fmt.Errorf("%s: %w", name, ErrNoRow)
}

// ReadGoBenches reads a secure.jsonl.
func ReadGoBenches(r io.Reader) ([]GoBench, error) {
	var rs []GoBench
	dec := json.NewDecoder(r)
	for {
		var g GoBench
		if err := dec.Decode(&g); err == io.EOF {
			return rs, nil
		} else if err != nil {
			return rs, err
		}
		rs = append(rs, g)
	}
}

// SecureCost is the report's secure-mode section.
type SecureCost struct {
	Reps    int
	Targets []TargetRow
	Runs    Table // every run
	Failed  []string
}

// secureTarget is one issue 10 goal: the secure benchmark's median over
// the crc one's.
type secureTarget struct {
	what        string
	sec, crc    string
	roundTripUS bool // ns/op as µs per round trip; else MB/s
	goal        Target
	unit        string
}

var secureTargets = []secureTarget{
	{what: "secure mode 2 B round trip", sec: secureLatSec, crc: secureLatCRC, roundTripUS: true, goal: Target{Op: "≤", Limit: 1.2, Issue: 10}, unit: "µs"},
	{what: "secure mode 64 KiB throughput", sec: secureBWSec, crc: secureBWCRC, goal: Target{Op: "≥", Limit: 0.7, Issue: 10}, unit: "MB/s"},
}

// BuildSecure computes the secure-mode section of rs (nil when rs is empty).
func BuildSecure(rs []GoBench) *SecureCost {
	if len(rs) == 0 {
		return nil
	}
	sc := &SecureCost{Runs: Table{Head: []string{"rep", "benchmark", "ns/op", "MB/s", "error"}, Right: []bool{true, false, true, true, false}}}
	// The runs' values by benchmark name: µs per op, and MB/s.
	us, mbs := map[string][]float64{}, map[string][]float64{}
	for _, r := range rs {
		sc.Reps = max(sc.Reps, r.Rep)
		sc.Runs.Rows = append(sc.Runs.Rows, []string{strconv.Itoa(r.Rep), r.Name, Num(r.NsPerOp), Num(r.MBPerS), r.Err})
		if r.Err != "" {
			sc.Failed = append(sc.Failed, fmt.Sprintf("%s (rep %d): %s", r.Name, r.Rep, r.Err))
			continue
		}
		us[r.Name] = append(us[r.Name], r.NsPerOp/1000)
		mbs[r.Name] = append(mbs[r.Name], r.MBPerS)
	}
	for _, t := range secureTargets {
		vals := mbs
		if t.roundTripUS {
			vals = us
		}
		sc.Targets = append(sc.Targets, t.goal.Row(t.what+" ("+t.unit+")", "crc mode", Median(vals[t.sec]), Median(vals[t.crc]), "n/a (no run of both)"))
	}
	return sc
}

// TargetTable is the section's targets as a table.
func (sc SecureCost) TargetTable() Table { return Report{Targets: sc.Targets}.TargetTable() }

// loadSecure reads Out/secure.jsonl; a run without one has no section.
func loadSecure(out string) ([]GoBench, error) {
	f, err := os.Open(filepath.Join(out, SecureFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadGoBenches(f)
}
