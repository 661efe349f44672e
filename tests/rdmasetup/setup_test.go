package rdmasetup

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

// requireRxeHost returns the repository root, or skips (outside CI only)
// when this machine cannot create rxe devices.
func requireRxeHost(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t, "create rxe devices")
	if _, err := os.Stat("/sys/module/rdma_rxe"); err != nil {
		testenv.Missing(t, "the rdma_rxe module loaded (run in soft-roce/vm-run.sh): %v", err)
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	return root
}

func run(t *testing.T, root, script string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(root, "soft-roce", script), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "running %s: %v", script, err)
		code = ee.ExitCode()
	}
	return string(out), code
}

func rdmaLinks(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("rdma", "link", "show").CombinedOutput()
	require.NoError(t, err, string(out))
	return string(out)
}

func TestSetupTeardown(t *testing.T) {
	root := requireRxeHost(t)
	const dev, peer, name = "srtest0", "srtest1", "rxetest"
	ipOut, err := exec.Command("ip", "link", "add", dev, "type", "veth", "peer", "name", peer).CombinedOutput()
	require.NoError(t, err, string(ipOut))
	t.Cleanup(func() {
		_ = exec.Command("rdma", "link", "delete", name).Run()
		_ = exec.Command("ip", "link", "delete", dev).Run()
	})
	require.NoError(t, exec.Command("ip", "link", "set", dev, "up").Run())
	env := []string{"RXE_NAME=" + name}

	out, code := run(t, root, "setup.sh", env, dev)
	require.Equal(t, 0, code, out)
	require.Contains(t, rdmaLinks(t), name+"/1")
	require.Contains(t, rdmaLinks(t), "netdev "+dev)

	// Idempotent: a second run keeps the device and adds none.
	out, code = run(t, root, "setup.sh", env, dev)
	require.Equal(t, 0, code, out)
	require.Equal(t, 1, strings.Count(rdmaLinks(t), "netdev "+dev+" "), rdmaLinks(t))

	out, code = run(t, root, "setup.sh", env, "nosuchif0")
	require.Equal(t, 2, code, out)
	require.Contains(t, out, "no interface nosuchif0")

	out, code = run(t, root, "teardown.sh", nil, name)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "removed "+name)
	require.NotContains(t, rdmaLinks(t), name+"/1")

	out, code = run(t, root, "teardown.sh", nil, name)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "no device "+name)
}
