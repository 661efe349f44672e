package msgr_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/tests/monclient"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/tests/cephmon"
)

const (
	cephMsgMonGetVersion      = 19 // CEPH_MSG_MON_GET_VERSION
	cephMsgMonGetVersionReply = 20 // CEPH_MSG_MON_GET_VERSION_REPLY
)

// TestInteropCephMon runs the messenger's client side against a real Ceph
// monitor: handshake (auth none), keepalive, and MMonGetVersion answered by
// MMonGetVersionReply.
func TestInteropCephMon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ceph-mon")
	}
	// A scratch ceph-mon on loopback, leader of monmap epoch 1;
	// ASYNCMSGR_CEPH_MON=host:port uses a running one.
	addr := cephmon.Start(t, cephmon.Options{Env: "ASYNCMSGR_CEPH_MON"}).Addr
	cfg := testConfig()
	cfg.KeepaliveInterval = 100 * time.Millisecond
	cli, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: -1})
	require.NoError(t, err)
	defer cli.Shutdown()
	got := make(chan *msgr.Message, 4)
	cli.AddDispatcherTail(&catcher{ch: got})
	require.NoError(t, cli.Start())
	c, err := cli.ConnectTo(msgr.EntityTypeMon, addr)
	require.NoError(t, err)

	front := binary.LittleEndian.AppendUint64(nil, 4242) // handle
	front = binary.LittleEndian.AppendUint32(front, uint32(len("osdmap")))
	front = append(front, "osdmap"...)
	require.NoError(t, c.SendMessage(&msgr.Message{Type: cephMsgMonGetVersion, Version: 1, Tid: 1, Front: front}))
	var r *msgr.Message
	select {
	case r = <-got:
	case <-time.After(30 * time.Second):
		t.Fatalf("no reply from ceph-mon (connection error: %v)", c.Err())
	}
	require.Equal(t, uint16(cephMsgMonGetVersionReply), r.Type)
	require.GreaterOrEqual(t, len(r.Front), 24)
	require.Equal(t, uint64(4242), binary.LittleEndian.Uint64(r.Front))
	require.Equal(t, msgr.EntityName{Type: msgr.EntityTypeMon, Num: 0}, r.Peer)
	require.True(t, c.IsLossy(), "a monitor makes client sessions lossy")
	deadline := time.Now().Add(20 * time.Second)
	for c.Stats().KeepaliveAcks < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no KEEPALIVE2_ACK from ceph-mon: %+v (connection error: %v)", c.Stats(), c.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// (a monitor that has just started may drop connections until it has
	// formed its quorum; the session is retried, so faults are not checked)
	require.True(t, c.IsConnected(), "connection error: %v", c.Err())
	t.Logf("ceph-mon %s answered: osdmap version %d; stats %+v", addr, binary.LittleEndian.Uint64(r.Front[8:]), c.Stats())
}

const cephMsgMonGetMap = 5 // CEPH_MSG_MON_GET_MAP

// TestInteropCephClient runs the messenger's server side against a real Ceph
// client: `rados` (librados) dials us as if we were its monitor, completes
// the msgr2 handshake (auth none) and sends MMonGetMap, which must reach
// our dispatcher.
func TestInteropCephClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the rados tool")
	}
	cephmon.Require(t, cephmon.Tool{Name: "rados", Package: "ceph-common"})
	srv, err := msgr.New(testConfig(), msgr.EntityName{Type: msgr.EntityTypeMon, Num: 0}, msgr.WithNonce(0))
	require.NoError(t, err)
	defer srv.Shutdown()
	got := make(chan *msgr.Message, 8)
	srv.AddDispatcherTail(&catcher{ch: got})
	srv.SetPolicy(msgr.EntityTypeClient, msgr.StatelessServer())
	require.NoError(t, srv.Bind("127.0.0.1:0"))
	require.NoError(t, srv.Start())

	dir := t.TempDir()
	conf := filepath.Join(dir, "ceph.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(`[global]
mon host = v2:%s
auth cluster required = none
auth service required = none
auth client required = none
client mount timeout = 5
log file = %s/client.log
`, srv.Addr(), dir)), 0o600))
	cmd := exec.Command("rados", "-c", conf, "lspools")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	select {
	case m := <-got:
		require.Equal(t, uint16(cephMsgMonGetMap), m.Type)
		require.Equal(t, msgr.EntityTypeClient, m.Peer.Type)
		require.True(t, m.Conn.IsLossy(), "our client policy is lossy")
		t.Logf("rados sent message type %d from %v over a %v session", m.Type, m.Peer, m.Conn.PeerAddrs())
	case <-time.After(30 * time.Second):
		t.Fatal("no message from rados")
	}
}

// TestInteropCephMonCephX authenticates the messenger as client.admin with a
// real Ceph 16.2 monitor that requires cephx, in crc and in secure mode, and
// has MMonGetVersion answered and an MMonCommand ("status") answered with
// rc 0. The step that failed is named. Then the monitor refuses a wrong
// key, an unknown entity and auth none, and our client says why and keeps
// nothing.
func TestInteropCephMonCephX(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ceph-mon")
	}
	mon := cephmon.Start(t, cephmon.Options{CephX: true})
	monclient.CephXSessions(t, mon, testConfig, 99, 3*time.Second)
	monclient.MonRefusals(t, mon, testConfig)
}
