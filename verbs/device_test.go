//go:build linux && cgo

package verbs

import (
	"bytes"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDeviceQuery(t *testing.T) {
	name := testDevice(t)
	ctx, err := Open(name)
	require.NoError(t, err)
	defer func() { require.NoError(t, ctx.Close()) }()
	require.Equal(t, name, ctx.Name())

	// Open("") picks the first device.
	first, err := Open("")
	require.NoError(t, err)
	require.NotEmpty(t, first.Name())
	require.NoError(t, first.Close())
	require.NoError(t, first.Close())

	da, err := ctx.QueryDevice()
	require.NoError(t, err)
	require.GreaterOrEqual(t, da.PhysPortCnt, 1)
	require.Positive(t, da.MaxQP)
	require.Positive(t, da.MaxQPWR)
	require.Positive(t, da.MaxCQE)
	require.Positive(t, da.MaxSRQ)
	t.Logf("%s: fw %q max_qp %d max_qp_wr %d max_sge %d max_cqe %d max_srq_wr %d ports %d",
		name, da.FWVer, da.MaxQP, da.MaxQPWR, da.MaxSGE, da.MaxCQE, da.MaxSRQWR, da.PhysPortCnt)

	pa, err := ctx.QueryPort(1)
	require.NoError(t, err)
	require.Equal(t, PortActive, pa.State)
	require.Equal(t, LinkLayerEthernet, pa.LinkLayer, "rxe is RoCE")
	require.NotZero(t, pa.ActiveMTU.Bytes())
	require.Positive(t, pa.GIDTblLen)
	t.Logf("port 1: %s mtu %s/%s gid_tbl_len %d link %s", pa.State, pa.ActiveMTU, pa.MaxMTU, pa.GIDTblLen, pa.LinkLayer)
	require.NoError(t, ctx.PortActive(1))

	_, err = ctx.QueryPort(9)
	require.Error(t, err)
	require.Contains(t, err.Error(), "ibv_query_port 9")

	gids, err := ctx.GIDs(1)
	require.NoError(t, err)
	require.NotEmpty(t, gids)
	var v2v4 int
	for _, g := range gids {
		t.Logf("gid %d %s %s netdev %s(%d)", g.Index, g.GID, g.Type, g.Netdev, g.NetdevIndex)
		require.Equal(t, 1, g.Port)
		require.False(t, g.GID.IsZero())
		require.Contains(t, []GIDType{GIDTypeRoCEv1, GIDTypeRoCEv2}, g.Type)
		require.NotEmpty(t, g.Netdev)
		if _, ok := g.GID.IPv4(); ok && g.Type == GIDTypeRoCEv2 {
			v2v4++
		}
	}
	require.Positive(t, v2v4, "the rxe netdev has an IPv4 address, so a RoCE v2 IPv4 GID exists")

	// The table agrees with sysfs, which the fallback reads.
	sys, err := gidsFromSysfs(sysfsRoot, name, 1, pa.GIDTblLen)
	require.NoError(t, err)
	require.Equal(t, len(gids), len(sys))
	for i := range gids {
		require.Equal(t, gids[i].Index, sys[i].Index)
		require.Equal(t, gids[i].GID, sys[i].GID)
		require.Equal(t, gids[i].Type, sys[i].Type)
		require.Equal(t, gids[i].Netdev, sys[i].Netdev)
	}

	auto, err := ctx.PickGID(1, -1)
	require.NoError(t, err)
	ip, ok := auto.GID.IPv4()
	require.True(t, ok)
	require.Equal(t, GIDTypeRoCEv2, auto.Type)
	ifc, err := net.InterfaceByName(auto.Netdev)
	require.NoError(t, err)
	addrs, err := ifc.Addrs()
	require.NoError(t, err)
	var found bool
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(net.IP(ip.AsSlice())) {
			found = true
		}
	}
	require.True(t, found, "GID %s is an address of %s", auto.GID, auto.Netdev)
	_, err = ctx.PickGID(1, 250)
	require.ErrorIs(t, err, syscall.ENOENT)
}

