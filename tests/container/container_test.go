package container

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

// documented are the run flags README gives for RDMA in a container.
var documented = []string{"--network", "host", "--device", "/dev/infiniband", "--cap-add", "IPC_LOCK", "--ulimit", "memlock=-1"}

// withoutDevice are the documented flags less the device.
var withoutDevice = []string{"--network", "host", "--cap-add", "IPC_LOCK", "--ulimit", "memlock=-1"}

// engine is the container engine command: ASYNCMSGR_CONTAINER_ENGINE, else
// soft-roce/container.sh podman (podman with this sandbox's flags).
func engine(t *testing.T) []string {
	t.Helper()
	if e := strings.Fields(os.Getenv("ASYNCMSGR_CONTAINER_ENGINE")); len(e) > 0 {
		testenv.RequireTools(t, testenv.Tool{Name: e[0], Package: e[0]})
		return e
	}
	testenv.RequireTools(t, testenv.Tool{Name: "podman", Package: "podman"}, testenv.Tool{Name: "runc", Package: "runc"})
	script, err := filepath.Abs("../../soft-roce/container.sh")
	require.NoError(t, err)
	return []string{script, "podman"}
}

// image returns the engine command and the image, applying testenv.Missing
// when the image is not there.
func image(t *testing.T) ([]string, string) {
	t.Helper()
	e := engine(t)
	img := os.Getenv("ASYNCMSGR_IMAGE")
	if img == "" {
		img = "localhost/asyncmsgr"
	}
	imageCheck.Do(func() {
		if out, err := exec.Command(e[0], append(e[1:], "image", "exists", img)...).CombinedOutput(); err != nil {
			imageCheck.err = fmt.Errorf("%w %s", err, out)
		}
	})
	if imageCheck.err != nil {
		testenv.Missing(t, "image %s (soft-roce/container.sh build): %v", img, imageCheck.err)
	}
	return e, img
}

// imageCheck asks the engine once per test binary whether the image is
// there (every podman start costs the VM seconds; engine and image come
// from the environment, the same for every test).
var imageCheck struct {
	sync.Once
	err error
}

// run runs CMD in a fresh container of the image with flags and returns its
// combined output and exit code.
func run(t *testing.T, limit time.Duration, flags []string, cmd ...string) (string, int) {
	t.Helper()
	e, img := image(t)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	args := append(append(append(append([]string(nil), e[1:]...), "run", "--rm"), flags...), img)
	c := exec.CommandContext(ctx, e[0], append(args, cmd...)...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	start := time.Now()
	err := c.Run()
	require.NoError(t, ctx.Err(), "%s timed out:\n%s", strings.Join(c.Args, " "), out.String())
	code := 0
	if err != nil {
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "%s did not run", e[0])
		code = ee.ExitCode()
	}
	t.Logf("$ %s -> exit %d in %.1fs", strings.Join(c.Args, " "), code, time.Since(start).Seconds())
	return out.String(), code
}

// logLines logs the output line by line (the quoted evidence of a run).
func logLines(t *testing.T, out string) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		t.Logf("  | %s", l)
	}
}

// noCrash fails when the output shows a Go panic or a fatal signal.
func noCrash(t *testing.T, out string) {
	t.Helper()
	for _, bad := range []string{"panic:", "SIGSEGV", "fatal error:", "goroutine "} {
		require.NotContains(t, out, bad)
	}
}

// TestHelpWithoutDevice is the one container test of a host without an RDMA
// device (make test runs it there, before the VM).
func TestHelpWithoutDevice(t *testing.T) {
	out, code := run(t, 2*time.Minute, nil, "rdmaperf", "--help")
	require.Equal(t, 0, code, out)
	require.True(t, strings.HasPrefix(out, "usage: rdmaperf SUBCOMMAND"), out)
	logLines(t, strings.SplitN(out, "\n", 2)[0])
}

// noDeviceScript runs, in one container (each start costs seconds in the
// VM), the messenger over rdma, the same with the posix fallback (a server
// that runs until timeout's 124; -v shows the warning naming the reason),
// and an rdmaperf server and client that meet over TCP and then open the
// device; "== NAME exit N" closes each. The fallback server's timeout is
// the event of its warning plus 2 s of serving: SIGALRM is timeout's own
// expiry (exit 124, the child killed), sent once the warning is out rather
// than after a fixed wait long enough for a slow VM.
const noDeviceScript = `export ASYNCMSGR_MS_TYPE=async+rdma
msgrping -server 127.0.0.1:0; echo "== msgr exit $?"
ASYNCMSGR_MS_ASYNC_TRANSPORT_FALLBACK=true timeout 120 msgrping -v -server 127.0.0.1:0 >/tmp/fallback.log 2>&1 & fb=$!
until grep -q '(stack posix,' /tmp/fallback.log || ! kill -0 $fb 2>/dev/null; do sleep 0.1; done
sleep 2; kill -ALRM $fb 2>/dev/null; wait $fb; st=$?; cat /tmp/fallback.log; echo "== fallback exit $st"
rdmaperf send_lat -p 18531 & rdmaperf send_lat -p 18531 127.0.0.1; echo "== perf-client exit $?"
wait $!; echo "== perf-server exit $?"`

