package rdmainterop

import (
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/tests/cephmon"
	"github.com/asyncmsgr/asyncmsgr/tests/monclient"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

// TestCephMonCephXOverRDMA authenticates the messenger over the rdma stack
// as client.admin with a real ceph-mon 16.2 that runs async+rdma and
// requires cephx, in crc mode and in secure mode (AES-GCM records over RDMA
// SENDs), and has MMonGetVersion answered and an MMonCommand ("status")
// answered with rc 0; the step that failed is named. Then it refuses a
// wrong key, an unknown entity and auth none.
func TestCephMonCephXOverRDMA(t *testing.T) {
	dev := rdmatest.DeviceA(t)
	mon := cephmon.Start(t, cephmon.Options{Host: dev.Host, CephX: true, Limit: 120 * time.Second,
		RDMA: &cephmon.RDMA{Device: dev.Name, GIDIdx: dev.GIDIdx}})
	newConfig := func() *config.Config { return rdmatest.Config(dev) }
	monclient.CephXSessions(t, mon, newConfig, 7, 10*time.Second)
	// The monitor refuses peers that fail cephx; our client says why and
	// keeps no connection, queue pair or goroutine.
	monclient.MonRefusals(t, mon, newConfig)
}
