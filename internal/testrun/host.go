package testrun

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// Options are what a run takes from its environment.
type Options struct {
	Out      io.Writer
	BuildDir string // .build: logs, RDMA test binaries
	CI       bool   // CI set: a skip is a failure
	FuzzTime string // FUZZTIME: one -fuzztime for every target instead of the budgets
	RDMARace bool   // RDMA_TEST_RACE: build the RDMA test binaries with -race
	RDMAArgs []string
	// ContainerSuite, set from Container, is the rdmasuite test binary the
	// VM's container tests run in the image (containerPlan).
	ContainerSuite string
}

// Result is one half's counts plus how many fuzz targets passed (counted
// in Passed too).
type Result struct {
	Counts
	Fuzzed int
}

// Host runs everything that needs no RDMA device: go vet, the cgo-free
// build, the host packages' tests with the race detector, then every fuzz
// target with its budget.
func Host(o Options, pkgs []Package) Result {
	var r Result
	step := func(name string, cmd *exec.Cmd) {
		fmt.Fprintf(o.Out, "== %s\n", name)
		cmd.Stdout, cmd.Stderr = o.Out, o.Out
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(o.Out, "%s: %v\n", name, err)
			r.Failed = append(r.Failed, name)
		}
	}
	step("go vet ./...", exec.Command("go", "vet", "./..."))
	build := exec.Command("go", "build", "./...")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	step("CGO_ENABLED=0 go build ./...", build)

	var host []string
	for _, p := range pkgs {
		if !p.NeedsRDMA() {
			host = append(host, p.ImportPath)
		}
	}
	slices.SortStableFunc(host, func(a, b string) int { return longPole(a) - longPole(b) })
	start := time.Now()
	fmt.Fprintf(o.Out, "== go test -race (%d packages on the host)\n", len(host))
	args := append([]string{"test", "-json", "-race", "-count=1", "-timeout", "20m"}, host...)
	c, err := goTestJSON(o, filepath.Join(o.BuildDir, "host-test.json"), args)
	if err != nil {
		fmt.Fprintf(o.Out, "host tests: %v\n", err)
		c.PackageFailed("go test (host)")
	}
	r.Add(c.Counts())
	fmt.Fprintf(o.Out, "race tests took %.0fs\n", time.Since(start).Seconds())

	start = time.Now()
	fmt.Fprintln(o.Out, "== fuzzers (execution-count budgets; FUZZTIME overrides)")
	n, failed := Fuzz(o.Out, pkgs, o.FuzzTime)
	fmt.Fprintf(o.Out, "fuzzers took %.0fs\n", time.Since(start).Seconds())
	r.Passed += n
	r.Fuzzed = n
	r.Failed = append(r.Failed, failed...)
	ciRule(o, "host", &r.Counts)
	return r
}

// longPoles are the host packages whose tests take longest (-race, a
// quiet 2-core machine: msgrsuite 120 s, msgr 29 s). go test -p 2 starts
// packages in the order given, so these go first and the short ones fill
// the other slot instead of trailing after them.
var longPoles = []string{Module + "/tests/msgrsuite", Module + "/msgr"}

// longPole is pkg's rank in longPoles, len(longPoles) for the others.
func longPole(pkg string) int {
	if i := slices.Index(longPoles, pkg); i >= 0 {
		return i
	}
	return len(longPoles)
}

// goTestJSON runs go with args (a go test -json command), keeps its raw
// events in logPath and counts them. err is set when go test failed in a
// way the events do not already count.
func goTestJSON(o Options, logPath string, args []string) (*Collector, error) {
	c := NewCollector(o.Out)
	log, err := os.Create(logPath)
	if err != nil {
		return c, err
	}
	defer log.Close()
	cmd := exec.Command("go", args...)
	cmd.Stderr = o.Out
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(log, pw)
	if err := cmd.Start(); err != nil {
		return c, err
	}
	done := make(chan error, 1)
	go func() { done <- c.Read(pr) }()
	runErr := cmd.Wait()
	pw.Close()
	if err := <-done; err != nil {
		return c, err
	}
	if runErr != nil && len(c.Counts().Failed) == 0 {
		return c, fmt.Errorf("go test: %w (full log: %s)", runErr, logPath)
	}
	return c, nil
}

// ciRule applies internal/testenv's rule to a half's counts: in CI nothing
// may skip, so skips add one failure naming them.
func ciRule(o Options, half string, c *Counts) {
	if !o.CI || len(c.Skipped) == 0 {
		return
	}
	fmt.Fprintf(o.Out, "%s: CI forbids skipped tests; these skipped:\n", half)
	for _, s := range c.Skipped {
		fmt.Fprintf(o.Out, "  %s\n", s)
	}
	c.Failed = append(c.Failed, half+": skips in CI")
}

// Line is a half's summary line: "host: N passed, N failed, N skipped".
func (r Result) Line(half string) string {
	s := half + ": " + r.Counts.String()
	if r.Fuzzed > 0 {
		s += fmt.Sprintf(" (%d fuzz targets)", r.Fuzzed)
	}
	return s
}