func TestSendRecvPingPong(t *testing.T) {
	e := newEnv(t)
	a, b := e.pair(t, nil)
	st, err := a.State()
	require.NoError(t, err)
	require.Equal(t, QPStateRTS, st)

	mem := e.mr.Bytes()
	const size = 3000 // several 1024-byte MTU packets
	aTx, aRx, bTx, bRx := 0, 4096, 8192, 12288
	out := make([]WorkCompletion, 0, 4)
	for round := uint64(0); round < 8; round++ {
		fillRandom(mem[aTx:aTx+size], round)
		fillRandom(mem[bTx:bTx+size], round+100)
		_, err := b.PostRecv([]RecvRequest{{ID: 100 + round, SG: []SGE{e.mr.SGE(bRx, size)}}})
		require.NoError(t, err)
		_, err = a.PostRecv([]RecvRequest{{ID: 200 + round, SG: []SGE{e.mr.SGE(aRx, size)}}})
		require.NoError(t, err)

		// ping a -> b
		_, err = a.PostSend([]WorkRequest{{ID: round, Opcode: OpSend, Flags: SendSignaled, SG: []SGE{e.mr.SGE(aTx, size)}}})
		require.NoError(t, err)
		wc := waitWC(t, e.rcq, 1)[0]
		require.NoError(t, wc.Err())
		require.Equal(t, 100+round, wc.ID)
		require.Equal(t, WCRecv, wc.Opcode)
		require.Equal(t, uint32(size), wc.ByteLen)
		require.Equal(t, b.Num(), wc.QPNum)
		require.Equal(t, mem[aTx:aTx+size], mem[bRx:bRx+size])
		swc := waitWC(t, e.scq, 1)[0]
		require.NoError(t, swc.Err())
		require.Equal(t, round, swc.ID)
		require.Equal(t, WCSend, swc.Opcode)

		// pong b -> a
		_, err = b.PostSend([]WorkRequest{{ID: 50 + round, Opcode: OpSend, Flags: SendSignaled, SG: []SGE{e.mr.SGE(bTx, size)}}})
		require.NoError(t, err)
		out = append(out[:0], waitWC(t, e.rcq, 1)...)
		require.NoError(t, out[0].Err())
		require.Equal(t, 200+round, out[0].ID)
		require.Equal(t, a.Num(), out[0].QPNum)
		require.Equal(t, mem[bTx:bTx+size], mem[aRx:aRx+size])
		require.Equal(t, uint64(50+round), waitWC(t, e.scq, 1)[0].ID)
	}
}

func TestRDMAWriteRead(t *testing.T) {
	e := newEnv(t)
	a, b := e.pair(t, nil)
	mem := e.mr.Bytes()
	// b's region: [256K, 256K+64K); a's source [0,64K); a's read-back [512K, 576K).
	const n = 64 << 10
	src, dst, back := 0, 256<<10, 512<<10
	fillRandom(mem[src:src+n], 1)
	clear(mem[dst : dst+n])
	wc := e.sendWC(t, a, WorkRequest{
		ID: 1, Opcode: OpRDMAWrite, Flags: SendSignaled, SG: []SGE{e.mr.SGE(src, n)},
		RemoteAddr: e.mr.Addr() + uint64(dst), RKey: e.mr.RKey(),
	})
	require.NoError(t, wc.Err())
	require.Equal(t, WCRDMAWrite, wc.Opcode)
	require.True(t, bytes.Equal(mem[src:src+n], mem[dst:dst+n]), "RDMA WRITE data differs")
	requireNoWC(t, e.rcq) // a plain WRITE consumes no receive and makes no completion at b
	_ = b

	// Change b's memory locally, then READ it back into a's area.
	fillRandom(mem[dst:dst+n], 2)
	clear(mem[back : back+n])
	wc = e.sendWC(t, a, WorkRequest{
		ID: 2, Opcode: OpRDMARead, Flags: SendSignaled, SG: []SGE{e.mr.SGE(back, n)},
		RemoteAddr: e.mr.Addr() + uint64(dst), RKey: e.mr.RKey(),
	})
	require.NoError(t, wc.Err())
	require.Equal(t, WCRDMARead, wc.Opcode)
	require.Equal(t, uint32(n), wc.ByteLen)
	require.True(t, bytes.Equal(mem[dst:dst+n], mem[back:back+n]), "RDMA READ data differs")

	// A WRITE with a wrong rkey fails with a remote access error.
	wc = e.sendWC(t, a, WorkRequest{
		ID: 3, Opcode: OpRDMAWrite, Flags: SendSignaled, SG: []SGE{e.mr.SGE(src, 16)},
		RemoteAddr: e.mr.Addr() + uint64(dst), RKey: e.mr.RKey() ^ 0x5a5a00,
	})
	require.ErrorIs(t, wc.Err(), WCRemAccessErr)
}

