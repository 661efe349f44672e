package rdmasuite

import (
	"testing"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/tests/msgrsuite"
)

// TestMessengerSuiteCephXSecure runs the messenger suite over rdma with
// cephx required and every session in secure mode: the same msgr2 sessions,
// AES-GCM records carried by RDMA SENDs, and a reconnecting session
// authenticating again.
func TestMessengerSuiteCephXSecure(t *testing.T) {
	dev, gid := device(t, "RXE_DEV_A")
	auth := msgrsuite.CephXSecure(msgrsuite.SecureKeyring(t))
	msgrsuite.Tweak = func(cfg *config.Config) { small(cfg, dev, gid); auth(cfg) }
	msgrsuite.LargeMessageMiB = largeMiB()
	t.Cleanup(func() { msgrsuite.Tweak, msgrsuite.LargeMessageMiB = nil, 64 })
	repeatShort(t)
	msgrsuite.RunAuthenticated(t, "rdma")
}
