package monclient

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/tests/cephmon"
)

// Catcher hands every message it is dispatched to Ch, dropping what Ch has
// no room for.
type Catcher struct {
	msgr.BaseDispatcher
	Ch chan *msgr.Message
}

// MsDispatch implements msgr.Dispatcher.
func (c *Catcher) MsDispatch(m *msgr.Message) bool {
	select {
	case c.Ch <- m:
	default:
	}
	return true
}

// CephXSessions authenticates a client made from newConfig (with mon's
// keyring) with the monitor mon, which requires cephx, in crc mode and in
// secure mode (subtests "crc" and "secure"), and has MMonGetVersion (handle)
// and an MMonCommand status (tid handle+1) answered, perTry each try, by
// GetVersion and Status. The step that failed is named.
func CephXSessions(t *testing.T, mon *cephmon.Mon, newConfig func() *config.Config, handle uint64, perTry time.Duration) {
	t.Helper()
	for _, mode := range []string{"crc", "secure"} {
		t.Run(mode, func(t *testing.T) {
			cfg := newConfig()
			cfg.Keyring = mon.Keyring
			cfg.MonClientMode = mode
			cli, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: -1})
			require.NoError(t, err, "step: new messenger")
			defer cli.Shutdown()
			got := make(chan *msgr.Message, 4)
			cli.AddDispatcherTail(&Catcher{Ch: got})
			require.NoError(t, cli.Start(), "step: start")
			GetVersion(t, cli, got, mon.Addr, handle, perTry)
			Status(t, cli, got, mon, handle+1, perTry)
		})
	}
}
