package rdmatest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
)

// Device is one rxe device and the IPv4 address of the netdev it sits on.
type Device struct {
	Name   string // RDMA device, e.g. "rxe0"
	Host   string // IPv4 address of its netdev, e.g. "10.77.0.1"
	GIDIdx int    // GID index of the RoCEv2 IPv4 GID
	Netdev string // the netdev under the device ("veth0"), from sysfs
}

// Missing applies the skip rule for a test that needs something the machine
// lacks: outside CI (CI unset) it skips naming what is missing, in CI it
// fails, because CI runs the RDMA tests where everything must exist.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	what := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("missing (CI forbids skipping): %s", what)
	}
	t.Skipf("missing: %s (set by soft-roce/vm-run.sh; in CI this is a failure)", what)
}

func deviceFromEnv(t testing.TB, devVar, hostVar string) Device {
	t.Helper()
	d := Device{Name: os.Getenv(devVar), Host: os.Getenv(hostVar)}
	if d.Name == "" || d.Host == "" {
		Missing(t, "RDMA device: %s/%s not set (run under soft-roce/vm-run.sh)", devVar, hostVar)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/infiniband", d.Name)); err != nil {
		Missing(t, "RDMA device %s (%s=%s): %v", d.Name, devVar, d.Name, err)
	}
	gid := os.Getenv("RXE_GID_IDX")
	if gid == "" {
		Missing(t, "RXE_GID_IDX not set")
	}
	n, err := strconv.Atoi(gid)
	if err != nil {
		t.Fatalf("RXE_GID_IDX=%q: %v", gid, err)
	}
	d.GIDIdx = n
	if ents, err := os.ReadDir(filepath.Join("/sys/class/infiniband", d.Name, "device/net")); err == nil && len(ents) > 0 {
		d.Netdev = ents[0].Name()
	} else if b, err := os.ReadFile(filepath.Join("/sys/class/infiniband", d.Name, "parent")); err == nil {
		d.Netdev = string(trimNL(b))
	}
	return d
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// DeviceA is host A's device (RXE_DEV_A on RXE_HOST_A; rxe0 on veth0,
// 10.77.0.1 in the VM). It skips or fails (see Missing) when there is none.
func DeviceA(t testing.TB) Device {
	t.Helper()
	d := deviceFromEnv(t, "RXE_DEV_A", "RXE_HOST_A")
	if d.Netdev == "" {
		d.Netdev = "veth0"
	}
	return d
}

// DeviceB is host B's device in two-host mode (RXE_DEV_B on RXE_HOST_B;
// rxe1 on veth1, 10.77.0.2). Traffic between A and B crosses the veth wire.
// It skips or fails (see Missing) outside two-host mode.
func DeviceB(t testing.TB) Device {
	t.Helper()
	if os.Getenv("RXE_TWO_HOST") != "1" {
		Missing(t, "two-host mode (RXE_TWO_HOST=1: soft-roce/vm-run.sh --two-host)")
	}
	d := deviceFromEnv(t, "RXE_DEV_B", "RXE_HOST_B")
	if d.Netdev == "" {
		d.Netdev = "veth1"
	}
	return d
}

// Addr is host:port on the device's address.
func (d Device) Addr(port int) string { return fmt.Sprintf("%s:%d", d.Host, port) }

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

// WaitFor polls cond every few milliseconds until it holds or limit passes,
// then fails the test naming what it waited for and describe()'s state (when
// describe is not nil). limit bounds the wait; it is never asserted as a
// duration.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			state := ""
			if describe != nil {
				state = ": " + describe()
			}
			t.Fatalf("gave up after %v waiting for %s%s", limit, what, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
