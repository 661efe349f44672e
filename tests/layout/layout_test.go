package layout_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	maxGoLines     = 600 // a non-test .go file
	maxScriptLines = 120 // a script under soft-roce/ or tests/
)

// root is the module's directory (this package is tests/layout).
func root(t *testing.T) string {
	dir, err := filepath.Abs("../..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "go.mod"))
	require.NoError(t, err, "tests/layout must sit two levels below the module root")
	return dir
}

// files walks the tree below dir as a checkout has it: no hidden
// directories (.git, .build) and no testdata.
func files(t *testing.T, dir string, visit func(path string, body []byte)) {
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		visit(path, body)
		return nil
	})
	require.NoError(t, err)
}

func lines(b []byte) int {
	n := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

func isScript(path string, body []byte) bool {
	return strings.HasSuffix(path, ".sh") || bytes.HasPrefix(body, []byte("#!"))
}

func TestFilesOfOneJob(t *testing.T) {
	top := root(t)
	var over []string
	files(t, top, func(path string, body []byte) {
		rel, _ := filepath.Rel(top, path)
		switch {
		case strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go"):
			if n := lines(body); n > maxGoLines {
				over = append(over, fmt.Sprintf("%s: %d lines (a non-test .go file: at most %d)", rel, n, maxGoLines))
			}
		case (strings.HasPrefix(rel, "soft-roce/") || strings.HasPrefix(rel, "tests/")) && isScript(path, body):
			if n := lines(body); n > maxScriptLines {
				over = append(over, fmt.Sprintf("%s: %d lines (a script: at most %d; write it in Go)", rel, n, maxScriptLines))
			}
		}
	})
	require.Empty(t, over)
}

// The goroutine-id trick (parsing runtime.Stack) stands in for an owner
// that is not written down; only tests may dump stacks.
func TestNoRuntimeStackOutsideTests(t *testing.T) {
	top := root(t)
	var found []string
	files(t, top, func(path string, body []byte) {
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return
		}
		for n, line := range bytes.Split(body, []byte("\n")) {
			if bytes.Contains(line, []byte("runtime.Stack(")) {
				rel, _ := filepath.Rel(top, path)
				found = append(found, fmt.Sprintf("%s:%d", rel, n+1))
			}
		}
	})
	require.Empty(t, found)
}

// The stacks sit below the messenger: nothing they build on may come from
// msgr (config and netconn live beside them for that reason).
func TestStacksDoNotImportTheMessenger(t *testing.T) {
	top := root(t)
	cmd := exec.Command("go", "list", "-deps", "./netstack/...", "./posixfallback/...", "./rdmastack/...")
	cmd.Dir = top
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", out)
	var up []string
	for _, p := range strings.Fields(string(out)) {
		if p == "github.com/asyncmsgr/asyncmsgr/msgr" || strings.HasPrefix(p, "github.com/asyncmsgr/asyncmsgr/msgr/") {
			up = append(up, p)
		}
	}
	require.Empty(t, up)
}

func TestLayout(t *testing.T) {
	top := root(t)
	for _, dir := range []string{"config", "netstack/netconn", "verbs/cshim"} {
		fi, err := os.Stat(filepath.Join(top, dir))
		require.NoError(t, err)
		require.True(t, fi.IsDir(), dir)
	}
	_, err := os.Stat(filepath.Join(top, ".notes"))
	require.True(t, os.IsNotExist(err), ".notes/ is back in the tree: notes between engineers go on the issues")
}
