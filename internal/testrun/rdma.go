package testrun

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Binary is one run of an RDMA test binary and where it runs.
type Binary struct {
	Name string // the run's name, its output files' stem: "rdmastack.test.dispatcher"
	File string // the binary in the plan's directory, e.g. "rdmastack.test"
	Pkg  string // import path, plus " [mode]" for a second pass, as reports name it
	Dir  string // the package's directory, the binary's working directory
	Args []string
	Env  []string // added to the environment
	// WaitFor names a file in the plan's directory that the guest waits
	// for before this run: the image marker (imageFile) for the container
	// tests, so the VM boots before the image is built.
	WaitFor string `json:",omitempty"`
}

// secondModePass are the packages whose tests read
// ASYNCMSGR_RDMA_POLLING_MODE: after the default polling mode (worker) they
// run again in dispatcher mode.
var secondModePass = regexp.MustCompile(`^(rdmastack|tests/rdmasuite|tests/rdmaidle)$`)

// secondPassSkip are, per secondModePass package, the tests its second
// pass leaves out (-test.skip): they read no polling mode, so the first
// pass already ran exactly what the second would — encoding and parser
// tests with their fuzz seeds, a stack that fails before it polls, an
// Example on the default configuration — or they run both modes
// themselves (TestWorkerModeRunToCompletion), or one mode whatever the
// pass (rdmasuite's TestSlowConsumerGiB: 1 GiB, worker). Every other test of these
// packages starts a stack in the mode the pass sets and runs in both.
// TestSecondPassSkipsExist keeps the names in step with the tests.
var secondPassSkip = map[string][]string{
	"rdmastack": {"Example", "TestMetaGolden", "TestParseMetaErrors", "FuzzParseMeta", "TestExtRoundTrip",
		"TestParseExtRejects", "FuzzParseExt", "TestImmEncoding", "TestNoDeviceIsUnavailable",
		"TestWorkerModeRunToCompletion"},
	"tests/rdmasuite": {"TestSlowConsumerGiB"},
}

// The plan's files: plan.json (the binaries), then per binary NAME.out (its
// -test.v=test2json output) and NAME.rc (its exit status).
const planFile = "plan.json"

// imageFile is written into the plan's directory once the container image
// is built ("ok") or failed ("failed"): Container runs beside the VM.
const imageFile = "image.done"

// Plan is the RDMA half's binaries, built into Dir.
type Plan struct {
	Dir      string
	Binaries []Binary
	Built    Result // build failures, counted with the run's
}

