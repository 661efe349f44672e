package msgrsuite

import (
	"testing"

	"github.com/asyncmsgr/asyncmsgr/internal/lockorder"
)

// TestPosixInjected runs the lossless groups again under Ceph's fault
// injection (InjectFaults).
func TestPosixInjected(t *testing.T) {
	lockorder.Enable()
	t.Cleanup(lockorder.Disable)
	RunInjected(t, "posix")
}
