package rdmainterop

import (
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/tests/monclient"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/tests/cephmon"
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
	for _, mode := range []string{"crc", "secure"} {
		t.Run(mode, func(t *testing.T) {
			cfg := rdmatest.Config(dev)
			cfg.Keyring = mon.Keyring
			cfg.MonClientMode = mode
			cli, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: -1})
			require.NoError(t, err, "step: new messenger")
			defer cli.Shutdown()
			got := make(chan *msgr.Message, 4)
			cli.AddDispatcherTail(&catcher{ch: got})
			require.NoError(t, cli.Start(), "step: start")
			monclient.GetVersion(t, cli, got, mon.Addr, 7, 10*time.Second)
			monclient.Status(t, cli, got, mon, 8, 10*time.Second)
		})
	}
	// The monitor refuses peers that fail cephx; our client says why and
	// keeps no connection, queue pair or goroutine.
	monclient.MonRefusals(t, mon, func() *config.Config { return rdmatest.Config(dev) })
}
