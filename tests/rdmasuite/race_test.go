package rdmasuite

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/tests/msgrsuite"
)

// TestConnectionRace is msgr's TestConnectionRace over rdma: two
// LosslessPeer messengers dial each other at the same moment and send at
// once, 1000 times (100 in -short mode); each time one session is left and
// every message arrives exactly once, in order (msgrsuite.RaceOnce).
func TestConnectionRace(t *testing.T) {
	dev, gid := device(t, "RXE_DEV_A")
	iters := 1000
	if testing.Short() {
		iters = 100
	}
	var mode string
	newCfg := func() *config.Config {
		cfg := msgrsuite.Config("rdma")
		small(cfg, dev, gid)
		// two messengers per race, a thousand races: small pools keep the
		// memory registrations of each start cheap
		cfg.RDMASendBuffers, cfg.RDMAReceiveBuffers = 64, 256
		// faults and worse only: the emulated VM's time is not for
		// formatting every handshake step of two thousand messengers
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		mode = cfg.RDMAPollingMode
		return cfg
	}
	start := time.Now()
	msgrsuite.ConnectionRace(t, newCfg, iters, 20)
	t.Logf("%d connection races over rdma (%s, %s polling) took %v", iters, dev, mode, time.Since(start))
}