func TestWriteWithImm(t *testing.T) {
	e := newEnv(t)
	a, b := e.pair(t, nil)
	mem := e.mr.Bytes()
	const n = 5000
	src, dst := 0, 100<<10
	fillRandom(mem[src:src+n], 3)
	_, err := b.PostRecv([]RecvRequest{{ID: 77}}) // WRITE_WITH_IMM consumes a receive; no SGE needed
	require.NoError(t, err)
	_, err = a.PostSend([]WorkRequest{{
		ID: 9, Opcode: OpRDMAWriteWithImm, Flags: SendSignaled, SG: []SGE{e.mr.SGE(src, n)},
		RemoteAddr: e.mr.Addr() + uint64(dst), RKey: e.mr.RKey(), Imm: 0xCAFEF00D,
	}})
	require.NoError(t, err)
	wc := waitWC(t, e.rcq, 1)[0]
	require.NoError(t, wc.Err())
	require.Equal(t, uint64(77), wc.ID)
	require.Equal(t, WCRecvRDMAWithImm, wc.Opcode)
	require.True(t, wc.HasImm)
	require.Equal(t, uint32(0xCAFEF00D), wc.Imm)
	require.Equal(t, uint32(n), wc.ByteLen)
	require.Equal(t, mem[src:src+n], mem[dst:dst+n])
	require.NoError(t, waitWC(t, e.scq, 1)[0].Err())

	// SEND_WITH_IMM carries imm data too.
	_, err = b.PostRecv([]RecvRequest{{ID: 78, SG: []SGE{e.mr.SGE(dst, 64)}}})
	require.NoError(t, err)
	_, err = a.PostSend([]WorkRequest{{ID: 10, Opcode: OpSendWithImm, Flags: SendSignaled, SG: []SGE{e.mr.SGE(src, 64)}, Imm: 42}})
	require.NoError(t, err)
	wc = waitWC(t, e.rcq, 1)[0]
	require.NoError(t, wc.Err())
	require.Equal(t, WCRecv, wc.Opcode)
	require.True(t, wc.HasImm)
	require.Equal(t, uint32(42), wc.Imm)
	require.NoError(t, waitWC(t, e.scq, 1)[0].Err())
}

