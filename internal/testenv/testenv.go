package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// InCI reports whether this run is CI's, where nothing may skip.
func InCI() bool { return os.Getenv("CI") != "" }

// Missing applies the rule to something the machine lacks: it skips naming
// it outside CI and fails in CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	what := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("missing (CI forbids skipping): %s", what)
	}
	t.Skipf("missing: %s (in CI this is a failure)", what)
}

// RequireRoot applies Missing unless the test runs as root; what says what
// root is needed for.
func RequireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root, to %s (run as root or in soft-roce/vm-run.sh)", what)
	}
}

// Tool is a program a test runs and the Debian package that installs it.
type Tool struct {
	Name    string
	Package string
}

// RequireTools applies Missing to the first tool not in PATH.
func RequireTools(t testing.TB, tools ...Tool) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool.Name); err != nil {
			Missing(t, "%s not installed (Debian package %s)", tool.Name, tool.Package)
		}
	}
}

// CephTools are the Ceph programs the interop tests run.
var CephTools = []Tool{
	{"ceph-mon", "ceph-mon"},
	{"monmaptool", "ceph-base"},
	{"ceph-authtool", "ceph-common"},
}

// RequireCeph applies Missing unless the Ceph tools (CephTools plus any
// extra) are installed.
func RequireCeph(t testing.TB, extra ...Tool) {
	t.Helper()
	RequireTools(t, append(append([]Tool(nil), CephTools...), extra...)...)
}

// WaitFor polls cond every few milliseconds until it holds or limit passes,
// then fails the test naming what it waited for and describe()'s state (when
// describe is not nil). limit only bounds the wait: no test asserts how long
// the wait took.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			state := ""
			if describe != nil {
				state = ": " + describe()
			}
			t.Fatalf("gave up after %v waiting for %s%s", limit, what, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
