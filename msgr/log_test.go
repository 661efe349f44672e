package msgr_test

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// One logger per messenger: the messenger and the stack under it log
// through it; a peer's orderly close is an Info event, not a fault; a
// connection prints as its peer's address.
func TestWithLogger(t *testing.T) {
	var lines testenv.LogBuffer
	logger := lines.Logger(msgr.DebugMsLevel(5))
	cfg := testConfig()
	srv, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 1}, msgr.WithLogger(logger))
	require.NoError(t, err)
	defer srv.Shutdown()
	require.Nil(t, cfg.Logger, "the caller's Config is not changed")
	require.Same(t, logger, srv.Log())
	require.NoError(t, srv.Bind("127.0.0.1:0"))
	srv.SetPolicy(msgr.EntityTypeClient, msgr.StatelessServer())
	srv.AddDispatcherTail(&pong{})
	require.NoError(t, srv.Start())

	cli, err := msgr.New(testConfig(), msgr.EntityName{Type: msgr.EntityTypeClient, Num: 2})
	require.NoError(t, err)
	got := make(chan *msgr.Message, 1)
	cli.AddDispatcherTail(&catcher{ch: got})
	require.NoError(t, cli.Start())
	addr := srv.Addr().String()
	c, err := cli.ConnectTo(msgr.EntityTypeOSD, addr)
	require.NoError(t, err)
	require.Equal(t, addr, c.String(), "an outgoing connection prints as the address it dials")
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: []byte("x")}))
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no reply")
	}
	conns := srv.Connections()
	require.Len(t, conns, 1)
	host, _, err := net.SplitHostPort(conns[0].String())
	require.NoError(t, err, "an accepted connection prints as its peer's address: %q", conns[0].String())
	require.Equal(t, "127.0.0.1", host)

	require.NoError(t, cli.Shutdown())
	testenv.WaitFor(t, 10*time.Second, "the server to see the close", func() bool {
		return strings.Contains(lines.String(), "peer closed the connection")
	}, lines.String)
	out := lines.String()
	require.Contains(t, out, "msg=\"msgr: session ready\" conn="+conns[0].String(), "sessions at debug_ms 1")
	require.Contains(t, out, "msg=\"msgr: session state\"", "handshake steps at debug_ms 5")
	require.NotContains(t, out, "msgr: fault", "an orderly close is not a fault:\n%s", out)
}

func TestDebugMsLevel(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want slog.Level
	}{{0, slog.LevelWarn}, {1, slog.LevelInfo}, {4, slog.LevelInfo}, {5, slog.LevelDebug},
		{10, slog.LevelDebug - 4}, {20, slog.LevelDebug - 8}, {30, slog.LevelDebug - 8}} {
		require.Equal(t, tc.want, msgr.DebugMsLevel(tc.n), "debug_ms %d", tc.n)
	}
}
