package rdmatest

import (
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

// Device is one rxe device (see testenv.Device).
type Device = testenv.Device

// Missing is testenv.Missing: skip outside CI naming what is missing, fail in
// CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	testenv.Missing(t, format, args...)
}

// DeviceA is host A's device (testenv.RequireRDMA).
func DeviceA(t testing.TB) Device {
	t.Helper()
	return testenv.RequireRDMA(t)
}

// DeviceB is host B's device in two-host mode (testenv.RequireTwoHost).
func DeviceB(t testing.TB) Device {
	t.Helper()
	_, b := testenv.RequireTwoHost(t)
	return b
}

// Config is a messenger configuration for the rdma stack on d with short,
// test-friendly timeouts: faults are found within ~1.5 s of silence, lossless
// sessions retry quickly. Fallback to posix is off, so a broken rdma stack
// fails instead of passing over TCP.
func Config(d Device) *config.Config {
	cfg := config.Default()
	cfg.TransportType = "rdma"
	cfg.TransportFallback = false
	cfg.OpThreads = 2
	cfg.RDMADeviceName = d.Name
	cfg.RDMAGIDIdx = d.GIDIdx
	// keep registered memory modest: the VM is small, several stacks live
	// in one test process, and pinning memory is slow under emulation
	cfg.RDMASendBuffers = 64
	cfg.RDMAReceiveBuffers = 512
	cfg.RDMAReceiveQueueLen = 128
	cfg.RDMABufferSize = 128 << 10
	cfg.ConnectionReadyTimeout = 20 * time.Second
	cfg.KeepaliveInterval = 300 * time.Millisecond
	cfg.ConnectionIdleTimeout = 3 * time.Second
	cfg.InitialBackoff = 20 * time.Millisecond
	cfg.MaxBackoff = 300 * time.Millisecond
	cfg.MaxFrameSegment = 64 << 20
	return cfg
}

// WaitFor is testenv.WaitFor.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool, describe func() string) {
	t.Helper()
	testenv.WaitFor(t, limit, what, cond, describe)
}
