package rdmainterop

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/tests/cephmon"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

// TestCephMonCephXOverRDMA authenticates the messenger over the rdma stack
// as client.admin with a real ceph-mon 16.2 that runs async+rdma and
// requires cephx, in crc mode and in secure mode (AES-GCM records over RDMA
// SENDs), and has MMonGetVersion answered; the step that failed is named.
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
			front := binary.LittleEndian.AppendUint64(nil, 7)
			front = binary.LittleEndian.AppendUint32(front, uint32(len("osdmap")))
			front = append(front, "osdmap"...)
			// A monitor that has just formed its quorum may close
			// connections at AUTH_REQUEST ("EBUSY"); Ceph's clients retry.
			var r *msgr.Message
			for attempt := 1; r == nil; attempt++ {
				c, err := cli.ConnectTo(msgr.EntityTypeMon, mon.Addr)
				require.NoError(t, err, "step: connect")
				require.NoError(t, c.SendMessage(&msgr.Message{Type: cephMsgMonGetVersion, Version: 1, Tid: 1, Front: front}))
				select {
				case r = <-got:
				case <-time.After(10 * time.Second):
					require.Less(t, attempt, 10, "step: rdma handshake, cephx session and MMonGetVersion (connection error: %v)", c.Err())
					c.MarkDown()
				}
			}
			require.Equal(t, uint16(cephMsgMonGetVersionReply), r.Type, "step: MMonGetVersionReply")
			require.Equal(t, uint64(7), binary.LittleEndian.Uint64(r.Front))
		})
	}
}
