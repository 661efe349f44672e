package hugetest

import (
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

// Knob is the sysctl file that sets how many default-size huge pages the
// kernel keeps reserved.
const Knob = "/proc/sys/vm/nr_hugepages"

// Reserve sets vm.nr_hugepages to n for the rest of t and restores the old
// value when t ends. It needs root (the Soft-RoCE VM runs tests as root):
// without it the test skips, or fails when CI is set. Callers check what
// the kernel actually reserved (verbs.ReadHugePageInfo).
func Reserve(t *testing.T, n int) {
	t.Helper()
	old, err := os.ReadFile(Knob)
	require.NoError(t, err)
	testenv.RequireRoot(t, "reserve huge pages ("+Knob+")")
	t.Cleanup(func() { require.NoError(t, os.WriteFile(Knob, old, 0o644)) })
	require.NoError(t, os.WriteFile(Knob, []byte(strconv.Itoa(n)), 0o644))
}
