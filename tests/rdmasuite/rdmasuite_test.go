package rdmasuite

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/asyncmsgr/asyncmsgr/netstack/netconn"
	"github.com/asyncmsgr/asyncmsgr/rdmastack"
	"github.com/asyncmsgr/asyncmsgr/tests/msgrsuite"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// device returns the rxe device and GID index the VM provides, skipping
// (outside CI) or failing (in CI) when there is none.
func device(t testing.TB, env string) (string, int) {
	t.Helper()
	dev := os.Getenv(env)
	if dev == "" {
		if devs, _ := verbs.Devices(); len(devs) > 0 && env == "RXE_DEV_A" {
			dev = devs[0].Name
		}
	}
	if dev == "" || !verbs.Supported {
		testenv.Missing(t, "RDMA device (%s unset, cgo=%v): run in soft-roce/vm-run.sh", env, verbs.Supported)
	}
	gid := -1
	if v := os.Getenv("RXE_GID_IDX"); v != "" {
		gid, _ = strconv.Atoi(v)
	}
	return dev, gid
}

// small sizes the pools for a TCG VM running many messengers at once.
func small(cfg *config.Config, dev string, gid int) {
	cfg.RDMADeviceName = dev
	cfg.RDMAGIDIdx = gid
	cfg.RDMABufferSize = 32 << 10
	cfg.RDMASendBuffers = 256
	cfg.RDMAReceiveQueueLen = 256
	cfg.RDMAReceiveBuffers = 2048
	cfg.RDMAPollingUS = 200
	if m := pollingMode(); m != "" {
		cfg.RDMAPollingMode = m
	}
	if v, err := strconv.Atoi(os.Getenv("ASYNCMSGR_RDMASUITE_SEND_BUFFERS")); err == nil && v > 0 {
		cfg.RDMASendBuffers = v // experiments: a pool that never runs dry
	}
}

// pollingMode is the polling mode this run of the suite is for ("" for
// the configuration's default, worker): CI runs the suite in both.
func pollingMode() string { return os.Getenv("ASYNCMSGR_RDMA_POLLING_MODE") }

// repeatShort sets the messenger suite's short sizes until t ends when this
// run is CI's second polling-mode pass (dispatcher), for the suite runs
// that repeat in another configuration what a full-size run covers: the
// issues ask for the full sizes once over rdma (issue 10: cephx secure;
// the two-host and injected-fault runs), which the first pass (worker)
// runs, while TestMessengerSuite runs at full size in both modes
// (issue 9). In this pass they still run every test of their suite, in
// the other mode, on fewer messages: under TCG the full sizes cost about a
// minute per suite run (in one run, on a loaded host: ManyConnsInOrder 25 s,
// LargeMessage64MiB 41 s).
func repeatShort(t *testing.T) {
	if pollingMode() != "dispatcher" {
		return
	}
	msgrsuite.Short, msgrsuite.LargeMessageMiB = true, largeShortMiB
	t.Cleanup(func() { msgrsuite.Short = false })
}

// TestSlowConsumerGiB is TestPosixSlowConsumerGiB over rdma: 1 GiB in 1 MiB
// messages to a dispatcher sleeping 10 ms each, the receiver's heap under
// the throttle plus a margin, the sender held back, nothing lost. It runs
// in the default (worker) polling mode whichever pass this is, and CI's
// dispatcher-mode pass leaves it out (internal/testrun secondPassSkip):
// the throttle sits in the messenger, and the suite's SlowConsumer runs
// through both modes.
func TestSlowConsumerGiB(t *testing.T) {
	dev, gid := device(t, "RXE_DEV_A")
	msgrsuite.Tweak = func(cfg *config.Config) {
		small(cfg, dev, gid)
		cfg.RDMAPollingMode = "worker"
	}
	t.Cleanup(func() { msgrsuite.Tweak = nil })
	msgrsuite.SlowConsumerBigMessages(t, "rdma", 1024)
}

func TestMessengerSuite(t *testing.T) {
	dev, gid := device(t, "RXE_DEV_A")
	msgrsuite.Tweak = func(cfg *config.Config) { small(cfg, dev, gid) }
	// 64 MiB, or 16 MiB in -short mode (see TestMain): under TCG hashing
	// it twice (sha256) is most of the test's CPU time.
	msgrsuite.LargeMessageMiB = largeMiB()
	msgrsuite.SlowConsumerMiB = 64 // 1024 messages at 10 ms (TestMain's 16 for the suite's other runs)
	t.Cleanup(func() {
		msgrsuite.Tweak, msgrsuite.LargeMessageMiB, msgrsuite.SlowConsumerMiB = nil, 64, slowConsumerMiB
	})
	start := time.Now()
	msgrsuite.Run(t, "rdma")
	t.Logf("messenger suite over rdma (%s) took %v", dev, time.Since(start))
}