func TestChainOf16IsOneCrossing(t *testing.T) {
	e := newEnv(t)
	a, b := e.pair(t, nil)
	mem := e.mr.Bytes()
	const k, size = 16, 512
	recvs := make([]RecvRequest, k)
	sends := make([]WorkRequest, k)
	for i := range k {
		fillRandom(mem[i*size:(i+1)*size], uint64(i))
		recvs[i] = RecvRequest{ID: uint64(1000 + i), SG: []SGE{e.mr.SGE(256<<10+i*size, size)}}
		// Only every fourth WR and the last are signaled.
		var f SendFlags
		if i%4 == 3 {
			f = SendSignaled
		}
		sends[i] = WorkRequest{ID: uint64(i), Opcode: OpSend, Flags: f, SG: []SGE{e.mr.SGE(i*size, size)}}
	}
	before := ReadCounters()
	n, err := b.PostRecv(recvs)
	require.NoError(t, err)
	require.Equal(t, k, n)
	mid := ReadCounters()
	n, err = a.PostSend(sends)
	require.NoError(t, err)
	require.Equal(t, k, n)
	after := ReadCounters()
	require.Equal(t, uint64(1), mid.PostRecvCalls-before.PostRecvCalls, "16 receives in one crossing")
	require.Equal(t, uint64(k), mid.PostRecvWRs-before.PostRecvWRs)
	require.Equal(t, uint64(1), after.PostSendCalls-mid.PostSendCalls, "16 sends in one crossing")
	require.Equal(t, uint64(k), after.PostSendWRs-mid.PostSendWRs)

	rwc := waitWC(t, e.rcq, k)
	for i, wc := range rwc {
		require.NoError(t, wc.Err())
		require.Equal(t, uint64(1000+i), wc.ID, "receives complete in order")
		require.Equal(t, mem[i*size:(i+1)*size], mem[256<<10+i*size:256<<10+(i+1)*size])
	}
	swc := waitWC(t, e.scq, k/4)
	for i, wc := range swc {
		require.NoError(t, wc.Err())
		require.Equal(t, uint64(4*i+3), wc.ID)
	}
	requireNoWC(t, e.scq)

	// One poll crossing returned several completions.
	p0 := ReadCounters()
	_, err = b.PostRecv(recvs[:8])
	require.NoError(t, err)
	for i := range 8 {
		sends[i].Flags = SendSignaled
	}
	_, err = a.PostSend(sends[:8])
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	got := waitWC(t, e.scq, 8)
	require.Len(t, got, 8)
	waitWC(t, e.rcq, 8)
	p1 := ReadCounters()
	require.Equal(t, uint64(16), p1.PollWCs-p0.PollWCs)
	require.Less(t, p1.PollCalls-p0.PollCalls, uint64(16), "completions were batched")
}

func TestSRQSharedByTwoQPs(t *testing.T) {
	e := newEnv(t)
	srq, err := e.pd.CreateSRQ(SRQInitAttr{MaxWR: 16, MaxSGE: 1})
	require.NoError(t, err)
	e.own(srq.Close)
	require.GreaterOrEqual(t, srq.MaxWR(), 16)

	qa := e.qp(t, QPInitAttr{SRQ: srq})
	qb := e.qp(t, QPInitAttr{SRQ: srq})
	pa, pb := e.qp(t, QPInitAttr{}), e.qp(t, QPInitAttr{})
	e.connect(t, pa, qa, nil)
	e.connect(t, pb, qb, nil)

	// Receiving QPs that use an SRQ refuse their own receives.
	_, err = qa.PostRecv([]RecvRequest{{ID: 1}})
	require.ErrorIs(t, err, syscall.EINVAL)

	const size = 256
	mem := e.mr.Bytes()
	recvs := make([]RecvRequest, 4)
	for i := range recvs {
		recvs[i] = RecvRequest{ID: uint64(500 + i), SG: []SGE{e.mr.SGE(128<<10+i*size, size)}}
	}
	_, err = srq.PostRecv(recvs)
	require.NoError(t, err)
	// Arm the limit: fewer than 3 WRs left raises EventSRQLimit.
	require.NoError(t, srq.ArmLimit(3))

	fillRandom(mem[0:size], 10)
	fillRandom(mem[size:2*size], 11)
	_, err = pa.PostSend([]WorkRequest{{ID: 1, Opcode: OpSend, Flags: SendSignaled, SG: []SGE{e.mr.SGE(0, size)}}})
	require.NoError(t, err)
	w1 := waitWC(t, e.rcq, 1)[0]
	_, err = pb.PostSend([]WorkRequest{{ID: 2, Opcode: OpSend, Flags: SendSignaled, SG: []SGE{e.mr.SGE(size, size)}}})
	require.NoError(t, err)
	w2 := waitWC(t, e.rcq, 1)[0]
	waitWC(t, e.scq, 2)
	require.NoError(t, w1.Err())
	require.NoError(t, w2.Err())
	require.Equal(t, qa.Num(), w1.QPNum)
	require.Equal(t, qb.Num(), w2.QPNum)
	// Both came from the one SRQ, in its order.
	require.Equal(t, uint64(500), w1.ID)
	require.Equal(t, uint64(501), w2.ID)
	require.Equal(t, mem[0:size], mem[128<<10:128<<10+size])
	require.Equal(t, mem[size:2*size], mem[128<<10+size:128<<10+2*size])

	// The limit event arrives on the non-blocking async fd.
	ev := waitAsync(t, e.ctx, EventSRQLimit)
	require.Same(t, srq, ev.SRQ)

	// Closing the SRQ while QPs use it is refused.
	require.ErrorIs(t, srq.Close(), ErrBusy)
}

