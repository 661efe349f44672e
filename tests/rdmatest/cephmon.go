package rdmatest

import (
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/tests/cephmon"
)

// CephMon is a scratch ceph-mon 16.2 (tests/cephmon) speaking msgr2 over
// async+rdma.
type CephMon = cephmon.Mon

// CephMonEnv names the environment variable that, set to ip:port, makes
// StartCephMon use a monitor that is already running (its v2 address).
const CephMonEnv = "RDMAINTEROP_CEPH_MON"

// StartCephMon starts a fresh monitor with cephmon.Start on device d's
// address and RDMA device (ms type = async+rdma, rdma buffer counts cut down
// for the emulated VM) and waits, bounded by limit, until it is leader of
// monmap epoch 1; with CephMonEnv set it returns that monitor instead. It is
// killed at cleanup, with its log tail logged when the test failed. Missing
// Ceph programs skip or fail per cephmon.Missing.
func StartCephMon(t testing.TB, d Device, limit time.Duration) *CephMon {
	t.Helper()
	return cephmon.Start(t, cephmon.Options{
		Host:  d.Host,
		RDMA:  &cephmon.RDMA{Device: d.Name, GIDIdx: d.GIDIdx},
		Limit: limit,
		Env:   CephMonEnv,
	})
}
