package rdmainterop

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

// TestCephXAuthorizerOverRDMA is cephx Phase III over the rdma stack, in
// secure mode: a client gets an OSD ticket from an asyncmsgr monitor and
// with it opens a session with an OSD that does not know its key.
func TestCephXAuthorizerOverRDMA(t *testing.T) {
	dev := rdmatest.DeviceA(t)
	admin, err := cephx.NewSessionKey()
	require.NoError(t, err)
	svc, err := cephx.NewSessionKey()
	require.NoError(t, err)
	dir := t.TempDir()
	server := func(name msgr.EntityName, keyring string) (*msgr.Messenger, chan *msgr.Message) {
		path := filepath.Join(dir, name.String()+".keyring")
		require.NoError(t, os.WriteFile(path, []byte(keyring), 0o600))
		cfg := rdmatest.Config(dev)
		cfg.Keyring = path
		cfg.AuthServiceRequired = "cephx"
		cfg.ServiceMode, cfg.MonServiceMode = "secure", "secure"
		m, err := msgr.New(cfg, name)
		require.NoError(t, err)
		t.Cleanup(func() { m.Shutdown() })
		got := make(chan *msgr.Message, 4)
		m.AddDispatcherTail(&catcher{ch: got})
		require.NoError(t, m.Bind(dev.Host+":0"))
		require.NoError(t, m.Start())
		return m, got
	}
	osdKey := "[osd.]\n\tkey = " + svc.String() + "\n"
	mon, monGot := server(msgr.EntityName{Type: msgr.EntityTypeMon, Num: 0},
		"[client.admin]\n\tkey = "+admin.String()+"\n"+osdKey)
	osd, osdGot := server(msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 1}, osdKey)

	cfg := rdmatest.Config(dev)
	cfg.Keyring = filepath.Join(dir, "none")
	cfg.Key = admin.String()
	cfg.ClientMode, cfg.MonClientMode = "secure", "secure"
	cli, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: -1})
	require.NoError(t, err)
	defer cli.Shutdown()
	require.NoError(t, cli.Start())
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
