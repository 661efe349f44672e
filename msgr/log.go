package msgr

import (
	"context"
	"errors"
	"io"
	"log/slog"
)

// Ceph's debug_ms levels on slog's. A handler's level chosen with
// DebugMsLevel(n) shows what Ceph's "debug ms = n" would, roughly:
//
//	debug_ms 0  slog.LevelWarn     errors and faults (a session lost for a
//	                               cause other than the peer closing it)
//	debug_ms 1  slog.LevelInfo     sessions ready, closed by the peer
//	debug_ms 5  slog.LevelDebug    every session state change (connecting,
//	                               each handshake step, backoff, standby,
//	                               closed)
//	debug_ms 10 slog.LevelDebug-4  per-frame detail (reserved: msgr logs
//	debug_ms 20 slog.LevelDebug-8  nothing per message, to keep the hot
//	                               path free of logging)
const (
	LevelMs0  = slog.LevelWarn
	LevelMs1  = slog.LevelInfo
	LevelMs5  = slog.LevelDebug
	LevelMs10 = slog.LevelDebug - 4
	LevelMs20 = slog.LevelDebug - 8
)

// DebugMsLevel is the slog level that shows what Ceph's debug_ms = n shows
// (for a handler's HandlerOptions.Level).
func DebugMsLevel(n int) slog.Level {
	switch {
	case n <= 0:
		return LevelMs0
	case n < 5:
		return LevelMs1
	case n < 10:
		return LevelMs5
	case n < 20:
		return LevelMs10
	}
	return LevelMs20
}

// logFaultLocked reports a lost socket: a fault, unless the peer closed
// it in an orderly way (EOF), which is an ordinary event.
func (c *Connection) logFaultLocked(err error) {
	if errors.Is(err, io.EOF) {
		c.msgr.log.Log(context.Background(), LevelMs1, "msgr: peer closed the connection", "conn", c, "state", c.state)
		return
	}
	c.msgr.log.Log(context.Background(), LevelMs0, "msgr: fault", "conn", c, "state", c.state, "err", err)
}

// logStateLocked traces a session state change (debug_ms 5), and a session
// becoming ready (debug_ms 1).
func (c *Connection) logStateLocked(s connState) {
	ctx := context.Background()
	if s == stReady {
		c.msgr.log.Log(ctx, LevelMs1, "msgr: session ready", "conn", c, "peer", c.peerName,
			"lossy", c.policy.Lossy, "outgoing", c.outgoing)
		return
	}
	if c.msgr.log.Enabled(ctx, LevelMs5) {
		c.msgr.log.Log(ctx, LevelMs5, "msgr: session state", "conn", c, "state", s)
	}
}
