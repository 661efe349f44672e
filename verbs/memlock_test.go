//go:build linux && cgo

package verbs

import (
	"runtime"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A real ENOMEM from ibv_reg_mr caused by RLIMIT_MEMLOCK: the test lowers
// the limit and drops CAP_IPC_LOCK from one locked OS thread (capabilities
// are per thread), registers 1 MiB from that thread, and lets the thread die.
func TestRegMRMemlockTooLow(t *testing.T) {
	e := newEnv(t)
	var old unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_MEMLOCK, &old))
	defer func() { require.NoError(t, unix.Setrlimit(unix.RLIMIT_MEMLOCK, &old)) }()

	type result struct {
		err error
		mr  *MR
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- result{err: err}
			return
		}
		data[unix.CAP_IPC_LOCK/32].Effective &^= 1 << (unix.CAP_IPC_LOCK % 32)
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- result{err: err}
			return
		}
		lim := unix.Rlimit{Cur: 64 << 10, Max: old.Max}
		if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
			done <- result{err: err}
			return
		}
		mr, err := e.pd.RegMR(e.buf, AccessLocalWrite)
		done <- result{err: err, mr: mr}
	}()
	r := <-done
	require.NoError(t, r.mr.Close()) // nil-safe if the registration failed as expected
	require.Error(t, r.err)
	require.ErrorIs(t, r.err, ErrMemlockTooLow)
	require.ErrorIs(t, r.err, syscall.ENOMEM)
	for _, want := range []string{"ibv_reg_mr", "RLIMIT_MEMLOCK is 65536 bytes", "ulimit -l unlimited", "memlock=-1", "limits.conf"} {
		require.Contains(t, r.err.Error(), want)
	}
	t.Log(r.err)
}
