package testrun

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Module is this module's path; package names in budgets and reports are
// relative to it.
const Module = "github.com/asyncmsgr/asyncmsgr"

// rdmaPkgs are the packages whose tests need a real RDMA device: they run
// on rxe (in the Soft-RoCE VM when the host has none), never on the plain
// host. A package that starts needing rxe joins here.
var rdmaPkgs = regexp.MustCompile(`^(verbs|mempool|dispatcher|rdmastack|cmd/rdmaperf|tests/rdma[^/]*|tests/container)$`)

// Package is one package with tests.
type Package struct {
	ImportPath string
	Dir        string
	TestFiles  []string // test files of the package and its _test package
}

// Rel is the import path relative to Module ("msgr/msgr2").
func (p Package) Rel() string {
	return strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, Module), "/")
}

// NeedsRDMA reports whether p's tests run on rxe.
func (p Package) NeedsRDMA() bool { return rdmaPkgs.MatchString(p.Rel()) }

// ListPackages returns the packages under ./... that have tests and whose
// Rel matches filter (all when filter is empty).
func ListPackages(filter string) ([]Package, error) {
	keep, err := regexp.Compile(filter)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("go", "list", "-f",
		`{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}|{{.Dir}}|{{join .TestGoFiles ","}},{{join .XTestGoFiles ","}}{{end}}`,
		"./...").Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var pkgs []Package
	for _, line := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 3 {
			continue
		}
		p := Package{ImportPath: f[0], Dir: f[1]}
		if !keep.MatchString(p.Rel()) {
			continue
		}
		for _, name := range strings.Split(f[2], ",") {
			if name != "" {
				p.TestFiles = append(p.TestFiles, filepath.Join(p.Dir, name))
			}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// FuzzTargets returns the names of p's fuzz targets (func FuzzX(*testing.F)),
// read from its test files, so listing them builds nothing.
func FuzzTargets(p Package) ([]string, error) {
	var names []string
	fset := token.NewFileSet()
	for _, path := range p.TestFiles {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && isFuzzTarget(fn) {
				names = append(names, fn.Name.Name)
			}
		}
	}
	return names, nil
}

func isFuzzTarget(fn *ast.FuncDecl) bool {
	if fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Fuzz") || len(fn.Type.Params.List) != 1 {
		return false
	}
	star, ok := fn.Type.Params.List[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "F"
}
