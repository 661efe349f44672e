package rdmainterop

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/asyncmsgr/asyncmsgr/tests/monclient"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

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
