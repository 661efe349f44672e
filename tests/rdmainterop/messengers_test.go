package rdmainterop

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/asyncmsgr/asyncmsgr/tests/leakcheck"
	"github.com/asyncmsgr/asyncmsgr/tests/monclient"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

// The cephx tests between two asyncmsgr messengers over the rdma stack
// (no ceph-mon): Phase III with tickets, and the refusals.

// TestCephXAuthorizerOverRDMA is cephx Phase III over the rdma stack, in
// secure mode: a client gets an OSD ticket from an asyncmsgr monitor and
// with it opens a session with an OSD that does not know its key.
func TestCephXAuthorizerOverRDMA(t *testing.T) {
	dev := rdmatest.DeviceA(t)
	admin, err := cephx.NewSessionKey()
	require.NoError(t, err)
	svc, err := cephx.NewSessionKey()
	require.NoError(t, err)
	osdKey := "[osd.]\n\tkey = " + svc.String() + "\n"
	mon, monGot := cephxServer(t, dev, msgr.EntityName{Type: msgr.EntityTypeMon, Num: 0},
		"[client.admin]\n\tkey = "+admin.String()+"\n"+osdKey)
	osd, osdGot := cephxServer(t, dev, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 1}, osdKey)

	cli := cephxClient(t, dev, admin)
	for _, step := range []struct {
		name string
		peer uint8
		m    *msgr.Messenger
		got  chan *msgr.Message
	}{{"the monitor", msgr.EntityTypeMon, mon, monGot}, {"the osd, by ticket", msgr.EntityTypeOSD, osd, osdGot}} {
		c, err := cli.ConnectTo(step.peer, step.m.Addr().String())
		require.NoError(t, err, "step: connect to %s", step.name)
		require.NoError(t, c.SendMessage(&msgr.Message{Type: 9, Front: []byte(step.name)}))
		select {
		case m := <-step.got:
			require.Equal(t, step.name, string(m.Front))
		case <-time.After(30 * time.Second):
			t.Fatalf("step: %s: not delivered (client error %v)", step.name, c.Err())
		}
		if step.peer == msgr.EntityTypeMon {
			require.Equal(t, []uint8{msgr.EntityTypeOSD}, cli.ServiceTickets(), "step: the OSD ticket")
		}
	}
	require.Zero(t, osd.AuthRefusals())
}

// TestCephXRefusalsBetweenMessengersOverRDMA: an asyncmsgr server over the
// rdma stack that requires cephx (secure mode) refuses a wrong key, an
// unknown entity and auth none; it logs each refusal with the peer's
// address and the reason, dispatches nothing, and neither side
// keeps a connection, queue pair or goroutine. A client with the key then
// gets in. (Damaged secure records are tested over TCP, through a proxy, in
// msgr: the records are the same over both stacks.)
func TestCephXRefusalsBetweenMessengersOverRDMA(t *testing.T) {
	dev := rdmatest.DeviceA(t)
	admin, err := cephx.NewSessionKey()
	require.NoError(t, err)
	var log testenv.LogBuffer
	srv, got := cephxServer(t, dev, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 0}, "[client.admin]\n\tkey = "+admin.String()+"\n",
		msgr.WithLogger(log.Logger(msgr.DebugMsLevel(0))))

	srvWant := map[string]string{"wrong key": "did not prove its key (wrong key)", "unknown entity": "cephx: unknown entity client.bob",
		"auth none against cephx-only": "auth method 1 not allowed, and the peer gave up"}
	for _, rf := range monclient.Refusals() {
		t.Run(rf.Name, func(t *testing.T) {
			before := srv.AuthRefusals()
			monclient.Refused(t, rf, rdmatest.Config(dev), admin, msgr.EntityTypeOSD, srv.Addr().String(), got, srv)
			if w := srvWant[rf.Name]; w != "" {
				require.Contains(t, log.String(), w, "the server logs the reason")
				// The client's address: dev.Host on one host, the other
				// veth's in the two-host VM (CI), whose root netns holds both.
				require.Regexp(t, `peer=[0-9.]+:[0-9]+ `, log.String(), "and the peer's address")
				require.Greater(t, srv.AuthRefusals(), before, "and counts the refusal")
			}
		})
	}
	// A client with the key gets in on the same server.
	cli := cephxClient(t, dev, admin)
	c, err := cli.ConnectTo(msgr.EntityTypeOSD, srv.Addr().String())
	require.NoError(t, err)
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 78, Front: []byte("welcome")}))
	select {
	case m := <-got:
		require.Equal(t, "welcome", string(m.Front))
	case <-time.After(30 * time.Second):
		t.Fatalf("the right key was not let in: %v", c.Err())
	}
	// The queue-pair count the leak checks read is live.
	n, err := leakcheck.Counts(srv)
	require.NoError(t, err)
	require.NotZero(t, n.QPs, "the server's rdma stack counts the session's queue pair")
}

// cephxServer starts name over dev's rdma stack, requiring cephx in secure
// mode (ms_service_mode, and ms_mon_service_mode for a monitor) with
// keyring (a keyring file's text, written to a file of the test's) and
// opts; what it dispatches goes to the channel. It shuts down when the
// test ends.
func cephxServer(t *testing.T, dev rdmatest.Device, name msgr.EntityName, keyring string, opts ...msgr.Option) (*msgr.Messenger, chan *msgr.Message) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name.String()+".keyring")
	require.NoError(t, os.WriteFile(path, []byte(keyring), 0o600))
	cfg := rdmatest.Config(dev)
	cfg.Keyring = path
	cfg.AuthServiceRequired = "cephx"
	cfg.ServiceMode, cfg.MonServiceMode = "secure", "secure"
	m, err := msgr.New(cfg, name, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { m.Shutdown() })
	got := make(chan *msgr.Message, 4)
	m.AddDispatcherTail(&monclient.Catcher{Ch: got})
	require.NoError(t, m.Bind(dev.Host+":0"))
	require.NoError(t, m.Start())
	return m, got
}

// cephxClient starts a client over dev's rdma stack with key (no keyring)
// in secure mode (ms_client_mode, ms_mon_client_mode). It shuts down when
// the test ends.
func cephxClient(t *testing.T, dev rdmatest.Device, key cephx.Key) *msgr.Messenger {
	t.Helper()
	cfg := rdmatest.Config(dev)
	cfg.Keyring = filepath.Join(t.TempDir(), "none")
	cfg.Key = key.String()
	cfg.ClientMode, cfg.MonClientMode = "secure", "secure"
	cli, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: -1})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Shutdown() })
	require.NoError(t, cli.Start())
	return cli
}