func waitAsync(t *testing.T, ctx *Context, want EventType) AsyncEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ok, err := WaitReadable(ctx.AsyncFD(), time.Until(deadline))
		require.NoError(t, err)
		if !ok {
			break
		}
		for {
			ev, err := ctx.GetAsyncEvent()
			if isEAGAIN(err) {
				break
			}
			require.NoError(t, err)
			t.Logf("async event %s (qp %d port %d)", ev.Type, ev.QPNum, ev.Port)
			if ev.Type == want {
				return ev
			}
		}
	}
	t.Fatalf("no %s async event", want)
	return AsyncEvent{}
}

func TestAsyncFDNonBlocking(t *testing.T) {
	e := newEnv(t)
	_, err := e.ctx.GetAsyncEvent()
	require.ErrorIs(t, err, syscall.EAGAIN, "a non-blocking fd returns EAGAIN instead of parking in C")
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout())
	ok, err := WaitReadable(e.ctx.AsyncFD(), 0)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestCompChannelEvents(t *testing.T) {
	e := newEnv(t)
	ch, err := e.ctx.CreateCompChannel()
	require.NoError(t, err)
	cq, err := e.ctx.CreateCQ(64, ch, 0)
	require.NoError(t, err)
	// Closing the channel under a live CQ is refused.
	require.ErrorIs(t, ch.Close(), ErrBusy)
	a := e.qp(t, QPInitAttr{SendCQ: cq})
	defer func() {
		require.NoError(t, a.Close())
		require.NoError(t, cq.Close())
		require.NoError(t, ch.Close())
	}()
	b := e.qp(t, QPInitAttr{})
	e.connect(t, a, b, nil)

	_, err = ch.GetEvent()
	require.ErrorIs(t, err, syscall.EAGAIN)

	w, err := NewFDWaiter(ch.FD())
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close()) }()
	for round := range 4 {
		require.NoError(t, cq.ReqNotify(false))
		_, err = a.PostSend([]WorkRequest{{ID: uint64(round), Opcode: OpRDMAWrite, Flags: SendSignaled,
			SG: []SGE{e.mr.SGE(0, 8)}, RemoteAddr: e.mr.Addr() + 4096, RKey: e.mr.RKey()}})
		require.NoError(t, err)
		if round%2 == 0 {
			ok, err := WaitReadable(ch.FD(), 10*time.Second)
			require.NoError(t, err)
			require.True(t, ok, "completion channel became readable")
		} else {
			require.NoError(t, w.Wait(time.Now().Add(10*time.Second)), "netpoller saw the channel readable")
		}
		got, err := ch.GetEvent()
		require.NoError(t, err)
		require.Same(t, cq, got)
		wc := waitWC(t, cq, 1)[0]
		require.NoError(t, wc.Err())
		require.Equal(t, uint64(round), wc.ID)
	}
	// Events are acknowledged in one batch (here 4); Close would too.
	cq.AckEvents()
}

