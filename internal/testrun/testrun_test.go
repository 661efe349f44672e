package testrun

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A stream as go test -json writes it: a pass, a failing subtest under its
// parent, a skip, and a package that failed with no test failing (a crash).
const stream = `{"Action":"run","Package":"m/a","Test":"TestOK"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"pass","Package":"m/a","Test":"TestOK"}
{"Action":"output","Package":"m/a","Test":"TestBad/sub","Output":"    x_test.go:9: boom\n"}
{"Action":"fail","Package":"m/a","Test":"TestBad/sub"}
{"Action":"fail","Package":"m/a","Test":"TestBad"}
{"Action":"output","Package":"m/a","Test":"TestSkip","Output":"    x_test.go:3: missing: rxe\n"}
{"Action":"skip","Package":"m/a","Test":"TestSkip"}
{"Action":"fail","Package":"m/a","Elapsed":1.5}
not json: a VM console line
{"Action":"output","Package":"m/b","Output":"panic: boom\n"}
{"Action":"fail","Package":"m/b","Elapsed":0.1}
`

func TestCollectorCounts(t *testing.T) {
	var out strings.Builder
	c := NewCollector(&out)
	if err := c.Read(strings.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	got := c.Counts()
	if got.String() != "1 passed, 3 failed, 1 skipped" {
		t.Fatalf("counts %q, failed %q", got.String(), got.Failed)
	}
	if want := []string{"m/a.TestBad/sub", "m/a.TestBad", "m/b"}; strings.Join(got.Failed, ",") != strings.Join(want, ",") {
		t.Fatalf("failed %q, want %q", got.Failed, want)
	}
	for _, s := range []string{"boom", "missing: rxe", "not json", "panic: boom", "FAIL\tm/b"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
	if strings.Contains(out.String(), "=== RUN") {
		t.Errorf("report keeps progress lines:\n%s", out.String())
	}
}

func TestCIRuleFailsSkips(t *testing.T) {
	var out strings.Builder
	c := Counts{Passed: 2, Skipped: []string{"p.TestX"}}
	ciRule(Options{Out: &out}, "host", &c)
	if len(c.Failed) != 0 {
		t.Fatalf("outside CI a skip failed: %q", c.Failed)
	}
	ciRule(Options{Out: &out, CI: true}, "host", &c)
	if len(c.Failed) != 1 || !strings.Contains(out.String(), "p.TestX") {
		t.Fatalf("in CI: failed %q, report %q", c.Failed, out.String())
	}
}

func TestFuzzTargetsAndBudgets(t *testing.T) {
	dir := t.TempDir()
	src := "package p\nimport \"testing\"\nfunc FuzzA(f *testing.F) {}\nfunc FuzzNotTarget(x int) {}\nfunc TestB(t *testing.T) {}\n"
	path := filepath.Join(dir, "p_test.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p := Package{ImportPath: Module + "/msgr/msgr2", Dir: dir, TestFiles: []string{path}}
	names, err := FuzzTargets(p)
	if err != nil || strings.Join(names, ",") != "FuzzA" {
		t.Fatalf("targets %q, %v", names, err)
	}
	if ft, known := FuzzTime(p, "FuzzParseFrame", ""); !known || !strings.HasSuffix(ft, "x") {
		t.Fatalf("budget %q known=%v: want an execution count", ft, known)
	}
	if ft, known := FuzzTime(p, "FuzzA", ""); known || ft != "170000x" {
		t.Fatalf("unmeasured target: %q known=%v", ft, known)
	}
	if ft, _ := FuzzTime(p, "FuzzA", "100x"); ft != "100x" {
		t.Fatalf("override ignored: %q", ft)
	}
	if !(Package{ImportPath: Module + "/tests/rdmafault"}).NeedsRDMA() || (Package{ImportPath: Module + "/msgr"}).NeedsRDMA() {
		t.Fatal("RDMA package rule")
	}
}

// Every test a second polling-mode pass skips exists in its package (a
// renamed test would otherwise run twice unnoticed) and reads no polling
// mode itself (a test that does is mode-dependent and must run in both
// passes): the skips are what secondPassSkip says they are.
func TestSecondPassSkipsExist(t *testing.T) {
	for rel, names := range secondPassSkip {
		if !secondModePass.MatchString(rel) {
			t.Errorf("%s has second-pass skips but no second pass", rel)
		}
		files, err := filepath.Glob(filepath.Join("../..", rel, "*_test.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no test files (%v)", rel, err)
		}
		bodies := map[string]string{}
		fset := token.NewFileSet()
		for _, path := range files {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil {
					bodies[fn.Name.Name] = string(src[fset.Position(fn.Pos()).Offset:fset.Position(fn.End()).Offset])
				}
			}
		}
		for _, name := range names {
			body, ok := bodies[name]
			switch {
			case !ok:
				t.Errorf("%s: skipped %s is not a test there", rel, name)
			case strings.Contains(body, "ASYNCMSGR_RDMA_POLLING_MODE") || strings.Contains(body, "testConfig("):
				if !strings.Contains(body, "PollingDispatcher") { // runs both modes itself
					t.Errorf("%s: skipped %s reads the polling mode", rel, name)
				}
			}
		}
	}
}
