package rdmatest

import (
	"os/exec"
	"strings"
	"testing"
)

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needTool(t testing.TB, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		Missing(t, "%s (iproute2) in PATH", tool)
	}
}

// Netem puts a netem qdisc with the given parameters on netdev's egress
// (e.g. Netem(t, "veth0", "loss", "1%", "delay", "5ms")) and removes it at
// cleanup. It needs root and the sch_netem module (both true in the VM).
func Netem(t testing.TB, netdev string, params ...string) {
	t.Helper()
	needTool(t, "tc")
	run(t, "tc", append([]string{"qdisc", "replace", "dev", netdev, "root", "netem"}, params...)...)
	t.Cleanup(func() { _ = exec.Command("tc", "qdisc", "del", "dev", netdev, "root").Run() })
	t.Logf("tc: %s", strings.TrimSpace(run(t, "tc", "qdisc", "show", "dev", netdev)))
}

// NetemStats returns `tc -s qdisc show dev netdev` (to log how many packets
// netem dropped).
func NetemStats(t testing.TB, netdev string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "tc", "-s", "qdisc", "show", "dev", netdev))
}

// wireState is the two-host VM's policy routing for the veth wire (table 77
// routes and permanent neighbour entries): setting a veth down flushes its
// routes and neighbours, and bringing it up does not restore them, so
// LinkDown snapshots and restores them.
type wireState struct {
	routes []string // "10.77.0.2 dev veth0 scope link src 10.77.0.1"
	neighs []string // "10.77.0.2 dev veth0 lladdr 02:.. PERMANENT"
}

func snapshotWire(t testing.TB) wireState {
	t.Helper()
	var w wireState
	for _, l := range strings.Split(run(t, "ip", "route", "show", "table", "77"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			w.routes = append(w.routes, l)
		}
	}
	for _, l := range strings.Split(run(t, "ip", "neigh", "show", "nud", "permanent"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			w.neighs = append(w.neighs, l)
		}
	}
	return w
}

func (w wireState) restore(t testing.TB) {
	t.Helper()
	for _, r := range w.routes {
		args := append([]string{"route", "replace"}, strings.Fields(r)...)
		run(t, "ip", append(args, "table", "77")...)
	}
	for _, n := range w.neighs {
		f := strings.Fields(strings.TrimSuffix(n, "PERMANENT"))
		run(t, "ip", append(append([]string{"neigh", "replace"}, f...), "nud", "permanent")...)
	}
}

// LinkDown sets netdev down (`ip link set DEV down`) and returns a function
// that sets it up again and restores the wire's routes and neighbours (see
// wireState); the cleanup does the same, so a failing test never leaves the
// wire cut for the next one.
func LinkDown(t testing.TB, netdev string) (up func()) {
	t.Helper()
	needTool(t, "ip")
	w := snapshotWire(t)
	run(t, "ip", "link", "set", netdev, "down")
	isUp := false
	up = func() {
		if !isUp {
			isUp = true
			run(t, "ip", "link", "set", netdev, "up")
			w.restore(t)
		}
	}
	t.Cleanup(func() {
		if !isUp {
			_ = exec.Command("ip", "link", "set", netdev, "up").Run()
			w.restore(t)
		}
	})
	return up
}