func TestRNRRetryExceeded(t *testing.T) {
	e := newEnv(t)
	a, _ := e.pair(t, func(side int, p *ConnParams) {
		if side == 0 {
			p.RNRRetry = 0 // fail at the first RNR NAK
		} else {
			p.MinRNRTimer = 1
		}
	})
	// b has no receive posted.
	wc := e.sendWC(t, a, WorkRequest{ID: 1, Opcode: OpSend, Flags: SendSignaled, SG: []SGE{e.mr.SGE(0, 64)}})
	require.ErrorIs(t, wc.Err(), WCRNRRetryExcErr)
	require.Equal(t, uint64(1), wc.ID)
	require.Contains(t, wc.Err().Error(), "RNR retry counter exceeded")
	st, err := a.State()
	require.NoError(t, err)
	require.Equal(t, QPStateErr, st)
}

func TestRetryExceededAfterPeerDestroyed(t *testing.T) {
	e := newEnv(t)
	a, b := e.pair(t, func(side int, p *ConnParams) {
		if side == 0 {
			p.Timeout = 12 // 4.096 us << 12 ≈ 17 ms
			p.RetryCnt = 1
		}
	})
	require.NoError(t, b.Close())
	wc := e.sendWC(t, a, WorkRequest{ID: 5, Opcode: OpSend, Flags: SendSignaled, SG: []SGE{e.mr.SGE(0, 64)}})
	require.ErrorIs(t, wc.Err(), WCRetryExcErr)
	require.Equal(t, uint64(5), wc.ID)
}

func TestFlushAfterError(t *testing.T) {
	e := newEnv(t)
	a, b := e.pair(t, nil)
	recvs := make([]RecvRequest, 5)
	for i := range recvs {
		recvs[i] = RecvRequest{ID: uint64(i), SG: []SGE{e.mr.SGE(i*64, 64)}}
	}
	_, err := b.PostRecv(recvs)
	require.NoError(t, err)
	require.NoError(t, b.ToError())
	st, err := b.State()
	require.NoError(t, err)
	require.Equal(t, QPStateErr, st)
	for i, wc := range waitWC(t, e.rcq, 5) {
		require.ErrorIs(t, wc.Err(), WCWRFlushErr)
		require.Equal(t, uint64(i), wc.ID)
		require.Equal(t, b.Num(), wc.QPNum)
	}
	// Ceph's beacon: a zero-SGE signaled send on a QP in ERR flushes too.
	require.NoError(t, a.ToError())
	wc := e.sendWC(t, a, WorkRequest{ID: 0xDEADBEEF, Opcode: OpSend, Flags: SendSignaled})
	require.ErrorIs(t, wc.Err(), WCWRFlushErr)
	require.Equal(t, uint64(0xDEADBEEF), wc.ID)
}

