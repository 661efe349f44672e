package rdmainterop

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/rdmastack"
	"github.com/asyncmsgr/asyncmsgr/tests/monclient"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

// TestCephMonOverRDMA starts a ceph-mon 16.2 on rxe0 with ms type =
// async+rdma and walks asyncmsgr's client through every step of a session
// with it over the rdma stack, failing with the name of the first step that
// did not happen: the RDMA handshake (QP meta over the TCP side channel),
// the msgr2 banner, HELLO, AUTH_DONE (auth none), SERVER_IDENT, a
// KEEPALIVE2 answered by KEEPALIVE2_ACK, and an MMonGetVersion request
// answered by its reply. It runs from host A's device (same device as the
// monitor) and, in two-host mode, from host B's (across the veth wire).
// RDMAINTEROP_CEPH_MON=ip:port uses a monitor that is already running.
func TestCephMonOverRDMA(t *testing.T) {
	devA := rdmatest.DeviceA(t)
	mon := rdmatest.StartCephMon(t, devA, 120*time.Second) // or the one at RDMAINTEROP_CEPH_MON
	t.Logf("ceph-mon on %s (rdma %s)", mon.Addr, devA.Name)

	tests := []struct {
		name string
		dev  func(t *testing.T) rdmatest.Device
	}{
		{"client_on_A_same_device", func(t *testing.T) rdmatest.Device { return devA }},
		{"client_on_B_across_wire", func(t *testing.T) rdmatest.Device { return rdmatest.DeviceB(t) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sessionSteps(t, tc.dev(t), mon)
		})
	}
}

// step is one checked stage of the session.
type step struct {
	name string
	done func() (bool, string) // reached?, detail for the log
}

