package rdmafault

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

var childRoles = map[string]func(args []string) error{
	"ackserver": ackServer,
}

// ackServer is the child peer of TestPeerSIGKILL: an OSD-like stateful
// server on RXE_DEV_A that checks every payload and answers each with an
// application ack naming its incarnation. Args: bind address, incarnation.
// It prints "READY addr" once listening and exits when stdin closes.
func ackServer(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("ackserver wants bind addr and incarnation, got %q", args)
	}
	inc, err := strconv.ParseUint(args[1], 10, 32)
	if err != nil {
		return err
	}
	dev := rdmatest.Device{Name: os.Getenv(testenv.EnvDevA), Host: os.Getenv(testenv.EnvHostA)}
	dev.GIDIdx, err = strconv.Atoi(os.Getenv(testenv.EnvGIDIdx))
	if err != nil {
		return fmt.Errorf("RXE_GID_IDX: %w", err)
	}
	cfg := rdmatest.Config(dev)
	m, err := msgr.New(cfg, osdName(1))
	if err != nil {
		return err
	}
	m.SetPolicy(msgr.EntityTypeClient, msgr.StatefulServer())
	var (
		mu   sync.Mutex
		last = int64(-1)
		bad  error
	)
	m.AddDispatcherTail(&sink{onMsg: func(msg *msgr.Message) {
		id, err := checkPayload(msg.Front)
		mu.Lock()
		if err == nil && int64(id) <= last {
			err = fmt.Errorf("id %d after %d", id, last)
		}
		if err != nil && bad == nil {
			bad = err
			fmt.Printf("ERROR incarnation %d: %v\n", inc, err)
		}
		last = int64(id)
		mu.Unlock()
		ack := binary.LittleEndian.AppendUint32(nil, uint32(inc))
		ack = binary.LittleEndian.AppendUint64(ack, id)
		_ = msg.Conn.SendMessage(&msgr.Message{Type: typeAck, Front: ack})
	}})
	if err := m.Bind(args[0]); err != nil {
		return err
	}
	if err := m.Start(); err != nil {
		return err
	}
	fmt.Printf("READY %s\n", m.Addr())
	for range rdmatest.Commands() {
	}
	_ = m.Shutdown()
	return nil
}

// acks collects application acks: per incarnation, in arrival order.
type acks struct {
	mu    sync.Mutex
	byInc map[uint32][]uint64
	ids   map[uint64]bool
}

func (a *acks) take(m *msgr.Message) {
	if m.Type != typeAck || len(m.Front) != 12 {
		return
	}
	inc := binary.LittleEndian.Uint32(m.Front)
	id := binary.LittleEndian.Uint64(m.Front[4:])
	a.mu.Lock()
	a.byInc[inc] = append(a.byInc[inc], id)
	a.ids[id] = true
	a.mu.Unlock()
}

func (a *acks) distinct() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.ids)
}

func (a *acks) acked(id uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ids[id]
}

