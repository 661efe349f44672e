package rdmasuite

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs the suite in -short mode (ManyConnsInOrder with 10k instead
// of 100k messages) unless RDMASUITE_FULL is set: the Soft-RoCE VM is
// emulated, and the whole RDMA phase of CI must stay within its time budget.
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("RDMASUITE_FULL") == "" {
		_ = flag.Set("test.short", "true")
	}
	os.Exit(m.Run())
}
