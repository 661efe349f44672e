package msgrsuite

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
)

// Tweak, when set (before Run), adjusts every configuration the suite
// builds, e.g. the rdma test binary's device name and GID index.
var Tweak func(cfg *config.Config)

// Two-host options (the rdma suite across rxe0 and rxe1). Left at their
// zero values the suite runs everything on 127.0.0.1 with one configuration.
var (
	// ServerHost replaces 127.0.0.1 in the addresses server messengers bind
	// to ("" keeps 127.0.0.1).
	ServerHost string
	// TweakServer adjusts, after Tweak, the configuration of every messenger
	// the suite binds (servers).
	TweakServer func(cfg *config.Config)
	// TweakClient adjusts, after Tweak, the configuration of every unbound
	// messenger and raw client stack (clients).
	TweakClient func(cfg *config.Config)
)

// LargeMessageMiB is the size of the LargeMessage test's message (64 MiB;
// a suite run in an emulated VM may lower it to stay within its time budget).
var LargeMessageMiB = 64

// Short selects the short sizes of -short mode (ManyConnsInOrder's 10k
// messages, a third of InjectedMessages) for the suite's next runs,
// without -short for the whole binary: a run that repeats, in another
// configuration, what a full-size run already covered. LosslessRandomCuts
// keeps its 9000 messages: with 3000 the sender can queue them all and
// make its cuts before the session is ready, and then no reconnect is
// counted (seen once over rdma in the VM: Reconnects 0).
var Short bool

// short reports whether the suite runs at its short sizes.
func short() bool { return Short || testing.Short() }

// roleConfig returns a copy of cfg adjusted for a server or a client.
func roleConfig(cfg *config.Config, server bool) *config.Config {
	c := *cfg
	switch {
	case server && TweakServer != nil:
		TweakServer(&c)
	case !server && TweakClient != nil:
		TweakClient(&c)
	}
	return &c
}

// clientConfig is Config(stack) for a raw client stack.
func clientConfig(stack string) *config.Config { return roleConfig(Config(stack), false) }

// serverAddr moves a 127.0.0.1 bind address to ServerHost.
func serverAddr(bind string) string {
	if ServerHost == "" {
		return bind
	}
	if rest, ok := strings.CutPrefix(bind, "127.0.0.1:"); ok {
		return net.JoinHostPort(ServerHost, rest)
	}
	return bind
}

// Config returns the suite's configuration for stack: short timeouts so
// faults are detected quickly.
func Config(stack string) *config.Config {
	cfg := config.Default()
	cfg.TransportType = stack
	cfg.OpThreads = 2
	cfg.ConnectionReadyTimeout = 10 * time.Second
	cfg.KeepaliveInterval = 200 * time.Millisecond
	cfg.ConnectionIdleTimeout = 1500 * time.Millisecond
	cfg.InitialBackoff = 10 * time.Millisecond
	cfg.MaxBackoff = 200 * time.Millisecond
	cfg.MaxFrameSegment = 128 << 20
	if Tweak != nil {
		Tweak(cfg)
	}
	return cfg
}

// Run runs every messenger test over the named stack.
func Run(t *testing.T, stack string) { run(t, stack, nil) }

// rawPeerTests script an auth-none, crc-mode peer byte by byte, so they
// have no meaning when cephx is required (RunAuthenticated).
var rawPeerTests = map[string]bool{"LosslessSessionContinuation": true, "BadPeers": true}

// RunAuthenticated runs the tests that use only messengers: for runs with
// cephx required and secure mode, where a scripted auth-none peer is (and
// must be) refused.
func RunAuthenticated(t *testing.T, stack string) { run(t, stack, rawPeerTests) }

// suiteTest is one test of the suite, run over a stack.
type suiteTest struct {
	name string
	fn   func(t *testing.T, stack string)
}

// runTests runs tests over stack as subtests, but those named in except.
func runTests(t *testing.T, stack string, tests []suiteTest, except map[string]bool) {
	for _, tc := range tests {
		if except[tc.name] {
			continue
		}
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, stack) })
	}
}

func run(t *testing.T, stack string, except map[string]bool) {
	runTests(t, stack, []suiteTest{
		{"Handshake", testHandshake},
		{"ManyConnsInOrder", testManyConnsInOrder},
		{"PrioritiesUnderBacklog", testPriorities},
		{fmt.Sprintf("LargeMessage%dMiB", LargeMessageMiB), testLargeMessage},
		{"LosslessReconnect", testLosslessReconnect},
		{"LosslessRandomCuts", testLosslessRandomCuts},
		{"LosslessSessionContinuation", testSessionContinuation},
		{"LossyFaultReported", testLossyFault},
		{"BadPeers", testBadPeers},
		{"HandshakeTimeout", testHandshakeTimeout},
		{"KeepaliveKeepsIdleConnAlive", testKeepalive},
		{"LosslessBackoffAndPeerRestart", testBackoffAndRestart},
		{"ShutdownInFlight", testShutdownInFlight},
		{"SlowConsumer", testSlowConsumer},
		{"SlowConsumerPolicyThrottlers", testSlowConsumerPolicy},
		{"SlowConsumerContextSender", testSlowConsumerContextSender},
	}, except)
}