// BuildRDMA builds the test binaries of the packages that need a device, in
// one go test -c (the go command compiles and links them in parallel),
// into BuildDir/rdmatests, and plans their runs (a second polling-mode pass
// for secondModePass; containerPlan's adjustments).
func BuildRDMA(o Options, pkgs []Package) Plan {
	var pl Plan
	dir, err := filepath.Abs(filepath.Join(o.BuildDir, "rdmatests"))
	if err == nil {
		_ = os.RemoveAll(dir)
		err = os.MkdirAll(dir, 0o755)
	}
	pl.Dir = dir
	if err != nil {
		pl.Built.Failed = append(pl.Built.Failed, "rdma: "+err.Error())
		return pl
	}
	var rdma []Package
	for _, p := range pkgs {
		if p.NeedsRDMA() {
			rdma = append(rdma, p)
		}
	}
	if len(rdma) == 0 {
		return pl
	}
	build := func(ps []Package) error {
		args := []string{"test", "-c", "-o", dir + string(filepath.Separator)}
		if o.RDMARace {
			args = append(args, "-race")
		}
		for _, p := range ps {
			args = append(args, p.ImportPath)
		}
		cmd := exec.Command("go", args...)
		cmd.Stdout, cmd.Stderr = o.Out, o.Out
		return cmd.Run()
	}
	start := time.Now()
	fmt.Fprintf(o.Out, "== go test -c (%d packages for rxe)\n", len(rdma))
	if err := build(rdma); err != nil {
		// name the packages that do not build
		for _, p := range rdma {
			if build([]Package{p}) != nil {
				pl.Built.Failed = append(pl.Built.Failed, p.Rel()+" (build)")
			}
		}
	}
	fmt.Fprintf(o.Out, "rdma test binaries built in %.0fs\n", time.Since(start).Seconds())
	// tests/container runs last: it waits in the guest for the image,
	// which is built while the VM runs the others.
	last := func(p Package) int {
		if p.Rel() == containerPkg {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(rdma, func(a, b Package) int { return cmp.Compare(last(a), last(b)) })
	for _, p := range rdma {
		file := path.Base(p.Rel()) + ".test"
		if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
			continue
		}
		b := Binary{Name: file, File: file, Pkg: p.ImportPath, Dir: p.Dir,
			Args: append([]string{"-test.v=test2json", "-test.count=1", "-test.timeout=60m"}, o.RDMAArgs...)}
		pl.Binaries = append(pl.Binaries, b)
		if secondModePass.MatchString(p.Rel()) {
			w := b
			w.Name, w.Pkg, w.Env = file+".dispatcher", p.ImportPath+" [dispatcher]", []string{"ASYNCMSGR_RDMA_POLLING_MODE=dispatcher"}
			if skip := secondPassSkip[p.Rel()]; len(skip) > 0 {
				w.Args = append(slices.Clip(w.Args), "-test.skip=^("+strings.Join(skip, "|")+")$")
			}
			pl.Binaries = append(pl.Binaries, w)
		}
	}
	return pl
}

// Suite is the plan's tests/rdmasuite binary ("" when it was not built):
// the one the container tests run in the image too.
func (pl Plan) Suite() string {
	for _, b := range pl.Binaries {
		if strings.HasSuffix(b.Pkg, "/tests/rdmasuite") {
			return filepath.Join(pl.Dir, b.File)
		}
	}
	return ""
}

// RunRDMA runs the plan on rxe (directly when this host has an RDMA device,
// else inside one two-host Soft-RoCE VM boot: vm-run.sh runs this program's
// Inner), with the VM's console to console, and counts the binaries' events
// through go tool test2json, reporting to o.Out.
func RunRDMA(o Options, pl Plan, self, vmRun string, console io.Writer) Result {
	r := pl.Built
	if len(pl.Binaries) == 0 {
		return r
	}
	if err := writeJSON(filepath.Join(pl.Dir, planFile), pl.Binaries); err != nil {
		r.Failed = append(r.Failed, "rdma: "+err.Error())
		return r
	}
	// The guest runs every binary of the plan one after the other; on a
	// loaded host that has taken 45 minutes, past vm-run.sh's default hour
	// once the rdma connection races (1000 stack pairs) joined it.
	run := exec.Command(vmRun, "--two-host", "--timeout", "5400", "--", self, "rdma-inner", pl.Dir)
	if HostHasRDMA() {
		run = exec.Command(self, "rdma-inner", pl.Dir)
	}
	run.Stdout, run.Stderr = console, console
	if err := run.Run(); err != nil {
		fmt.Fprintf(console, "rdma: %s: %v\n", filepath.Base(run.Path), err)
	}
	c := NewCollector(o.Out)
	for _, b := range pl.Binaries {
		count(c, pl.Dir, b)
	}
	r.Add(c.Counts())
	ciRule(o, "rdma", &r.Counts)
	return r
}

// count feeds one binary's output through test2json into c; a binary that
// left no output or exited non-zero counts as failed even without events.
func count(c *Collector, dir string, b Binary) {
	out, err := os.Open(filepath.Join(dir, b.Name+".out"))
	if err != nil {
		fmt.Fprintf(c.w, "%s: no output (%v)\n", b.Pkg, err)
		c.PackageFailed(b.Pkg)
		return
	}
	defer out.Close()
	conv := exec.Command("go", "tool", "test2json", "-p", b.Pkg)
	conv.Stdin = out
	conv.Stderr = c.w
	events, err := conv.StdoutPipe()
	if err == nil {
		err = conv.Start()
	}
	if err == nil {
		err = errors.Join(c.Read(events), conv.Wait())
	}
	if err != nil {
		fmt.Fprintf(c.w, "%s: test2json: %v\n", b.Pkg, err)
		c.PackageFailed(b.Pkg)
	}
	rc, err := os.ReadFile(filepath.Join(dir, b.Name+".rc"))
	if err != nil || strings.TrimSpace(string(rc)) != "0" {
		fmt.Fprintf(c.w, "%s: exit status %q %v\n", b.Pkg, strings.TrimSpace(string(rc)), err)
		c.PackageFailed(b.Pkg)
	}
}

// Inner runs the plan in dir on this machine's RDMA devices, one binary
// after the other, each in its package's directory with stdout and stderr
// (as go test does) into NAME.out. It prints one line per binary; the
// verdicts are counted by RDMA, outside the VM. It reports whether every
// binary exited 0.
func Inner(o Options, dir string) bool {
	var plan []Binary
	b, err := os.ReadFile(filepath.Join(dir, planFile))
	if err == nil {
		err = json.Unmarshal(b, &plan)
	}
	if err != nil {
		fmt.Fprintf(o.Out, "rdma-inner: %v\n", err)
		return false
	}
	devs, _ := os.ReadDir("/sys/class/infiniband")
	var names []string
	for _, d := range devs {
		names = append(names, d.Name())
	}
	ok := true
	for _, bin := range plan {
		if bin.WaitFor != "" && !waitFor(o, dir, bin) {
			ok = false
			continue
		}
		fmt.Fprintf(o.Out, "== %s %s (on %s)\n", bin.Name, strings.Join(bin.Env, " "), strings.Join(names, " "))
		start := time.Now()
		cpu, cpuOK := readCPUTimes()
		rc := runTo(filepath.Join(dir, bin.Name+".out"), bin, filepath.Join(dir, bin.File))
		_ = os.WriteFile(filepath.Join(dir, bin.Name+".rc"), []byte(strconv.Itoa(rc)+"\n"), 0o644)
		verdict := "ok"
		if rc != 0 {
			verdict = fmt.Sprintf("FAILED (exit %d)", rc)
			ok = false
		}
		fmt.Fprintf(o.Out, "%s: %s in %.1fs (cpu busy %d%%)\n", bin.Name, verdict, time.Since(start).Seconds(), busySince(cpu, cpuOK))
	}
	return ok
}

// waitFor waits in dir for b.WaitFor, which the host writes when what b
// needs is ready ("ok") or failed; a failure, or no file within the VM's
// time, is b's failure: its .out says why and its .rc is 1.
func waitFor(o Options, dir string, b Binary) bool {
	start := time.Now()
	var got []byte
	for {
		var err error
		if got, err = os.ReadFile(filepath.Join(dir, b.WaitFor)); err == nil || time.Since(start) > 80*time.Minute {
			break
		}
		time.Sleep(time.Second)
	}
	if v := strings.TrimSpace(string(got)); v != "ok" {
		msg := fmt.Sprintf("rdma-inner: %s not run: %s is %q after %.0fs\n", b.Name, b.WaitFor, v, time.Since(start).Seconds())
		fmt.Fprint(o.Out, msg)
		_ = os.WriteFile(filepath.Join(dir, b.Name+".out"), []byte(msg), 0o644)
		_ = os.WriteFile(filepath.Join(dir, b.Name+".rc"), []byte("1\n"), 0o644)
		return false
	}
	fmt.Fprintf(o.Out, "%s: waited %.0fs for %s\n", b.Name, time.Since(start).Seconds(), b.WaitFor)
	return true
}

// runTo runs b's binary at path, output to outPath, and returns its exit
// status (-1 when it could not start).
func runTo(outPath string, b Binary, path string) int {
	out, err := os.Create(outPath)
	if err != nil {
		return -1
	}
	defer out.Close()
	cmd := exec.Command(path, b.Args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = b.Dir, out, out
	cmd.Env = append(os.Environ(), b.Env...)
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		fmt.Fprintf(out, "rdma-inner: %v\n", err)
		return -1
	}
}

// HostHasRDMA reports whether this machine has an RDMA device of its own.
func HostHasRDMA() bool {
	ents, err := os.ReadDir("/sys/class/infiniband")
	return err == nil && len(ents) > 0
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