// TestNoDevice: a container without --device /dev/infiniband gets the
// stack's "no RDMA device" error (or the posix fallback when configured),
// never a crash; in the VM the host has rxe0, the container does not.
func TestNoDevice(t *testing.T) {
	testenv.RequireRDMA(t)
	// With TestSendLat, after TestRDMASuite: each podman start costs the VM
	// seconds, mostly waiting.
	t.Parallel()
	out, code := run(t, 3*time.Minute, withoutDevice, "sh", "-c", noDeviceScript)
	logLines(t, out)
	require.Equal(t, 0, code, out)
	noCrash(t, out)
	part, prev := map[string]string{}, 0
	for _, m := range regexp.MustCompile(`(?m)^== (\S+) exit (\d+)$`).FindAllStringSubmatchIndex(out, -1) {
		part[out[m[2]:m[3]]] = out[m[4]:m[5]] + "\n" + out[prev:m[0]]
		prev = m[1]
	}
	require.Len(t, part, 4, out)
	const noDev = "verbs: ibv_open_device: no such device (verbs: no RDMA device)"
	require.True(t, strings.HasPrefix(part["msgr"], "1\n"), part["msgr"])
	require.Contains(t, part["msgr"], noDev)
	require.True(t, strings.HasPrefix(part["fallback"], "124\n"), part["fallback"])
	require.Contains(t, part["fallback"], "no RDMA device")
	require.Contains(t, part["fallback"], "(stack posix,")
	for _, p := range []string{"perf-client", "perf-server"} {
		require.True(t, strings.HasPrefix(part[p], "1\n"), "%s: %s", p, part[p])
	}
	require.Equal(t, 2, strings.Count(part["perf-client"]+part["perf-server"], "rdmaperf: "+noDev), out)
}

// TestSendLat runs rdmaperf send_lat between two containers on the device.
func TestSendLat(t *testing.T) {
	dev := testenv.RequireRDMA(t)
	t.Parallel()
	perf := []string{"rdmaperf", "send_lat", "-d", dev.Name, "-x", strconv.Itoa(dev.GIDIdx), "-n", "200", "-p", "18532"}
	srv := make(chan string, 1)
	go func() {
		out, code := run(t, 3*time.Minute, documented, perf...)
		srv <- strconv.Itoa(code) + "\n" + out
	}()
	out, code := run(t, 3*time.Minute, documented, append(perf, dev.Host)...)
	logLines(t, out)
	s := <-srv
	t.Logf("server: exit %s", s)
	require.Equal(t, 0, code, out)
	require.True(t, strings.HasPrefix(s, "0\n"), s)
	require.Contains(t, out, "t_avg[usec]")
	require.Regexp(t, `(?m)^ +2 +200 +[0-9.]+ `, out, "a result row for 2 bytes x 200")
	require.Contains(t, out, "Device         : "+dev.Name)
}

// TestRDMASuite runs the messenger over rdma (tests/rdmasuite's test binary,
// built on the host, ASYNCMSGR_CONTAINER_SUITE) inside a container with the
// documented flags, as rdmasuite's first pass would run SuiteTests.
func TestRDMASuite(t *testing.T) {
	dev := testenv.RequireRDMA(t)
	bin := os.Getenv("ASYNCMSGR_CONTAINER_SUITE")
	if bin == "" {
		testenv.Missing(t, "ASYNCMSGR_CONTAINER_SUITE (go test -c ./tests/rdmasuite; make test sets it)")
	}
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	// The binary runs in its package's directory, as go test runs it.
	flags := []string{"-v", bin + ":/usr/local/bin/rdmasuite.test:ro", "-v", repo + ":" + repo + ":ro",
		"-w", filepath.Join(repo, "tests", "rdmasuite")}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name == "CI" || strings.HasPrefix(name, "RXE_") || strings.HasPrefix(name, "ASYNCMSGR_RDMA") {
			flags = append(flags, "-e", name)
		}
	}
	args := []string{"rdmasuite.test", "-test.v", "-test.count=1", "-test.run", SuiteTests}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	out, code := run(t, 12*time.Minute, append(flags, documented...), args...)
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "--- ") || strings.Contains(l, " took ") || l == "PASS" || l == "FAIL" {
			t.Logf("  | %s", l)
		}
	}
	require.Equal(t, 0, code, out)
	require.NotContains(t, out, "--- SKIP")
	for _, name := range []string{"TestMessengerSuite", "TestNettestConn", "TestNettestConnCM"} {
		require.Contains(t, out, "--- PASS: "+name+" ", "in %s", dev.Name)
	}
}
