//go:build linux && cgo

package verbs

import (
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

// waitCM returns the next event on ch, which must be of type want.
func waitCM(t *testing.T, ch *CMEventChannel, want CMEventType) *CMEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev, err := ch.GetEvent()
		if err == nil {
			require.Equal(t, want, ev.Type, "got %s (status %d), want %s", ev.Type, ev.Status, want)
			return ev
		}
		require.True(t, isEAGAIN(err), "%v", err)
		left := time.Until(deadline)
		require.Positive(t, left, "no %s event within 10s", want)
		_, err = WaitReadable(ch.FD(), left)
		require.NoError(t, err)
	}
}

type cmSide struct {
	pd       *PD
	scq, rcq *CQ
	buf      *Buffer
	mr       *MR
	qp       *QP
}

func newCMSide(t *testing.T, id *CMID) *cmSide {
	t.Helper()
	ctx := id.Context()
	require.NotNil(t, ctx)
	s := &cmSide{}
	var err error
	s.pd, err = ctx.AllocPD()
	require.NoError(t, err)
	s.scq, err = ctx.CreateCQ(64, nil, 0)
	require.NoError(t, err)
	s.rcq, err = ctx.CreateCQ(64, nil, 0)
	require.NoError(t, err)
	s.buf, err = AllocBuffer(64 << 10)
	require.NoError(t, err)
	s.mr, err = s.pd.RegMR(s.buf, AccessLocalWrite|AccessRemoteWrite|AccessRemoteRead)
	require.NoError(t, err)
	s.qp, err = id.CreateQP(s.pd, QPInitAttr{SendCQ: s.scq, RecvCQ: s.rcq, MaxSendWR: 16, MaxRecvWR: 16})
	require.NoError(t, err)
	require.Same(t, s.qp, id.QP())
	return s
}

func (s *cmSide) close(t *testing.T) {
	t.Helper()
	for _, c := range []func() error{s.qp.Close, s.mr.Close, s.buf.Free, s.scq.Close, s.rcq.Close, s.pd.Close} {
		require.NoError(t, c())
	}
}

// testDeviceIPv4 is the test device and the IPv4 address of its RoCEv2 GID
// (port 1), where rdma_cm binds and connects.
func testDeviceIPv4(t *testing.T) (name string, ip netip.Addr) {
	t.Helper()
	name = testDevice(t)
	ctx, err := Open(name)
	require.NoError(t, err)
	g, err := ctx.PickGID(1, -1)
	require.NoError(t, err)
	require.NoError(t, ctx.Close())
	ip, ok := g.GID.IPv4()
	require.True(t, ok, "need the rxe netdev's IPv4 address")
	return name, ip
}

