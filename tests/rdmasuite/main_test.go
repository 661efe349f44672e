package rdmasuite

import (
	"flag"
	"os"
	"testing"

	"github.com/asyncmsgr/asyncmsgr/tests/msgrsuite"
)

// The suite runs at the messenger suite's full sizes (ManyConnsInOrder with
// 100k messages over 8 connections, a 64 MiB LargeMessage), as CI runs it:
// in the Soft-RoCE VM (TCG, two-host mode) that costs about 2-3 minutes
// more than the short sizes. -test.short, or ASYNCMSGR_RDMASUITE_SHORT=1
// (soft-roce/vm-run.sh passes ASYNCMSGR_* variables into the VM), selects
// the short sizes instead: 10k messages and a largeShortMiB message.
//
// largeShortMiB is the LargeMessage size in short mode.
const largeShortMiB = 16

// largeMiB is the LargeMessage size this run uses.
func largeMiB() int {
	if testing.Short() {
		return largeShortMiB
	}
	return 64
}

// slowConsumerMiB is the SlowConsumer size of every run of the messenger
// suite but TestMessengerSuite's (64 MiB there): at 10 ms per message
// dispatched, the emulated VM's time goes on the sleeps, and the other runs
// (cephx secure, RDMA WRITE, two hosts) check the throttle's path, not
// again the sender's backpressure.
const slowConsumerMiB = 16

func TestMain(m *testing.M) {
	flag.Parse()
	msgrsuite.SlowConsumerMiB = slowConsumerMiB
	if os.Getenv("ASYNCMSGR_RDMASUITE_SHORT") != "" {
		_ = flag.Set("test.short", "true")
	}
	os.Exit(m.Run())
}
