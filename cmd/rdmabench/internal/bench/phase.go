package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
)

// Options are one invocation's settings, shared by the phases.
type Options struct {
	Plan     string // "bench" or "demo"
	Out      string // results directory (.build/bench or .build/demo)
	Rdmaperf string // the rdmaperf binary
	Reps     int
	Iters    int // demo: iterations per latency run
	Sizes    []int
	Quick    bool
	Command  string // how the user started it, for the report
	// Match, when set, keeps only the runs whose "series test size"
	// matches it (a developer's partial run).
	Match string
	Log   io.Writer
}

// The files of Out.
const (
	ResultsFile    = "results.jsonl"
	ConditionsFile = "conditions.json"
	EnvFile        = "env.json"
)

// LocalCaps are the capabilities of this tree: its config's options, the
// flags of the rdmaperf binary (from its --help) and whether we are root.
func LocalCaps(rdmaperf string) Caps {
	help, _ := exec.Command(rdmaperf, "--help").Output()
	return Caps{
		OptOK: func(kv string) bool {
			k, v, _ := strings.Cut(kv, "=")
			return config.Default().Set(k, v) == nil
		},
		FlagOK: func(f string) bool { return strings.Contains(string(help), "--"+f) },
		Root:   os.Geteuid() == 0,
	}
}

// Measure is the phase on the device (inside the VM): it runs the plan and
// writes Out/results.jsonl (a line per run, as it goes) and Out/env.json.
func Measure(ctx context.Context, o Options) error {
	dev, err := DeviceFromEnv()
	if err != nil {
		return err
	}
	raw := filepath.Join(o.Out, "raw")
	if err := os.MkdirAll(raw, 0o755); err != nil {
		return err
	}
	env := Environment(dev)
	for _, l := range env {
		fmt.Fprintln(o.Log, "bench: "+l)
	}
	if err := writeJSON(filepath.Join(o.Out, EnvFile), env); err != nil {
		return err
	}
	rn := &Runner{Rdmaperf: o.Rdmaperf, Dev: dev, Caps: LocalCaps(o.Rdmaperf), RawDir: raw, Log: o.Log}
	var plan []Spec
	if o.Plan == "demo" {
		plan = DemoPlan(o.Reps, o.Iters)
	} else {
		plan = BenchPlan(o.Reps, o.Sizes, rn.Caps)
	}
	if o.Match != "" {
		re, err := regexp.Compile(o.Match)
		if err != nil {
			return fmt.Errorf("-match: %w", err)
		}
		plan = slices.DeleteFunc(plan, func(s Spec) bool {
			return !re.MatchString(fmt.Sprintf("%s %s %d", s.Series.Name, s.Test, s.Size))
		})
	}
	f, err := os.Create(filepath.Join(o.Out, ResultsFile))
	if err != nil {
		return err
	}
	defer f.Close()
	rn.Planned = len(plan)
	for _, s := range plan {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := WriteResults(f, []Result{rn.Run(ctx, s)}); err != nil {
			return err
		}
	}
	return f.Close()
}

// Drive is the phase on the host: it notes the conditions, measures on this
// host's device or boots the VM (soft-roce/vm-run.sh) to measure there with
// `self run`, and notes the load after.
func Drive(ctx context.Context, o Options, repo string, runArgs []string) (Conditions, error) {
	c := Conditions{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Reps: o.Reps, Sizes: o.Sizes, Quick: o.Quick,
		Rev: gitRev(repo), HostCPUs: runtime.NumCPU(), LoadBefore: loadavg(), Command: o.Command, VM: !HasDevice()}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return c, err
	}
	os.Remove(filepath.Join(o.Out, ResultsFile))
	os.Remove(filepath.Join(o.Out, SecureFile))
	os.RemoveAll(filepath.Join(o.Out, "raw"))
	start := time.Now()
	var secErr, err error
	if o.wantsSecure() {
		// On the host, before the VM's vCPUs compete for its cores.
		secErr = MeasureSecure(ctx, o, repo)
	}
	if c.VM {
		self, _ := os.Executable()
		fmt.Fprintln(o.Log, "bench: no RDMA device on this host: measuring in the Soft-RoCE VM")
		argv := append([]string{filepath.Join(repo, "soft-roce/vm-run.sh"), "--", self, "run"}, runArgs...)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = repo, os.Stderr, os.Stderr
		err = cmd.Run()
	} else {
		err = Measure(ctx, o)
	}
	c.Seconds = int(time.Since(start).Seconds())
	c.LoadAfter = loadavg()
	if b, e := os.ReadFile(filepath.Join(o.Out, EnvFile)); e == nil {
		json.Unmarshal(b, &c.Env)
	}
	if e := writeJSON(filepath.Join(o.Out, ConditionsFile), c); e != nil && err == nil {
		err = e
	}
	switch {
	case secErr == nil:
		return c, err
	case err == nil:
		return c, secErr
	}
	return c, fmt.Errorf("%w; %w", secErr, err)
}

