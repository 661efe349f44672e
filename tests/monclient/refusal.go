package monclient

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/asyncmsgr/asyncmsgr/tests/cephmon"
	"github.com/asyncmsgr/asyncmsgr/tests/leakcheck"
)

// Refusal is one client that must not get in to a server requiring cephx:
// how it is set up, given the key the server knows for client.admin, and
// what its connection's error says.
type Refusal struct {
	Name   string
	Client func(t *testing.T, cfg *config.Config, admin cephx.Key) []msgr.Option
	Want   string // in the client's error
}

// Refusals are the peers a cephx server refuses: a wrong key for
// client.admin, the right key under an unknown name (client.bob), and no
// key at all (auth none only).
func Refusals() []Refusal {
	noKeyring := func(t *testing.T, cfg *config.Config) {
		cfg.Keyring = filepath.Join(t.TempDir(), "none")
	}
	return []Refusal{
		{"wrong key", func(t *testing.T, cfg *config.Config, _ cephx.Key) []msgr.Option {
			noKeyring(t, cfg)
			k, err := cephx.NewSessionKey()
			require.NoError(t, err)
			cfg.Key = k.String()
			return nil
		}, "rejected our client.admin credentials"},
		{"unknown entity", func(t *testing.T, cfg *config.Config, admin cephx.Key) []msgr.Option {
			noKeyring(t, cfg)
			cfg.Key = admin.String()
			return []msgr.Option{msgr.WithAuthID("bob")}
		}, "rejected our client.bob credentials"},
		{"auth none against cephx-only", func(t *testing.T, cfg *config.Config, _ cephx.Key) []msgr.Option {
			noKeyring(t, cfg)
			return nil
		}, "no auth method left"},
	}
}

// Refused runs one refusal: a client made from cfg by rf connects to addr
// (a peer of type peer) and sends a message. Its connection must fail with
// msgr.ErrAuthRefused and rf.Want; nothing may reach got (the server's
// dispatcher when the server is ours; nil otherwise); and once the client
// gives up, neither it nor any of servers may keep a connection, queue pair
// or goroutine (tests/leakcheck). Failures name the step.
func Refused(t *testing.T, rf Refusal, cfg *config.Config, admin cephx.Key, peer uint8, addr string,
	got <-chan *msgr.Message, servers ...*msgr.Messenger) {
	t.Helper()
	cli, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: -1}, rf.Client(t, cfg, admin)...)
	require.NoError(t, err, "step: new messenger")
	defer cli.Shutdown()
	require.NoError(t, cli.Start(), "step: start")
	ms := append([]*msgr.Messenger{cli}, servers...)
	base := leakcheck.Take(t, ms...)
	c, err := cli.ConnectTo(peer, addr)
	require.NoError(t, err, "step: connect")
	_ = c.SendMessage(&msgr.Message{Type: 77, Front: []byte("must not arrive")})
	testenv.WaitFor(t, 30*time.Second, "step: the refusal", func() bool {
		return errors.Is(c.Err(), msgr.ErrAuthRefused)
	}, func() string { return fmt.Sprintf("client error %v", c.Err()) })
	require.ErrorContains(t, c.Err(), rf.Want, "step: the client's error")
	t.Logf("client: %v", c.Err())
	c.MarkDown() // a lossless client would try again after its backoff
	base.Settled(t, 30*time.Second, ms...)
	select {
	case m := <-got:
		t.Fatalf("step: nothing dispatched: a refused peer's message type %d arrived", m.Type)
	default:
	}
}

// AdminKey is client.admin's key in the keyring mon was made with.
func AdminKey(t *testing.T, mon *cephmon.Mon) cephx.Key {
	t.Helper()
	f, err := os.Open(mon.Keyring)
	require.NoError(t, err, "step: the monitor's keyring")
	defer f.Close()
	kr, err := cephx.ParseKeyring(f)
	require.NoError(t, err, "step: the monitor's keyring parses")
	k, err := kr.Lookup("client.admin")
	require.NoError(t, err, "step: client.admin in the monitor's keyring")
	return k
}

// MonRefusals runs every Refusal against the monitor mon (which requires
// cephx) with clients made from newConfig, as subtests "refused/<name>".
func MonRefusals(t *testing.T, mon *cephmon.Mon, newConfig func() *config.Config) {
	t.Helper()
	admin := AdminKey(t, mon)
	for _, rf := range Refusals() {
		t.Run("refused/"+rf.Name, func(t *testing.T) {
			Refused(t, rf, newConfig(), admin, msgr.EntityTypeMon, mon.Addr, nil)
		})
	}
}