func TestBadArguments(t *testing.T) {
	e := newEnv(t)
	t.Run("unknown device", func(t *testing.T) {
		_, err := Open("rxe-does-not-exist")
		require.ErrorIs(t, err, ErrNoDevice)
		require.ErrorIs(t, err, syscall.ENODEV)
	})
	t.Run("MR of length 0", func(t *testing.T) {
		_, err := e.pd.RegMRRange(e.buf, 0, 0, AccessLocalWrite)
		require.ErrorIs(t, err, syscall.EINVAL)
		require.Contains(t, err.Error(), "ibv_reg_mr")
		_, err = e.pd.RegMRRange(e.buf, envBuf-10, 20, AccessLocalWrite)
		require.ErrorIs(t, err, syscall.EINVAL)
	})
	t.Run("remote write without local write", func(t *testing.T) {
		// The kernel requires LOCAL_WRITE with REMOTE_WRITE.
		_, err := e.pd.RegMR(e.buf, AccessRemoteWrite)
		require.ErrorIs(t, err, syscall.EINVAL)
		require.Contains(t, err.Error(), "verbs: ibv_reg_mr")
	})
	t.Run("RTR with bogus GID index", func(t *testing.T) {
		a, b := e.qp(t, QPInitAttr{}), e.qp(t, QPInitAttr{})
		p := e.params(b)
		require.NoError(t, a.ToInit(p))
		p.SGIDIndex = 200
		err := a.ToRTR(p)
		require.Error(t, err)
		var ve *Error
		require.True(t, errors.As(err, &ve))
		require.Equal(t, "ibv_modify_qp RTR", ve.Op)
		require.NotZero(t, ve.Errno)
		t.Logf("bogus sgid_index: %v", err)
		st, err := a.State()
		require.NoError(t, err)
		require.Equal(t, QPStateInit, st, "a failed transition leaves the state")
		// An index that does not fit sgid_index's byte is refused before the kernel.
		p.SGIDIndex = 9999
		err = a.ToRTR(p)
		require.ErrorIs(t, err, syscall.EINVAL)
		require.Contains(t, err.Error(), "ibv_modify_qp RTR")
		// And a correct one still works afterwards.
		p.SGIDIndex = e.gid.Index
		require.NoError(t, a.ToRTR(p))
	})
	t.Run("RTS from RESET", func(t *testing.T) {
		q := e.qp(t, QPInitAttr{})
		err := q.ToRTS(e.params(q))
		require.ErrorIs(t, err, syscall.EINVAL)
		require.Contains(t, err.Error(), "ibv_modify_qp RTS")
	})
	t.Run("close order", func(t *testing.T) {
		q := e.qp(t, QPInitAttr{})
		require.ErrorIs(t, e.pd.Close(), ErrBusy)
		require.ErrorIs(t, e.scq.Close(), ErrBusy)
		require.ErrorIs(t, e.ctx.Close(), syscall.EBUSY)
		require.ErrorIs(t, e.buf.Free(), ErrBusy, "the MR covers the buffer")
		require.NoError(t, q.Close())
		require.NoError(t, q.Close())
		_, err := q.PostSend([]WorkRequest{{Opcode: OpSend}})
		require.ErrorIs(t, err, net.ErrClosed)
		_, err = q.State()
		require.ErrorIs(t, err, net.ErrClosed)
	})
	t.Run("QP without CQs", func(t *testing.T) {
		_, err := e.pd.CreateQP(QPInitAttr{})
		require.ErrorIs(t, err, syscall.EINVAL)
	})
	t.Run("too many WRs", func(t *testing.T) {
		a, b := e.qp(t, QPInitAttr{MaxSendWR: 4, MaxRecvWR: 4}), e.qp(t, QPInitAttr{})
		e.connect(t, a, b, nil)
		caps := a.Caps()
		// One chain longer than the queue: the device takes what fits.
		wrs := make([]WorkRequest, 2*caps.MaxSendWR+8)
		for i := range wrs {
			wrs[i] = WorkRequest{ID: uint64(i), Opcode: OpRDMAWrite, Flags: SendSignaled,
				SG: []SGE{e.mr.SGE(0, 8)}, RemoteAddr: e.mr.Addr() + 8192, RKey: e.mr.RKey()}
		}
		n, err := a.PostSend(wrs)
		require.ErrorIs(t, err, syscall.ENOMEM, "a full send queue is ENOMEM")
		require.GreaterOrEqual(t, n, caps.MaxSendWR)
		require.Less(t, n, len(wrs))
		t.Logf("send queue asked %d, granted %d, accepted %d before ENOMEM", 4, caps.MaxSendWR, n)
		waitWC(t, e.scq, n)
	})
}

