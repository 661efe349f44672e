package testrun

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Event is one line of test2json output (cmd/test2json's TestEvent).
type Event struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail events name the package here
	Test       string
	Elapsed    float64
	Output     string
}

// Counts are the verdicts of tests and subtests. Failed and Skipped name
// them as "pkg.Test/sub" so a report can list them.
type Counts struct {
	Passed  int
	Failed  []string
	Skipped []string
}

// Add merges o into c.
func (c *Counts) Add(o Counts) {
	c.Passed += o.Passed
	c.Failed = append(c.Failed, o.Failed...)
	c.Skipped = append(c.Skipped, o.Skipped...)
}

// String is the summary form CI reads: "N passed, N failed, N skipped".
func (c Counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.Passed, len(c.Failed), len(c.Skipped))
}

// Collector counts the events of one or more packages and tells w what a
// reader needs: each package's result, the output of every failed test and
// the reason of every skip. Passing tests' output is dropped.
type Collector struct {
	w      io.Writer
	counts Counts
	output map[string]*strings.Builder // per "pkg test", until the verdict
	failed map[string]bool             // packages with a failure counted
}

// NewCollector reports to w.
func NewCollector(w io.Writer) *Collector {
	return &Collector{w: w, output: map[string]*strings.Builder{}, failed: map[string]bool{}}
}

// Read consumes a test2json stream until EOF. A line that is not JSON (a
// VM's console, a crash) is passed to w as it is.
func (c *Collector) Read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Action == "" {
			fmt.Fprintln(c.w, sc.Text())
			continue
		}
		c.Handle(ev)
	}
	return sc.Err()
}

// Handle takes one event.
func (c *Collector) Handle(ev Event) {
	pkg := ev.Package
	if pkg == "" {
		pkg = ev.ImportPath
	}
	key := pkg + " " + ev.Test
	switch ev.Action {
	case "output", "build-output":
		b := c.output[key]
		if b == nil {
			b = &strings.Builder{}
			c.output[key] = b
		}
		b.WriteString(ev.Output)
		return
	case "build-fail":
		fmt.Fprintf(c.w, "%sFAIL\t%s [build failed]\n", c.take(key), pkg)
		c.PackageFailed(pkg)
		return
	case "pass", "fail", "skip":
	default:
		return
	}
	out := c.take(key)
	if ev.Test == "" {
		c.packageDone(pkg, ev, out)
		return
	}
	name := pkg + "." + ev.Test
	switch ev.Action {
	case "pass":
		c.counts.Passed++
	case "fail":
		c.counts.Failed = append(c.counts.Failed, name)
		c.failed[pkg] = true
		fmt.Fprint(c.w, out)
	case "skip":
		c.counts.Skipped = append(c.counts.Skipped, name)
		fmt.Fprint(c.w, out)
	}
}

// packageDone prints the package's result line. A package that failed
// without a failed test (a build failure, a crash, a timeout, a TestMain
// exit) counts as one failure, so it cannot vanish from the counts.
func (c *Collector) packageDone(pkg string, ev Event, out string) {
	switch ev.Action {
	case "fail":
		fmt.Fprint(c.w, out)
		fmt.Fprintf(c.w, "FAIL\t%s\t%.1fs\n", pkg, ev.Elapsed)
		c.PackageFailed(pkg)
	case "skip":
		fmt.Fprintf(c.w, "?\t%s\t[no test files]\n", pkg)
	default:
		fmt.Fprintf(c.w, "ok\t%s\t%.1fs\n", pkg, ev.Elapsed)
	}
}

// PackageFailed counts pkg as one failure unless a failure of it (a test's
// or its own) is counted already.
func (c *Collector) PackageFailed(pkg string) {
	if c.failed[pkg] {
		return
	}
	c.failed[pkg] = true
	c.counts.Failed = append(c.counts.Failed, pkg)
}

// Counts returns what was counted so far.
func (c *Collector) Counts() Counts { return c.counts }

// take returns the output gathered for key without go test's progress
// lines (=== RUN, PAUSE, CONT), which say nothing a verdict does not.
func (c *Collector) take(key string) string {
	b := c.output[key]
	if b == nil {
		return ""
	}
	delete(c.output, key)
	var out strings.Builder
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		if !strings.HasPrefix(strings.TrimLeft(line, " "), "=== ") {
			out.WriteString(line)
		}
	}
	return out.String()
}
