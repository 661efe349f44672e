package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The environment soft-roce/vm-run.sh (and soft-roce/vmexec) sets inside the
// VM, and a developer sets on a host with rxe: one name per fact.
const (
	EnvDevA    = "RXE_DEV_A"    // host A's RDMA device, e.g. rxe0
	EnvHostA   = "RXE_HOST_A"   // IPv4 address of its netdev, e.g. 10.77.0.1
	EnvDevB    = "RXE_DEV_B"    // host B's device in two-host mode (rxe1)
	EnvHostB   = "RXE_HOST_B"   // its address (10.77.0.2)
	EnvGIDIdx  = "RXE_GID_IDX"  // GID index of the RoCEv2 IPv4 GID on both
	EnvTwoHost = "RXE_TWO_HOST" // "1" in two-host mode
)

// Device is one rxe device and the IPv4 address of the netdev it sits on.
type Device struct {
	Name   string // RDMA device, e.g. "rxe0"
	Host   string // IPv4 address of its netdev, e.g. "10.77.0.1"
	GIDIdx int    // GID index of the RoCEv2 IPv4 GID
	Netdev string // the netdev under the device ("veth0"), from sysfs
}

// Addr is host:port on the device's address.
func (d Device) Addr(port int) string { return fmt.Sprintf("%s:%d", d.Host, port) }

// RequireRDMA returns host A's device (RXE_DEV_A on RXE_HOST_A; rxe0 on
// veth0, 10.77.0.1 in the VM), or applies Missing when there is none.
func RequireRDMA(t testing.TB) Device {
	t.Helper()
	d := deviceFromEnv(t, EnvDevA, EnvHostA)
	if d.Netdev == "" {
		d.Netdev = "veth0"
	}
	return d
}

// RequireTwoHost returns host A's and host B's devices in two-host mode
// (soft-roce/vm-run.sh --two-host), where traffic between them crosses the
// veth wire, or applies Missing outside it.
func RequireTwoHost(t testing.TB) (a, b Device) {
	t.Helper()
	a = RequireRDMA(t)
	if os.Getenv(EnvTwoHost) != "1" {
		Missing(t, "two-host mode (%s=1: soft-roce/vm-run.sh --two-host)", EnvTwoHost)
	}
	b = deviceFromEnv(t, EnvDevB, EnvHostB)
	if b.Netdev == "" {
		b.Netdev = "veth1"
	}
	return a, b
}

func deviceFromEnv(t testing.TB, devVar, hostVar string) Device {
	t.Helper()
	d := Device{Name: os.Getenv(devVar), Host: os.Getenv(hostVar)}
	if d.Name == "" || d.Host == "" {
		Missing(t, "RDMA device: %s/%s not set (run under soft-roce/vm-run.sh, or go test -exec soft-roce/vmexec)", devVar, hostVar)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/infiniband", d.Name)); err != nil {
		Missing(t, "RDMA device %s (%s=%s): %v", d.Name, devVar, d.Name, err)
	}
	gid := os.Getenv(EnvGIDIdx)
	if gid == "" {
		Missing(t, "%s not set", EnvGIDIdx)
	}
	n, err := strconv.Atoi(gid)
	if err != nil {
		t.Fatalf("%s=%q: %v", EnvGIDIdx, gid, err)
	}
	d.GIDIdx = n
	if ents, err := os.ReadDir(filepath.Join("/sys/class/infiniband", d.Name, "device/net")); err == nil && len(ents) > 0 {
		d.Netdev = ents[0].Name()
	} else if b, err := os.ReadFile(filepath.Join("/sys/class/infiniband", d.Name, "parent")); err == nil {
		d.Netdev = strings.TrimSpace(string(b))
	}
	return d
}