// wantsSecure reports whether the run measures secure mode's cost: make
// bench does, and a partial run (-match) when its pattern matches "secure".
func (o Options) wantsSecure() bool {
	if o.Plan != "bench" {
		return false
	}
	if o.Match == "" {
		return true
	}
	re, err := regexp.Compile(o.Match)
	return err == nil && re.MatchString("secure")
}

// LoadResults reads Out's results and conditions.
func LoadResults(out string) ([]Result, Conditions, error) {
	var c Conditions
	b, err := os.ReadFile(filepath.Join(out, ConditionsFile))
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		return nil, c, fmt.Errorf("conditions: %w", err)
	}
	f, err := os.Open(filepath.Join(out, ResultsFile))
	if err != nil {
		return nil, c, err
	}
	defer f.Close()
	rs, err := ReadResults(f)
	if err == nil && len(rs) == 0 {
		err = fmt.Errorf("%s: no results", f.Name())
	}
	return rs, c, err
}

// WriteReport renders Out's results into md (between the markers) and the
// plot next to it (md with .png); a missing gnuplot only costs the plot.
func WriteReport(out, md string, log io.Writer) error {
	rs, c, err := LoadResults(out)
	if err != nil {
		return err
	}
	png := strings.TrimSuffix(md, filepath.Ext(md)) + ".png"
	rp := Build(rs, c, filepath.Base(png))
	if rel, err := filepath.Rel(filepath.Dir(md), out); err == nil {
		rp.Out = rel
	}
	for i := range rp.Profiles {
		rp.Profiles[i].Top = pprofTop(filepath.Join(out, rp.Profiles[i].Path))
	}
	sec, err := loadSecure(out)
	if err != nil {
		return fmt.Errorf("%s: %w", SecureFile, err)
	}
	rp.Secure = BuildSecure(sec)
	section, err := Render(rp)
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(md)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.WriteFile(md, Splice(doc, section), 0o644); err != nil {
		return err
	}
	sub := "rdmaperf vs C perftest and the messenger, " + c.Date
	if c.VM {
		sub += " (Soft-RoCE, qemu TCG VM)"
	}
	p, err := PlotOf(NewSet(rs), filepath.Join(out, "plot"), png, sub)
	if err == nil {
		err = p.Draw()
	}
	if err != nil {
		fmt.Fprintf(log, "bench: %v\n", err)
	}
	fmt.Fprintf(log, "bench: wrote %s and %s (%d runs, %d s)\n", md, png, len(rs), c.Seconds)
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// loadavg is /proc/loadavg's three averages.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// gitRev is the tree's short revision, "+dirty" when files other than the
// report itself are modified.
func gitRev(repo string) string {
	rev, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	r := strings.TrimSpace(string(rev))
	st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--", ".", ":!BENCHMARKS.md", ":!BENCHMARKS.png").Output()
	if err != nil || len(strings.TrimSpace(string(st))) > 0 {
		r += "+dirty"
	}
	return r
}

// ParseSizes reads a list such as "2 256 4096".
func ParseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Fields(strings.ReplaceAll(s, ",", " ")) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("size %q: want a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// pprofTop is the head of `go tool pprof -top` of a CPU profile (Go's
// profiles carry their symbols: the binary is not needed).
func pprofTop(path string) string {
	if _, err := os.Stat(path); err != nil {
		return "no profile: " + err.Error()
	}
	b, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=15", path).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof: %v: %s", err, strings.TrimSpace(string(b)))
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// The header names the local file and when: not the reader's concern.
		if !strings.HasPrefix(l, "File: ") && !strings.HasPrefix(l, "Build ID: ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
