//go:build linux && cgo

package verbs

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	require.NoError(t, err, "%s: %s", strings.Join(args, " "), out)
}

// A port going down and up is reported by PORT_ERR / PORT_ACTIVE async events
// and by PortActive (ErrPortDown). It uses its own rxe device on its own veth
// pair, so the other tests' device is untouched.
func TestPortDownUpEvents(t *testing.T) {
	testDevice(t)
	testenv.RequireRoot(t, "create a veth pair and an rxe device")
	const dev, nd, peer = "rxeporttest", "vporttest0", "vporttest1"
	run(t, "ip", "link", "add", nd, "type", "veth", "peer", "name", peer)
	defer exec.Command("ip", "link", "del", nd).Run()
	run(t, "ip", "addr", "add", "10.79.0.1/24", "dev", nd)
	run(t, "ip", "link", "set", peer, "up")
	run(t, "ip", "link", "set", nd, "up")
	run(t, "rdma", "link", "add", dev, "type", "rxe", "netdev", nd)
	defer exec.Command("rdma", "link", "delete", dev).Run()

	ctx, err := Open(dev)
	require.NoError(t, err)
	defer func() { require.NoError(t, ctx.Close()) }()
	deadline := time.Now().Add(10 * time.Second)
	for ctx.PortActive(1) != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, ctx.PortActive(1))
	drainAsync(ctx)

	run(t, "ip", "link", "set", nd, "down")
	ev := waitAsync(t, ctx, EventPortErr)
	require.Equal(t, 1, ev.Port)
	err = ctx.PortActive(1)
	require.ErrorIs(t, err, ErrPortDown)
	require.ErrorIs(t, err, syscall.ENETDOWN)
	var ve *Error
	require.True(t, errors.As(err, &ve))
	require.Contains(t, err.Error(), dev+" port 1")

	run(t, "ip", "link", "set", nd, "up")
	ev = waitAsync(t, ctx, EventPortActive)
	require.Equal(t, 1, ev.Port)
	require.NoError(t, ctx.PortActive(1))
}

func drainAsync(ctx *Context) {
	for {
		if _, err := ctx.GetAsyncEvent(); err != nil {
			return
		}
	}
}
