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
// once, 1000 times (100 in -short mode and in the dispatcher polling
// mode); each time one session is left and
// every message arrives exactly once, in order (msgrsuite.RaceOnce).
func TestConnectionRace(t *testing.T) {
	dev, gid := device(t, "RXE_DEV_A")
	iters := 1000
	if testing.Short() || pollingMode() == "dispatcher" {
		// The race is resolved by the messenger, above the stack: CI's
		// second pass, in the dispatcher polling mode, checks that mode
		// with a tenth of the races (each costs two stack starts, about
		// a second under emulation).
		iters = 100
	}
	newCfg := func() *config.Config { // called by two lanes at once
		cfg := msgrsuite.Config("rdma")
		small(cfg, dev, gid)
		// two messengers per race, a thousand races, 4-byte messages:
		// small pools of small chunks keep each start's memory
		// registration (page pinning, slow under emulation) cheap
		cfg.RDMABufferSize = 4 << 10
		cfg.RDMASendBuffers, cfg.RDMAReceiveBuffers, cfg.RDMAReceiveQueueLen = 32, 64, 32
		// one worker: a stack start and stop is mostly its CQs' creation
		// and destruction (two per worker), measured in the VM
		cfg.OpThreads = 1
		// faults and worse only: the emulated VM's time is not for
		// formatting every handshake step of two thousand messengers
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		return cfg
	}
	mode := newCfg().RDMAPollingMode
	start := time.Now()
	msgrsuite.ConnectionRace(t, newCfg, iters, 20)
	t.Logf("%d connection races over rdma (%s, %s polling) took %v", iters, dev, mode, time.Since(start))
}
