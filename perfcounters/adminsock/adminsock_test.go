package adminsock

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/perfcounters"
)

func registry() *perfcounters.Registry {
	r := perfcounters.NewRegistry()
	w := r.Set("AsyncMessenger::Worker-0")
	w.Add("msgr_recv_messages", "Network received messages", perfcounters.Counter).Add(42)
	w.Add("msgr_active_connections", "Active connection number", perfcounters.Gauge).Set(3)
	return r
}

func sockPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "asok-") // short: sun_path is 108 bytes
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "a.asok")
}

func ask(t *testing.T, path, cmd string) []byte {
	t.Helper()
	out, err := testenv.AdminSocket(path, cmd, 10*time.Second)
	require.NoError(t, err)
	return out
}

func TestAdminSocketCommands(t *testing.T) {
	p := sockPath(t)
	s, err := Listen(p, registry(), nil)
	require.NoError(t, err)
	defer s.Close()
	require.JSONEq(t, `{"AsyncMessenger::Worker-0":{"msgr_recv_messages":42,"msgr_active_connections":3}}`,
		string(ask(t, p, `{"prefix": "perf dump"}`)))
	require.JSONEq(t, `{"AsyncMessenger::Worker-0":{"msgr_recv_messages":42}}`,
		string(ask(t, p, `{"prefix": "perf dump", "logger": "AsyncMessenger::Worker-0", "counter": "msgr_recv_messages"}`)))
	var help map[string]string
	require.NoError(t, json.Unmarshal(ask(t, p, `{"prefix": "help"}`), &help))
	require.Contains(t, help, "perf schema")
	require.Contains(t, string(ask(t, p, `{"prefix": "nope"}`)), "unknown command")
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "idempotent")
	_, err = os.Stat(p)
	require.True(t, os.IsNotExist(err), "socket file removed")
}

// TestCephCLIReadsCounters runs Debian's ceph CLI against the socket: it
// validates the command with get_command_descriptions first, then asks.
func TestCephCLIReadsCounters(t *testing.T) {
	testenv.RequireTools(t, testenv.Tool{Name: "ceph", Package: "ceph-common"})
	p := sockPath(t)
	s, err := Listen(p, registry(), nil)
	require.NoError(t, err)
	defer s.Close()
	out, err := exec.Command("ceph", "--admin-daemon", p, "perf", "dump").CombinedOutput()
	require.NoError(t, err, "%s", out)
	var dump map[string]map[string]uint64
	require.NoError(t, json.Unmarshal(out, &dump), "%s", out)
	require.Equal(t, uint64(42), dump["AsyncMessenger::Worker-0"]["msgr_recv_messages"])
	out, err = exec.Command("ceph", "--admin-daemon", p, "perf", "schema").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "msgr_active_connections")
}