func TestCMConnectAcceptDisconnect(t *testing.T) {
	name, ip := testDeviceIPv4(t)

	sch, err := NewCMEventChannel()
	require.NoError(t, err)
	cch, err := NewCMEventChannel()
	require.NoError(t, err)
	defer func() {
		require.NoError(t, sch.Close())
		require.NoError(t, cch.Close())
	}()

	listen, err := sch.CreateID(PSTCP)
	require.NoError(t, err)
	require.NoError(t, listen.BindAddr(netip.AddrPortFrom(ip, 0)))
	require.NoError(t, listen.Listen(8))
	laddr, err := listen.LocalAddr()
	require.NoError(t, err)
	require.Equal(t, ip, laddr.Addr())
	require.NotZero(t, laddr.Port())
	require.ErrorIs(t, sch.Close(), ErrBusy, "ids still use the channel")

	// The client id starts on a scratch channel and migrates to cch: its
	// events must then arrive on cch.
	mch, err := NewCMEventChannel()
	require.NoError(t, err)
	cid, err := mch.CreateID(PSTCP)
	require.NoError(t, err)
	require.ErrorIs(t, mch.Close(), ErrBusy)
	require.NoError(t, cid.Migrate(cch))
	require.NoError(t, mch.Close(), "nothing uses the scratch channel after the migration")
	require.NoError(t, cid.ResolveAddr(netip.AddrPort{}, laddr, 3*time.Second))
	ev := waitCM(t, cch, CMAddrResolved)
	require.Same(t, cid, ev.ID)
	require.NoError(t, ev.Err())
	require.NoError(t, ev.Ack())
	require.NoError(t, ev.Ack()) // idempotent
	require.NoError(t, cid.ResolveRoute(3*time.Second))
	require.NoError(t, waitCM(t, cch, CMRouteResolved).Ack())
	// In the VM's two-host mode, locally generated traffic for host A's
	// address leaves through host B's device (it crosses the veth wire).
	wantDev := name
	if os.Getenv(testenv.EnvTwoHost) == "1" && os.Getenv(testenv.EnvDevB) != "" {
		wantDev = os.Getenv(testenv.EnvDevB)
	}
	require.Equal(t, wantDev, cid.Context().Name())
	require.Equal(t, 1, cid.Port())

	client := newCMSide(t, cid)
	// The client posts its receive, then connects with private data.
	_, err = client.qp.PostRecv([]RecvRequest{{ID: 1, SG: []SGE{client.mr.SGE(0, 4096)}}})
	require.NoError(t, err)
	cp := DefaultCMConnParam()
	cp.PrivateData = []byte("hello from client")
	require.NoError(t, cid.Connect(cp))

	req := waitCM(t, sch, CMConnectRequest)
	require.Same(t, listen, req.ListenID)
	require.NotNil(t, req.ID)
	require.NotSame(t, listen, req.ID)
	require.Equal(t, cp.PrivateData, req.PrivateData[:len(cp.PrivateData)])
	sid := req.ID
	require.ErrorIs(t, sid.Close(), ErrBusy, "its connect request is not acknowledged yet")
	server := newCMSide(t, sid)
	_, err = server.qp.PostRecv([]RecvRequest{{ID: 2, SG: []SGE{server.mr.SGE(0, 4096)}}})
	require.NoError(t, err)
	require.NoError(t, sid.Accept(DefaultCMConnParam()))
	require.NoError(t, req.Ack())

	require.NoError(t, waitCM(t, cch, CMEstablished).Ack())
	est := waitCM(t, sch, CMEstablished)
	require.Same(t, sid, est.ID)
	require.NoError(t, est.Ack())
	st, err := client.qp.State()
	require.NoError(t, err)
	require.Equal(t, QPStateRTS, st, "librdmacm moved the QP to RTS")

	// Data both ways over the connection.
	msg := []byte("ping over rdma_cm")
	copy(client.mr.Bytes()[8192:], msg)
	_, err = client.qp.PostSend([]WorkRequest{{ID: 10, Opcode: OpSend, Flags: SendSignaled, SG: []SGE{client.mr.SGE(8192, len(msg))}}})
	require.NoError(t, err)
	wc := waitWC(t, server.rcq, 1)[0]
	require.NoError(t, wc.Err())
	require.Equal(t, msg, server.mr.Bytes()[:wc.ByteLen])
	require.NoError(t, waitWC(t, client.scq, 1)[0].Err())
	reply := []byte("pong")
	copy(server.mr.Bytes()[8192:], reply)
	_, err = server.qp.PostSend([]WorkRequest{{ID: 11, Opcode: OpSend, Flags: SendSignaled, SG: []SGE{server.mr.SGE(8192, len(reply))}}})
	require.NoError(t, err)
	wc = waitWC(t, client.rcq, 1)[0]
	require.NoError(t, wc.Err())
	require.Equal(t, reply, client.mr.Bytes()[:wc.ByteLen])
	require.NoError(t, waitWC(t, server.scq, 1)[0].Err())

	// rdma_cm disconnect protocol: the initiator's DREQ gives the peer
	// DISCONNECTED; the peer answers with its own Disconnect (DREP), which
	// gives the initiator DISCONNECTED.
	require.NoError(t, cid.Disconnect())
	ds := waitCM(t, sch, CMDisconnected)
	require.Same(t, sid, ds.ID)
	require.ErrorIs(t, ds.Err(), syscall.ECONNRESET)
	require.NoError(t, ds.Ack())
	require.NoError(t, sid.Disconnect())
	dc := waitCM(t, cch, CMDisconnected)
	require.Same(t, cid, dc.ID)
	require.NoError(t, dc.Ack())
	st, err = server.qp.State()
	require.NoError(t, err)
	require.Equal(t, QPStateErr, st, "librdmacm moved the QP to ERR")

	require.ErrorIs(t, cid.Close(), ErrBusy, "the QP is still open")
	client.close(t)
	server.close(t)
	require.NoError(t, cid.Close())
	require.NoError(t, sid.Close())
	require.NoError(t, sid.Close())
	require.NoError(t, listen.Close())
}

// Connecting to a port nobody listens on is rejected (ECONNREFUSED).
func TestCMConnectRejected(t *testing.T) {
	_, ip := testDeviceIPv4(t)

	ch, err := NewCMEventChannel()
	require.NoError(t, err)
	defer func() { require.NoError(t, ch.Close()) }()
	id, err := ch.CreateID(PSTCP)
	require.NoError(t, err)
	defer func() { require.NoError(t, id.Close()) }()
	require.NoError(t, id.ResolveAddr(netip.AddrPort{}, netip.AddrPortFrom(ip, 7471), 3*time.Second))
	require.NoError(t, waitCM(t, ch, CMAddrResolved).Ack())
	require.NoError(t, id.ResolveRoute(3*time.Second))
	require.NoError(t, waitCM(t, ch, CMRouteResolved).Ack())
	side := newCMSide(t, id)
	defer side.close(t)
	require.NoError(t, id.Connect(DefaultCMConnParam()))
	for {
		ev, err := ch.GetEvent()
		if isEAGAIN(err) {
			ok, err := WaitReadable(ch.FD(), 10*time.Second)
			require.NoError(t, err)
			require.True(t, ok, "no answer to a connect to a closed port")
			continue
		}
		require.NoError(t, err)
		t.Logf("event %s status %d", ev.Type, ev.Status)
		require.Contains(t, []CMEventType{CMRejected, CMUnreachable}, ev.Type)
		err = ev.Err()
		if ev.Type == CMRejected {
			require.ErrorIs(t, err, syscall.ECONNREFUSED)
		}
		require.Error(t, err)
		require.NoError(t, ev.Ack())
		return
	}
}
