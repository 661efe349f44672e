package rdmasuite

import (
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/tests/msgrsuite"
)

// TestMessengerSuiteInjected runs the messenger suite's lossless groups over
// rdma under Ceph's fault injection (msgrsuite.InjectFaults): socket
// operations failing every few hundred, received messages held back. The
// many-connections stream is 3000 messages each way on each connection
// (TCG: about 30 s), 1000 in -short mode.
func TestMessengerSuiteInjected(t *testing.T) {
	dev, gid := device(t, "RXE_DEV_A")
	msgrsuite.Tweak = func(cfg *config.Config) { small(cfg, dev, gid) }
	msgrsuite.InjectedMessages = 3000
	t.Cleanup(func() { msgrsuite.Tweak, msgrsuite.InjectedMessages = nil, 10_000 })
	repeatShort(t)
	start := time.Now()
	msgrsuite.RunInjected(t, "rdma")
	t.Logf("injected messenger suite over rdma (%s) took %v", dev, time.Since(start))
}
