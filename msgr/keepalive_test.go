package msgr_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// TestKeepaliveOneEnd: on an idle session with keepalives on at both ends
// only the end that initiated it sends KEEPALIVE2s (about one per
// interval), the other just answers them; an accepting end whose peer
// sends none (keepalives off there) sends its own, every second interval,
// and gets them answered.
func TestKeepaliveOneEnd(t *testing.T) {
	const interval = 100 * time.Millisecond
	const window = 1500 * time.Millisecond
	for _, tc := range []struct {
		name      string
		clientKA  time.Duration
		minClient uint64 // KEEPALIVE2s the client sends in the window, at least
		minServer uint64 // and the server, at least
		maxServer uint64 // and at most
	}{
		// (a late tick of the client, on a loaded host, may let the
		// server send one or two; sending every interval, it sent 15)
		{"both on", interval, 5, 0, 2},
		{"client off", 0, 0, 3, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := func(ka time.Duration) *config.Config {
				c := testConfig()
				c.KeepaliveInterval = ka
				c.ConnectionIdleTimeout = 10 * time.Second
				return c
			}
			srv := startMessenger(t, cfg(interval), osd1, true)
			cli := startMessenger(t, cfg(tc.clientKA), client2, false)
			c, err := cli.ConnectTo(msgr.EntityTypeOSD, srv.Addr().String())
			require.NoError(t, err)
			var s *msgr.Connection
			testenv.WaitFor(t, 10*time.Second, "the session at both ends", func() bool {
				if cs := srv.Connections(); len(cs) == 1 && cs[0].IsConnected() && c.IsConnected() {
					s = cs[0]
				}
				return s != nil
			}, func() string { return fmt.Sprintf("client error %v", c.Err()) })
			c0, s0 := c.Stats(), s.Stats()
			time.Sleep(window)
			c1, s1 := c.Stats(), s.Stats()
			sent, srvSent := c1.KeepalivesSent-c0.KeepalivesSent, s1.KeepalivesSent-s0.KeepalivesSent
			t.Logf("in %v: client sent %d keepalives (%d acks), server %d (%d acks)", window, sent,
				c1.KeepaliveAcks-c0.KeepaliveAcks, srvSent, s1.KeepaliveAcks-s0.KeepaliveAcks)
			require.GreaterOrEqual(t, sent, tc.minClient, "client keepalives")
			require.GreaterOrEqual(t, c1.KeepaliveAcks-c0.KeepaliveAcks+1, tc.minClient, "client keepalive acks")
			require.LessOrEqual(t, srvSent, tc.maxServer, "server keepalives")
			require.GreaterOrEqual(t, srvSent, tc.minServer, "server keepalives")
			require.GreaterOrEqual(t, s1.KeepaliveAcks-s0.KeepaliveAcks+1, tc.minServer, "server keepalive acks")
			if tc.clientKA == 0 {
				require.Zero(t, sent, "a client with keepalives off sent some")
			}
			require.True(t, c.IsConnected() && s.IsConnected())
		})
	}
}
