package msgr_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/msgrhook"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/asyncmsgr/asyncmsgr/tests/leakcheck"
)

// phase3 is a monitor (mon.0, knowing client.admin and the OSD service
// secret), a service (osd.1, knowing only its service secret: it can let a
// client in only by a ticket) and a client holding client.admin's key.
type phase3 struct {
	mon, osd, cli *msgr.Messenger
	osdLog        *testenv.LogBuffer
	monGot        chan *msgr.Message
	osdGot        chan *msgr.Message
}

func newPhase3(t *testing.T, mode string, monOSDSecret, osdSecret cephx.Key) *phase3 {
	t.Helper()
	admin := newKey(t)
	p := &phase3{osdLog: &testenv.LogBuffer{}, monGot: make(chan *msgr.Message, 4), osdGot: make(chan *msgr.Message, 4)}
	server := func(name msgr.EntityName, keys map[string]cephx.Key, got chan *msgr.Message, opts ...msgr.Option) *msgr.Messenger {
		cfg := testConfig()
		cfg.Keyring = keyringFile(t, keys)
		cfg.AuthServiceRequired = "cephx"
		cfg.ServiceMode, cfg.MonServiceMode = mode, mode
		m, err := msgr.New(cfg, name, opts...)
		require.NoError(t, err)
		t.Cleanup(func() { m.Shutdown() })
		m.AddDispatcherTail(&catcher{ch: got})
		require.NoError(t, m.Bind("127.0.0.1:0"))
		require.NoError(t, m.Start())
		return m
	}
	p.mon = server(msgr.EntityName{Type: msgr.EntityTypeMon, Num: 0},
		map[string]cephx.Key{"client.admin": admin, "osd.": monOSDSecret}, p.monGot)
	p.osd = server(msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 1},
		map[string]cephx.Key{"osd.": osdSecret}, p.osdGot, msgr.WithLogger(p.osdLog.Logger(msgr.DebugMsLevel(0))))
	ccfg := testConfig()
	ccfg.Keyring = filepath.Join(t.TempDir(), "none")
	ccfg.Key = admin.String()
	ccfg.ClientMode, ccfg.MonClientMode = mode, mode
	cli, err := msgr.New(ccfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: -1})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Shutdown() })
	require.NoError(t, cli.Start())
	p.cli = cli
	return p
}

// sendTo sends one message to the peer at addr and waits for it on got.
func sendTo(t *testing.T, cli *msgr.Messenger, peer uint8, addr string, got <-chan *msgr.Message, front string) *msgr.Message {
	t.Helper()
	c, err := cli.ConnectTo(peer, addr)
	require.NoError(t, err)
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 9, Front: []byte(front)}))
	select {
	case m := <-got:
		require.Equal(t, front, string(m.Front))
		return m
	case <-time.After(20 * time.Second):
		t.Fatalf("%q not delivered to %s (client error %v)", front, addr, c.Err())
		return nil
	}
}

// TestCephXAuthorizer is cephx Phase III between messengers: the client
// authenticates with the monitor and receives an OSD ticket; with it, and
// the service's challenge, it opens a session with an OSD that does not
// know client.admin's key, in crc and in secure mode, and again when the
// lossless session reconnects after a cut.
func TestCephXAuthorizer(t *testing.T) {
	for _, mode := range []string{"crc", "secure"} {
		t.Run(mode, func(t *testing.T) {
			svc := newKey(t)
			p := newPhase3(t, mode, svc, svc)
			require.Empty(t, p.cli.ServiceTickets())
			sendTo(t, p.cli, msgr.EntityTypeMon, p.mon.Addr().String(), p.monGot, "to the monitor")
			require.Equal(t, []uint8{msgr.EntityTypeOSD}, p.cli.ServiceTickets(),
				"the monitor issues tickets for the services whose secret it has")
			m := sendTo(t, p.cli, msgr.EntityTypeOSD, p.osd.Addr().String(), p.osdGot, "to the osd")
			require.Equal(t, msgr.EntityTypeClient, m.Peer.Type)

			// A lossless session that loses its socket reconnects and
			// authenticates again by the ticket.
			c, err := p.cli.ConnectTo(msgr.EntityTypeOSD, p.osd.Addr().String())
			require.NoError(t, err)
			testenv.WaitFor(t, 10*time.Second, "the socket cut", func() bool {
				msgrhook.FaultConn(c)
				time.Sleep(10 * time.Millisecond)
				return c.Stats().Faults > 0
			}, func() string { return fmt.Sprintf("%+v", c.Stats()) })
			sendTo(t, p.cli, msgr.EntityTypeOSD, p.osd.Addr().String(), p.osdGot, "after the reconnect")
			require.NotZero(t, c.Stats().Reconnects)
			require.Zero(t, p.osd.AuthRefusals())
		})
	}
}

// TestCephXAuthorizerRefused: a service refuses an authorizer whose ticket
// was sealed with another secret than its own (a forged or foreign
// ticket), and a client with no ticket that it cannot verify by key; it
// logs why, dispatches nothing, and nothing is left behind.
func TestCephXAuthorizerRefused(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		toMon      bool // get a ticket first
	}{
		{"ticket sealed with another secret", "does not open with our secret", true},
		{"no ticket", "cephx: unknown entity client.admin", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPhase3(t, "secure", newKey(t), newKey(t))
			if tc.toMon {
				sendTo(t, p.cli, msgr.EntityTypeMon, p.mon.Addr().String(), p.monGot, "to the monitor")
				require.NotEmpty(t, p.cli.ServiceTickets())
			}
			base := leakcheck.Take(t, p.osd, p.cli)
			c := requireRefusedBy(t, p.cli, p.osd, "rejected our client.admin credentials")
			testenv.WaitFor(t, 10*time.Second, "the service's log of the refusal", func() bool {
				return p.osd.AuthRefusals() > 0
			}, p.osdLog.String)
			require.Contains(t, logLine(p.osdLog.String(), "msgr: refused peer"), tc.want)
			c.MarkDown()
			base.Settled(t, 10*time.Second, p.osd, p.cli)
			select {
			case m := <-p.osdGot:
				t.Fatalf("a refused peer's message was dispatched: %q", m.Front)
			default:
			}
		})
	}
}
