//go:build linux && cgo

package verbs

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

var rdmaResources = []string{"qp", "cq", "mr", "pd", "cm_id"}

// rdmaCounts counts, per resource kind, the entries `rdma -j resource show`
// lists for this process.
func rdmaCounts() (map[string]int, error) {
	out, _, err := rdmaCountsRaw()
	return out, err
}

func rdmaCountsRaw() (map[string]int, map[string]string, error) {
	out := map[string]int{}
	raws := map[string]string{}
	// The kernel records the thread that created a resource; cgo calls run on
	// any of the process's threads (Go threads do not exit here).
	ours := map[float64]bool{float64(os.Getpid()): true}
	if tasks, err := os.ReadDir("/proc/self/task"); err == nil {
		for _, d := range tasks {
			if tid, err := strconv.Atoi(d.Name()); err == nil {
				ours[float64(tid)] = true
			}
		}
	}
	for _, kind := range rdmaResources {
		raw, err := exec.Command("rdma", "-j", "resource", "show", kind).Output()
		if err != nil {
			return nil, nil, fmt.Errorf("rdma -j resource show %s: %w", kind, err)
		}
		raws[kind] = string(raw)
		var entries []map[string]any
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &entries); err != nil {
				return nil, nil, fmt.Errorf("rdma -j resource show %s: %w: %q", kind, err, raw)
			}
		}
		for _, e := range entries {
			if p, ok := e["pid"].(float64); ok && ours[p] {
				out[kind]++
			}
		}
	}
	return out, raws, nil
}

// The accounting sees what this process opens, so the final leak check can fail.
func TestRdmaResourceAccounting(t *testing.T) {
	testDevice(t)
	_, err := exec.LookPath("rdma")
	require.NoError(t, err, "iproute2's rdma tool is needed")
	base, err := rdmaCounts()
	require.NoError(t, err)

	e := newEnv(t)
	a, b := e.pair(t, nil)
	open, raw, err := rdmaCountsRaw()
	require.NoError(t, err)
	t.Logf("pid %d, with 2 QPs open: %v\n%s", os.Getpid(), open, raw["qp"])
	require.Equal(t, base["qp"]+2, open["qp"])
	require.Equal(t, base["cq"]+2, open["cq"])
	require.Equal(t, base["mr"]+1, open["mr"])
	require.Equal(t, base["pd"]+1, open["pd"])
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	require.NoError(t, e.close())
	e.closes = nil
	closed, err := rdmaCounts()
	require.NoError(t, err)
	require.Equal(t, base, closed)
}

// TestMain runs the tests, then checks, with `rdma resource show`, that no
// QP/CQ/MR/PD/cm_id of this process is left. A run with a device and leaks fails.
func TestMain(m *testing.M) {
	code := m.Run()
	if devs, _ := Devices(); len(devs) > 0 && code == 0 {
		runtime.GC() // nothing may depend on it; it only makes backstops visible
		c, err := rdmaCounts()
		switch {
		case err != nil:
			fmt.Fprintln(os.Stderr, "leak check:", err)
			code = 1
		default:
			leaked := false
			for _, k := range rdmaResources {
				if c[k] != 0 {
					leaked = true
				}
			}
			if leaked {
				fmt.Fprintf(os.Stderr, "leak check: resources left by pid %d: %v\n", os.Getpid(), c)
				code = 1
			} else {
				fmt.Printf("leak check: no qp/cq/mr/pd/cm_id left by pid %d\n", os.Getpid())
			}
		}
	}
	os.Exit(code)
}