func sessionSteps(t *testing.T, dev rdmatest.Device, mon *rdmatest.CephMon) {
	cfg := rdmatest.Config(dev)
	cfg.TransportType = rdmatest.TracedTransport
	cfg.KeepaliveInterval = 0 // the only KEEPALIVE2 is the test's own
	cfg.ConnectionIdleTimeout = 60 * time.Second
	cli, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: -1}, msgr.WithLogger(testenv.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, cli.Shutdown()) }()
	ts := rdmatest.Traced(cli.Stack())
	require.NotNil(t, ts, "messenger is not on the traced rdma stack")
	rs, ok := ts.Inner().(*rdmastack.Stack)
	require.True(t, ok, "the traced stack wraps %T, not the rdma stack", ts.Inner())
	got := make(chan *msgr.Message, 4)
	cli.AddDispatcherTail(&monclient.Catcher{Ch: got})
	require.NoError(t, cli.Start())

	c, err := cli.ConnectTo(msgr.EntityTypeMon, mon.Addr)
	require.NoError(t, err)
	sock := func() *rdmatest.SockTrace {
		for _, s := range ts.Sockets() {
			if s.Outgoing && s.Target == mon.Addr {
				return s
			}
		}
		return nil
	}
	recv := func(what string) func() (bool, string) {
		return func() (bool, string) {
			s := sock()
			if s == nil {
				return false, "no socket"
			}
			for _, e := range s.Events() {
				if e.Dir == rdmatest.DirRecv && e.What == what {
					return true, e.Detail
				}
			}
			return false, ""
		}
	}
	var reply *msgr.Message
	sentKeepalive := false
	steps := []step{
		{"RDMA handshake (QP meta exchanged over the TCP side channel)", func() (bool, string) {
			s := sock()
			if s == nil {
				return false, "no connect yet"
			}
			for _, e := range s.Events() {
				if e.Dir == rdmatest.DirLocal && e.What == "connect-error" {
					t.Fatalf("step RDMA handshake failed: %s", e.Detail)
				}
				if e.Dir == rdmatest.DirLocal && e.What == "connect" {
					st := rs.Stats()
					if st.QPsActive < 1 {
						return false, ""
					}
					// the meta exchange brought one of our RC QPs to RTS toward a remote QP
					qps, err := rdmatest.OwnQPs(os.Getpid())
					require.NoError(t, err)
					for _, q := range qps {
						if q.Dev == dev.Name && q.Type == "RC" && q.State == "RTS" && q.RQPN != 0 {
							return true, fmt.Sprintf("%s; QP %s/%d RTS -> remote QP %d; QPs created %d active %d, handshake errors %d",
								e.Detail, q.Dev, q.LQPN, q.RQPN, st.QPsCreated, st.QPsActive, st.HandshakeErrors)
						}
					}
					return false, fmt.Sprintf("no RC QP of ours in RTS on %s yet: %+v", dev.Name, qps)
				}
			}
			return false, ""
		}},
		{"msgr2 banner from ceph-mon", recv("banner")},
		{"HELLO from ceph-mon", recv("HELLO")},
		{"AUTH_DONE from ceph-mon (auth none)", recv("AUTH_DONE")},
		{"SERVER_IDENT from ceph-mon", func() (bool, string) {
			ok, d := recv("SERVER_IDENT")()
			return ok && c.IsConnected(), d
		}},
		{"KEEPALIVE2 sent, KEEPALIVE2_ACK received", func() (bool, string) {
			if !sentKeepalive {
				sentKeepalive = true
				c.SendKeepalive()
				return false, ""
			}
			ok, d := recv("KEEPALIVE2_ACK")()
			if n := sock().Count(rdmatest.DirSend, "KEEPALIVE2"); ok && n != 1 {
				t.Fatalf("step KEEPALIVE2: %d KEEPALIVE2 frames on the wire, the test sent one", n)
			}
			return ok && c.Stats().KeepaliveAcks >= 1, d
		}},
		{"MMonGetVersion answered by MMonGetVersionReply", func() (bool, string) {
			if reply == nil {
				select {
				case reply = <-got:
				default:
					return false, ""
				}
			}
			return true, fmt.Sprintf("type %d, %d front bytes", reply.Type, len(reply.Front))
		}},
	}
	sentGetVersion := false
	deadline := time.Now().Add(60 * time.Second)
	for i, st := range steps {
		if i == len(steps)-1 && !sentGetVersion {
			front := monclient.GetVersionFront(4242) // handle
			require.NoError(t, c.SendMessage(&msgr.Message{Type: monclient.MsgMonGetVersion, Version: 1, Tid: 1, Front: front}))
			sentGetVersion = true
		}
		lastDetail := ""
		for {
			ok, detail := st.done()
			if detail != "" {
				lastDetail = detail
			}
			if ok {
				t.Logf("step %d ok: %s: %s", i+1, st.name, detail)
				break
			}
			if time.Now().After(deadline) || c.Err() != nil && !c.IsConnected() && i > 0 {
				trace := "(no socket)"
				if s := sock(); s != nil {
					trace = s.String()
				}
				t.Fatalf("step %d FAILED: %s (last seen: %s; connection error: %v, stats %+v, rdma stats %s)\n%s",
					i+1, st.name, lastDetail, c.Err(), c.Stats(), stackSummary(rs), trace)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	require.Equal(t, uint16(monclient.MsgMonGetVersionReply), reply.Type)
	require.GreaterOrEqual(t, len(reply.Front), 24)
	require.Equal(t, uint64(4242), binary.LittleEndian.Uint64(reply.Front), "reply handle")
	require.Equal(t, msgr.EntityName{Type: msgr.EntityTypeMon, Num: 0}, reply.Peer)
	require.True(t, c.IsConnected(), "connection error: %v", c.Err())
	require.Zero(t, c.Stats().Faults, "the session faulted on the way: %v", c.Err())
	st := rs.Stats()
	require.NotZero(t, st.RXCompletions, "nothing was received over RDMA")
	require.NotZero(t, st.TXCompletions, "nothing was sent over RDMA")
	t.Logf("session with ceph-mon over %s: %+v; rdma %s", dev.Name, c.Stats(), stackSummary(rs))
}

func stackSummary(rs *rdmastack.Stack) string {
	st := rs.Stats()
	var b strings.Builder
	fmt.Fprintf(&b, "qp created/active/destroyed %d/%d/%d, handshake errors %d, tx/rx completions %d/%d, tx/rx bytes %d/%d",
		st.QPsCreated, st.QPsActive, st.QPsDestroyed, st.HandshakeErrors, st.TXCompletions, st.RXCompletions, st.TXBytes, st.RXBytes)
	if len(st.WCErrors) > 0 {
		fmt.Fprintf(&b, ", wc errors %v", st.WCErrors)
	}
	return b.String()
}