// Posting and polling allocate nothing on the Go heap.
func TestHotPathsDoNotAllocate(t *testing.T) {
	e := newEnv(t)
	a, b := e.pair(t, nil)
	wrs := []WorkRequest{{ID: 1, Opcode: OpRDMAWrite, Flags: SendSignaled,
		SG: []SGE{e.mr.SGE(0, 64)}, RemoteAddr: e.mr.Addr() + 8192, RKey: e.mr.RKey()}}
	recvs := []RecvRequest{{ID: 2, SG: []SGE{e.mr.SGE(4096, 64)}}}
	dst := make([]WorkCompletion, 8)
	var failed error
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := b.PostRecv(recvs); err != nil {
			failed = err
		}
		if _, err := a.PostSend(wrs); err != nil {
			failed = err
		}
		for got := 0; got < 1 && failed == nil; {
			n, err := e.scq.Poll(dst)
			if err != nil {
				failed = err
			}
			got += n
		}
	})
	require.NoError(t, failed)
	require.Zero(t, allocs, "PostRecv+PostSend+Poll allocations per round")
	require.NoError(t, b.ToError()) // flush the 51 unused receives
	waitWC(t, e.rcq, 51)
}

// Inline sends carry data the device never reads through an MR: the payload
// here lives in a buffer that is not registered at all.
func TestInlineSend(t *testing.T) {
	e := newEnv(t)
	a := e.qp(t, QPInitAttr{MaxInlineData: 64})
	b := e.qp(t, QPInitAttr{})
	e.connect(t, a, b, nil)
	require.GreaterOrEqual(t, a.Caps().MaxInlineData, 64)
	plain, err := AllocBuffer(4096)
	require.NoError(t, err)
	defer func() { require.NoError(t, plain.Free()) }()
	fillRandom(plain.Bytes()[:48], 9)
	_, err = b.PostRecv([]RecvRequest{{ID: 3, SG: []SGE{e.mr.SGE(0, 64)}}})
	require.NoError(t, err)
	_, err = a.PostSend([]WorkRequest{{ID: 4, Opcode: OpSend, Flags: SendSignaled,
		SG: []SGE{{Addr: plain.Addr(), Length: 48, LKey: 0}}}})
	require.NoError(t, err)
	wc := waitWC(t, e.rcq, 1)[0]
	require.NoError(t, wc.Err())
	require.Equal(t, uint32(48), wc.ByteLen)
	require.Equal(t, plain.Bytes()[:48], e.mr.Bytes()[:48])
	require.NoError(t, waitWC(t, e.scq, 1)[0].Err())
}

// mmap'd memory registers and receives RDMA WRITEs like C-heap memory.
func TestMapBufferRegistered(t *testing.T) {
	e := newEnv(t)
	a, _ := e.pair(t, nil)
	mb, err := MapBuffer(3*4096+1, false)
	require.NoError(t, err)
	require.Equal(t, 3*4096+1, mb.Len())
	mmr, err := e.pd.RegMR(mb, AccessLocalWrite|AccessRemoteWrite)
	require.NoError(t, err)
	fillRandom(e.mr.Bytes()[:8192], 12)
	_, err = a.PostSend([]WorkRequest{{ID: 1, Opcode: OpRDMAWrite, Flags: SendSignaled,
		SG: []SGE{e.mr.SGE(0, 8192)}, RemoteAddr: mmr.Addr() + 100, RKey: mmr.RKey()}})
	require.NoError(t, err)
	require.NoError(t, waitWC(t, e.scq, 1)[0].Err())
	require.Equal(t, e.mr.Bytes()[:8192], mb.Bytes()[100:8292])
	require.ErrorIs(t, mb.Free(), ErrBusy)
	require.NoError(t, mmr.Close())
	require.NoError(t, mb.Free())

	hb, err := MapBuffer(1, true)
	if err != nil {
		// No huge pages reserved: the documented errno, not a crash.
		require.ErrorIs(t, err, syscall.ENOMEM)
		require.Contains(t, err.Error(), "MAP_HUGETLB")
		return
	}
	require.Equal(t, HugePageSize, hb.Len())
	require.Zero(t, hb.Addr()%HugePageSize)
	require.NoError(t, hb.Free())
}
