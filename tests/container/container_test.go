package container

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

// documented are the run flags README gives for RDMA in a container.
var documented = []string{"--network", "host", "--device", "/dev/infiniband", "--cap-add", "IPC_LOCK", "--ulimit", "memlock=-1"}

// withoutDevice are the documented flags less the device.
var withoutDevice = []string{"--network", "host", "--cap-add", "IPC_LOCK", "--ulimit", "memlock=-1"}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// image returns the engine command and the image, applying testenv.Missing
// when the engine or the image is not there.
func image(t *testing.T) ([]string, string) {
	t.Helper()
	engine := strings.Fields(envOr("ASYNCMSGR_CONTAINER_ENGINE", "podman"))
	testenv.RequireTools(t, testenv.Tool{Name: engine[0], Package: engine[0]})
	img := envOr("ASYNCMSGR_IMAGE", "localhost/asyncmsgr")
	if err := exec.Command(engine[0], append(engine[1:], "image", "exists", img)...).Run(); err != nil {
		testenv.Missing(t, "image %s (build it: soft-roce/container.sh build)", img)
	}
	return engine, img
}

// run runs CMD in a fresh container of the image with the sandbox's flags
// and flags, and returns its combined output and exit code.
func run(t *testing.T, limit time.Duration, flags []string, cmd ...string) (string, int) {
	t.Helper()
	engine, img := image(t)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	args := append(append([]string(nil), engine[1:]...), "run", "--rm")
	args = append(append(append(args, strings.Fields(os.Getenv("ASYNCMSGR_CONTAINER_SANDBOX"))...), flags...), img)
	c := exec.CommandContext(ctx, engine[0], append(args, cmd...)...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	require.NoError(t, ctx.Err(), "%s %s timed out:\n%s", engine[0], strings.Join(c.Args[1:], " "), out.String())
	code := 0
	if err != nil {
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "%s did not run", engine[0])
		code = ee.ExitCode()
	}
	t.Logf("$ %s %s -> exit %d", engine[0], strings.Join(c.Args[1:], " "), code)
	return out.String(), code
}

// logLines logs the output line by line (the quoted evidence of a run).
func logLines(t *testing.T, out string) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		t.Logf("  | %s", l)
	}
}

func TestHelpWithoutDevice(t *testing.T) {
	out, code := run(t, 2*time.Minute, nil, "rdmaperf", "--help")
	require.Equal(t, 0, code, out)
	require.True(t, strings.HasPrefix(out, "usage: rdmaperf SUBCOMMAND"), out)
	logLines(t, strings.SplitN(out, "\n", 2)[0])
}

// noCrash fails when the output shows a Go panic or a fatal signal.
func noCrash(t *testing.T, out string) {
	t.Helper()
	for _, bad := range []string{"panic:", "SIGSEGV", "fatal error:", "goroutine "} {
		require.NotContains(t, out, bad)
	}
}

func TestNoDeviceMessenger(t *testing.T) {
	flags := append([]string{"-e", "ASYNCMSGR_MS_TYPE=async+rdma"}, withoutDevice...)
	out, code := run(t, 2*time.Minute, flags, "msgrping", "-server", "127.0.0.1:0")
	logLines(t, out)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "no RDMA device")
	noCrash(t, out)
}

func TestNoDeviceFallback(t *testing.T) {
	flags := append([]string{"-e", "ASYNCMSGR_MS_TYPE=async+rdma", "-e", "ASYNCMSGR_MS_ASYNC_TRANSPORT_FALLBACK=true"}, withoutDevice...)
	// The server runs until killed: timeout's 124 says it was up.
	out, code := run(t, 2*time.Minute, flags, "timeout", "10", "msgrping", "-server", "127.0.0.1:0")
	logLines(t, out)
	require.Equal(t, 124, code, out)
	require.Contains(t, out, "(stack posix,")
	require.Contains(t, out, "no RDMA device")
	noCrash(t, out)
}

func TestNoDeviceRdmaperf(t *testing.T) {
	// Server and client in one container meet over TCP, then both open the
	// device.
	out, code := run(t, 2*time.Minute, withoutDevice, "sh", "-c",
		"rdmaperf send_lat -p 18531 & rdmaperf send_lat -p 18531 127.0.0.1; c=$?; wait $!; s=$?; exit $((c * 16 + s))")
	logLines(t, out)
	require.Equal(t, 1*16+1, code, "client and server both exit 1:\n%s", out)
	require.Equal(t, 2, strings.Count(out, "rdmaperf: verbs: ibv_open_device: no such device (verbs: no RDMA device)"), out)
	noCrash(t, out)
}

func TestSendLat(t *testing.T) {
	dev := testenv.RequireRDMA(t)
	perf := []string{"rdmaperf", "send_lat", "-d", dev.Name, "-x", strconv.Itoa(dev.GIDIdx), "-n", "1000", "-p", "18532"}
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
	require.Regexp(t, `(?m)^ +2 +1000 +[0-9.]+ `, out, "a result row for 2 bytes x 1000")
	require.Contains(t, out, "Device         : "+dev.Name)
}

func TestRDMASuiteShort(t *testing.T) {
	dev := testenv.RequireRDMA(t)
	bin := os.Getenv("ASYNCMSGR_CONTAINER_SUITE")
	if bin == "" {
		testenv.Missing(t, "ASYNCMSGR_CONTAINER_SUITE (go test -c ./tests/rdmasuite; soft-roce/container.sh test sets it)")
	}
	flags := append([]string{"-v", bin + ":/usr/local/bin/rdmasuite.test:ro", "-e", "CI", "-e", "RXE_DEV_A", "-e", "RXE_HOST_A", "-e", "RXE_GID_IDX"}, documented...)
	out, code := run(t, 8*time.Minute, flags, "rdmasuite.test", "-test.short", "-test.v",
		"-test.run", "^(TestMessengerSuite|TestNettestConn|TestNettestConnCM)$")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "--- ") || strings.Contains(l, "took") || l == "PASS" || l == "FAIL" || strings.HasPrefix(l, "ok") {
			t.Logf("  | %s", l)
		}
	}
	require.Equal(t, 0, code, out)
	require.NotContains(t, out, "--- SKIP")
	for _, name := range []string{"TestMessengerSuite", "TestNettestConn", "TestNettestConnCM"} {
		require.Contains(t, out, "--- PASS: "+name+" ", "in %s", dev.Name)
	}
}