// newStack is a started rdma stack on dev with the suite's small
// configuration, then mods, stopped when t ends.
func newStack(t testing.TB, dev string, gid int, mods ...func(*config.Config)) *rdmastack.Stack {
	t.Helper()
	cfg := msgrsuite.Config("rdma")
	small(cfg, dev, gid)
	for _, mod := range mods {
		mod(cfg)
	}
	s, err := rdmastack.NewStack(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { require.NoError(t, s.Stop()) })
	return s
}

// pipe is a connected pair of sockets of s: the dialer's end, then the
// listener's.
func pipe(t testing.TB, s netstack.Stack, addr string) (*netconn.Conn, *netconn.Conn) {
	t.Helper()
	return pipe2(t, s, s, addr)
}

func TestNettestConn(t *testing.T) {
	dev, gid := device(t, "RXE_DEV_A")
	s := newStack(t, dev, gid)
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		c1, c2 := pipe(t, s, "127.0.0.1:0")
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
	st := s.Stats()
	t.Logf("rdma stack counters: %+v (WRs per post %.2f)", st, st.WRsPerPost())
}

// TestMessengerSuiteTwoHost runs the suite with the servers on host A
// (rxe0, RXE_HOST_A) and the clients on host B (rxe1), so every byte crosses
// the veth wire.
func TestMessengerSuiteTwoHost(t *testing.T) {
	if os.Getenv(testenv.EnvTwoHost) == "" {
		testenv.Missing(t, "two-host mode (%s unset): run in soft-roce/vm-run.sh --two-host", testenv.EnvTwoHost)
	}
	devA, gid := device(t, "RXE_DEV_A")
	devB, _ := device(t, "RXE_DEV_B")
	hostA := os.Getenv("RXE_HOST_A")
	require.NotEmpty(t, hostA)
	msgrsuite.Tweak = func(cfg *config.Config) { small(cfg, devA, gid) }
	msgrsuite.TweakServer = func(cfg *config.Config) { cfg.RDMADeviceName = devA }
	msgrsuite.TweakClient = func(cfg *config.Config) { cfg.RDMADeviceName = devB }
	msgrsuite.ServerHost = hostA
	msgrsuite.LargeMessageMiB = largeMiB() // see TestMessengerSuite
	t.Cleanup(func() {
		msgrsuite.Tweak, msgrsuite.TweakServer, msgrsuite.TweakClient, msgrsuite.ServerHost = nil, nil, nil, ""
		msgrsuite.LargeMessageMiB = 64
	})
	repeatShort(t)
	sentA, sentB := sentPkts(t, devA), sentPkts(t, devB)
	start := time.Now()
	msgrsuite.Run(t, "rdma")
	t.Logf("messenger suite over rdma (%s -> %s) took %v", devB, devA, time.Since(start))
	// Both devices carried traffic: the clients really used host B's.
	dA, dB := sentPkts(t, devA)-sentA, sentPkts(t, devB)-sentB
	t.Logf("packets sent: %s %d, %s %d", devA, dA, devB, dB)
	require.Positive(t, dA)
	require.Positive(t, dB)
}

// sentPkts reads the device's sent_pkts hardware counter (port 1).
func sentPkts(t *testing.T, dev string) int64 {
	t.Helper()
	b, err := os.ReadFile("/sys/class/infiniband/" + dev + "/ports/1/hw_counters/sent_pkts")
	require.NoError(t, err)
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	require.NoError(t, err)
	return n
}

// TestNettestConnCM is TestNettestConn with connections set up through
// rdma_cm (ms_async_rdma_cm=true): the server side listens on host A's
// address with host A's device; the client uses host B's device in
// two-host mode (that is how host A is reached from here), else host A's.
func TestNettestConnCM(t *testing.T) {
	devA, gid := device(t, "RXE_DEV_A")
	host := os.Getenv("RXE_HOST_A")
	if host == "" {
		testenv.Missing(t, "%s unset: run in soft-roce/vm-run.sh", testenv.EnvHostA)
	}
	devC := devA
	if os.Getenv("RXE_TWO_HOST") != "" {
		devC = os.Getenv("RXE_DEV_B")
	}
	mk := func(dev string) *rdmastack.Stack {
		return newStack(t, dev, gid, func(cfg *config.Config) { cfg.RDMACM = true })
	}
	srv, cli := mk(devA), mk(devC)
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		c1, c2 := pipe2(t, srv, cli, net.JoinHostPort(host, "0"))
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
	t.Logf("rdma_cm server stack counters: %+v", srv.Stats())
}

// pipe2 is pipe with the listener on srv and the dialer on cli.
func pipe2(t testing.TB, srv, cli netstack.Stack, addr string) (*netconn.Conn, *netconn.Conn) {
	t.Helper()
	l, err := netconn.Listen(srv, addr)
	require.NoError(t, err)
	defer l.Close()
	type res struct {
		c   *netconn.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.AcceptConn()
		ch <- res{c, err}
	}()
	c1, err := netconn.Dial(cli, l.Addr().String())
	require.NoError(t, err)
	r := <-ch
	require.NoError(t, r.err)
	return c1, r.c
}