// TestPeerSIGKILL kills the peer process with SIGKILL while messages
// stream to it: the survivor's connection faults within the keepalive
// timeout, its lossless session reconnects once the peer is restarted on
// the same address, the restart is reported as a remote reset, and after
// the application resends what was never acknowledged every message is
// acknowledged, each incarnation of the peer having seen its messages
// exactly once and in order.
func TestPeerSIGKILL(t *testing.T) {
	devA := rdmatest.DeviceA(t)
	const total = 400
	const firstBatch = 250 // the most the first stream may send before the kill
	cfg := rdmatest.Config(devA)

	peer := rdmatest.StartChild(t, "ackserver", devA.Addr(0), "1")
	addr := peer.WaitLine("READY", 60*time.Second)
	t.Logf("peer 1 (pid %d) serving on %s", peer.Pid(), addr)

	got := &acks{byInc: map[uint32][]uint64{}, ids: map[uint64]bool{}}
	sk := &sink{onMsg: got.take}
	cli := newEndpoint(t, cfg, clientName(1), "", sk)
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, addr)
	require.NoError(t, err)
	// stream with a window of unacknowledged messages, so that the kill
	// lands while messages are in flight
	const window = 32
	var sent atomic.Uint64
	stopSend := make(chan struct{})
	senderDone := make(chan error, 1)
	go func() {
		for id := uint64(0); id < firstBatch; id++ {
			for id >= uint64(got.distinct())+window {
				select {
				case <-stopSend:
					senderDone <- nil
					return
				case <-time.After(time.Millisecond):
				}
			}
			select {
			case <-stopSend:
				senderDone <- nil
				return
			default:
			}
			if err := c.SendMessage(&msgr.Message{Type: typeData, Front: payload(id, sizeFor(id, 16, 8<<10))}); err != nil {
				senderDone <- err
				return
			}
			sent.Store(id + 1)
		}
		senderDone <- nil
	}()
	rdmatest.WaitFor(t, 60*time.Second, "50 acks with messages in flight", func() bool {
		n := uint64(got.distinct())
		return n >= 50 && sent.Load() > n
	}, func() string {
		return fmt.Sprintf("%d sent, %d acks, conn %v err %v, %s", sent.Load(), got.distinct(), c.Stats(), c.Err(), rdmaSummary(cli.rs))
	})

	// mid-stream: the peer dies without closing anything
	faultsBefore := c.Stats().Faults
	peer.Kill()
	close(stopSend)
	require.NoError(t, <-senderDone)
	sentAtKill := sent.Load()
	ackedAtKill := got.distinct()
	t.Logf("SIGKILLed peer 1 with %d of %d sent messages acknowledged", ackedAtKill, sentAtKill)
	require.Less(t, uint64(ackedAtKill), sentAtKill, "the kill did not land mid-stream")
	rdmatest.WaitFor(t, cfg.ConnectionIdleTimeout+2*time.Second, "the survivor's connection to fault (within the keepalive timeout, plus slack for the emulated VM)",
		func() bool { return c.Stats().Faults > faultsBefore },
		func() string {
			return fmt.Sprintf("conn %+v connected %v, %s", c.Stats(), c.IsConnected(), rdmaSummary(cli.rs))
		})
	t.Logf("survivor faulted: %v", c.Err())

	peer2 := rdmatest.StartChild(t, "ackserver", addr, "2")
	require.Equal(t, addr, peer2.WaitLine("READY", 60*time.Second))
	reconnectsBefore := c.Stats().Reconnects
	rdmatest.WaitFor(t, 60*time.Second, "the restarted peer to be reported as a remote reset", func() bool { return sk.remoteResetCount() == 1 },
		func() string { return fmt.Sprintf("conn %+v err %v, %s", c.Stats(), c.Err(), rdmaSummary(cli.rs)) })
	require.True(t, c.IsConnected() || c.Stats().Reconnects >= reconnectsBefore)

	// the application resends what was never acknowledged, then the rest
	resent := 0
	for id := uint64(0); id < total; id++ {
		if id < sentAtKill && got.acked(id) {
			continue
		}
		if id < sentAtKill {
			resent++
		}
		require.NoError(t, c.SendMessage(&msgr.Message{Type: typeData, Front: payload(id, sizeFor(id, 16, 8<<10))}))
	}
	rdmatest.WaitFor(t, 90*time.Second, "every message acknowledged", func() bool { return got.distinct() == total },
		func() string {
			return fmt.Sprintf("%d/%d acked, conn %+v err %v, %s", got.distinct(), total, c.Stats(), c.Err(), rdmaSummary(cli.rs))
		})

	got.mu.Lock()
	defer got.mu.Unlock()
	for inc, ids := range got.byInc {
		for i := 1; i < len(ids); i++ {
			require.Greater(t, ids[i], ids[i-1], "incarnation %d acked out of order or twice at %d: %v", inc, i, ids)
		}
	}
	require.Len(t, got.ids, total)
	require.Len(t, got.byInc, 2, "acks from both incarnations")
	require.Equal(t, uint64(0), got.byInc[1][0], "first incarnation started at message 0")
	require.Positive(t, resent)
	require.Equal(t, resent+total-int(sentAtKill), len(got.byInc[2]), "the restarted peer got exactly the resent and the new messages")
	t.Logf("peer 1 acked %d, peer 2 acked %d (%d resent after the remote reset); survivor stats %+v; rdma %s",
		len(got.byInc[1]), len(got.byInc[2]), resent, c.Stats(), rdmaSummary(cli.rs))
	require.NoError(t, peer2.Stop(20*time.Second))
}
