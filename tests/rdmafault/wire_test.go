package rdmafault

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

// TestLinkPull cuts the veth wire between host A (server) and host B
// (client) with `ip link set veth0 down` in the middle of a lossless
// stream, sends more while it is down (none of which may arrive), then
// brings the link up: the stream resumes and every message arrives exactly
// once, in order, intact.
func TestLinkPull(t *testing.T) {
	devA, devB := rdmatest.DeviceA(t), rdmatest.DeviceB(t)
	const before, during = 100, 100
	got := &inOrder{}
	srv := newEndpoint(t, rdmatest.Config(devA), osdName(1), devA.Addr(0), &sink{onMsg: got.take})
	cli := newEndpoint(t, rdmatest.Config(devB), clientName(1), "", &sink{onMsg: func(*msgr.Message) {}})
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	state := func() string {
		return fmt.Sprintf("server got %d, problems %v; client conn %+v connected %v err %v; client rdma %s; server rdma %s",
			got.count(), got.problems(), c.Stats(), c.IsConnected(), c.Err(), rdmaSummary(cli.rs), rdmaSummary(srv.rs))
	}
	for id := uint64(0); id < before; id++ {
		require.NoError(t, c.SendMessage(&msgr.Message{Type: typeData, Front: payload(id, sizeFor(id, 16, 16<<10))}))
	}
	rdmatest.WaitFor(t, 60*time.Second, "the first messages", func() bool { return got.count() == before }, state)

	up := rdmatest.LinkDown(t, devA.Netdev)
	for id := uint64(before); id < before+during; id++ {
		require.NoError(t, c.SendMessage(&msgr.Message{Type: typeData, Front: payload(id, sizeFor(id, 16, 16<<10))}))
	}
	// hold the wire down long enough for the keepalive timeout to fire
	downUntil := time.Now().Add(cli.cfg.ConnectionIdleTimeout + time.Second)
	for time.Now().Before(downUntil) {
		require.Equal(t, uint64(before), got.count(), "a message crossed a pulled link: the traffic does not use the veth wire")
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("link down: %s", state())
	up()
	rdmatest.WaitFor(t, 90*time.Second, "every message after the link came back", func() bool { return got.count() == before+during }, state)
	require.Empty(t, got.problems())
	t.Logf("after the link came back: %s", state())
}

var netemDropped = regexp.MustCompile(`dropped (\d+)`)

// TestNetemLossDelay runs a lossless echo stream between host B (client) and
// host A (server) while tc netem drops 1% of the packets leaving veth0 and
// delays them by 5 ms: RC retransmission (or the messenger's reconnect) must
// deliver every message and every echo exactly once, in order, intact.
func TestNetemLossDelay(t *testing.T) {
	devA, devB := rdmatest.DeviceA(t), rdmatest.DeviceB(t)
	const total = 200
	rdmatest.Netem(t, devA.Netdev, "loss", "1%", "delay", "5ms")
	atSrv := &inOrder{echo: true}
	srv := newEndpoint(t, rdmatest.Config(devA), osdName(1), devA.Addr(0), &sink{onMsg: atSrv.take})
	echoes := &inOrder{}
	cli := newEndpoint(t, rdmatest.Config(devB), clientName(1), "", &sink{onMsg: echoes.take})
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	for id := uint64(0); id < total; id++ {
		require.NoError(t, c.SendMessage(&msgr.Message{Type: typeData, Front: payload(id, sizeFor(id, 1, 8<<10))}))
	}
	rdmatest.WaitFor(t, 150*time.Second, "every message and its echo through netem", func() bool {
		return atSrv.count() == total && echoes.count() == total
	}, func() string {
		return fmt.Sprintf("server got %d (%v), client got %d echoes (%v); conn %+v err %v; client rdma %s; server rdma %s",
			atSrv.count(), atSrv.problems(), echoes.count(), echoes.problems(), c.Stats(), c.Err(), rdmaSummary(cli.rs), rdmaSummary(srv.rs))
	})
	require.Empty(t, atSrv.problems())
	require.Empty(t, echoes.problems())
	stats := rdmatest.NetemStats(t, devA.Netdev)
	t.Logf("netem on %s: %s", devA.Netdev, stats)
	m := netemDropped.FindStringSubmatch(stats)
	require.NotNil(t, m, "no drop count in tc output")
	n, _ := strconv.Atoi(m[1])
	require.Positive(t, n, "netem dropped nothing: the fault was not injected on the path")
	t.Logf("conn %+v; client rdma %s; server rdma %s", c.Stats(), rdmaSummary(cli.rs), rdmaSummary(srv.rs))
}
