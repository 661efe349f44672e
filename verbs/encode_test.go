//go:build linux && cgo

package verbs

import (
	"syscall"
	"testing"

	"github.com/asyncmsgr/asyncmsgr/verbs/cshim"
	"github.com/stretchr/testify/require"
)

// The typed constants must equal the rdma-core ABI values.
func TestConstantsMatchABI(t *testing.T) {
	pairs := []struct {
		name    string
		go_, c_ int64
	}{
		{"OpRDMAWrite", int64(OpRDMAWrite), cshim.WRRDMAWrite},
		{"OpRDMAWriteWithImm", int64(OpRDMAWriteWithImm), cshim.WRRDMAWriteWithImm},
		{"OpSend", int64(OpSend), cshim.WRSend},
		{"OpSendWithImm", int64(OpSendWithImm), cshim.WRSendWithImm},
		{"OpRDMARead", int64(OpRDMARead), cshim.WRRDMARead},
		{"SendFence", int64(SendFence), cshim.SendFence},
		{"SendSignaled", int64(SendSignaled), cshim.SendSignaled},
		{"SendSolicited", int64(SendSolicited), cshim.SendSolicited},
		{"SendInline", int64(SendInline), cshim.SendInline},
		{"WCSend", int64(WCSend), cshim.WCSend},
		{"WCRDMAWrite", int64(WCRDMAWrite), cshim.WCRDMAWrite},
		{"WCRDMARead", int64(WCRDMARead), cshim.WCRDMARead},
		{"WCRecv", int64(WCRecv), cshim.WCRecv},
		{"WCRecvRDMAWithImm", int64(WCRecvRDMAWithImm), cshim.WCRecvRDMAWithImm},
		{"WCSuccess", int64(WCSuccess), cshim.WCSuccess},
		{"WCLocLenErr", int64(WCLocLenErr), cshim.WCLocLenErr},
		{"WCLocProtErr", int64(WCLocProtErr), cshim.WCLocProtErr},
		{"WCWRFlushErr", int64(WCWRFlushErr), cshim.WCWRFlushErr},
		{"WCRemAccessErr", int64(WCRemAccessErr), cshim.WCRemAccessErr},
		{"WCRetryExcErr", int64(WCRetryExcErr), cshim.WCRetryExcErr},
		{"WCRNRRetryExcErr", int64(WCRNRRetryExcErr), cshim.WCRNRRetryExcErr},
		{"WCGeneralErr", int64(WCGeneralErr), cshim.WCGeneralErr},
		{"WCTMRndvIncomplete", int64(WCTMRndvIncomplete), cshim.WCTMRndvIncomplete},
		{"AccessLocalWrite", int64(AccessLocalWrite), cshim.AccessLocalWrite},
		{"AccessRemoteWrite", int64(AccessRemoteWrite), cshim.AccessRemoteWrite},
		{"AccessRemoteRead", int64(AccessRemoteRead), cshim.AccessRemoteRead},
		{"AccessRemoteAtomic", int64(AccessRemoteAtomic), cshim.AccessRemoteAtomic},
		{"QPTypeRC", int64(QPTypeRC), cshim.QPTypeRC},
		{"QPTypeUC", int64(QPTypeUC), cshim.QPTypeUC},
		{"QPTypeUD", int64(QPTypeUD), cshim.QPTypeUD},
		{"QPStateReset", int64(QPStateReset), cshim.QPSReset},
		{"QPStateInit", int64(QPStateInit), cshim.QPSInit},
		{"QPStateRTR", int64(QPStateRTR), cshim.QPSRTR},
		{"QPStateRTS", int64(QPStateRTS), cshim.QPSRTS},
		{"QPStateSQD", int64(QPStateSQD), cshim.QPSSQD},
		{"QPStateSQE", int64(QPStateSQE), cshim.QPSSQE},
		{"QPStateErr", int64(QPStateErr), cshim.QPSErr},
		{"PortDown", int64(PortDown), cshim.PortDown},
		{"PortActive", int64(PortActive), cshim.PortActive},
		{"MTU256", int64(MTU256), cshim.MTU256},
		{"MTU1024", int64(MTU1024), cshim.MTU1024},
		{"MTU4096", int64(MTU4096), cshim.MTU4096},
		{"LinkLayerInfiniBand", int64(LinkLayerInfiniBand), cshim.LinkLayerInfiniBand},
		{"LinkLayerEthernet", int64(LinkLayerEthernet), cshim.LinkLayerEthernet},
		{"GIDTypeIB", int64(GIDTypeIB), cshim.GIDTypeIB},
		{"GIDTypeRoCEv1", int64(GIDTypeRoCEv1), cshim.GIDTypeRoCEv1},
		{"GIDTypeRoCEv2", int64(GIDTypeRoCEv2), cshim.GIDTypeRoCEv2},
		{"EventCQErr", int64(EventCQErr), cshim.EventCQErr},
		{"EventQPFatal", int64(EventQPFatal), cshim.EventQPFatal},
		{"EventPortActive", int64(EventPortActive), cshim.EventPortActive},
		{"EventPortErr", int64(EventPortErr), cshim.EventPortErr},
		{"EventSRQLimit", int64(EventSRQLimit), cshim.EventSRQLimit},
		{"EventLastWQEReached", int64(EventLastWQEReached), cshim.EventLastWQEReached},
		{"EventWQFatal", int64(EventWQFatal), cshim.EventWQFatal},
		{"CMAddrResolved", int64(CMAddrResolved), cshim.CMAddrResolved},
		{"CMConnectRequest", int64(CMConnectRequest), cshim.CMConnectRequest},
		{"CMUnreachable", int64(CMUnreachable), cshim.CMUnreachable},
		{"CMRejected", int64(CMRejected), cshim.CMRejected},
		{"CMEstablished", int64(CMEstablished), cshim.CMEstablished},
		{"CMDisconnected", int64(CMDisconnected), cshim.CMDisconnected},
		{"CMTimewaitExit", int64(CMTimewaitExit), cshim.CMTimewaitExit},
		{"PSTCP", int64(PSTCP), cshim.PSTCP},
		{"PSUDP", int64(PSUDP), cshim.PSUDP},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) { require.Equal(t, p.c_, p.go_) })
	}
}

func TestEncodeSend(t *testing.T) {
	b, err := cshim.NewSendBatch(4, 6)
	require.NoError(t, err)
	defer b.Free()
	wrs := []WorkRequest{
		{ID: 7, Opcode: OpSend, Flags: SendSignaled, SG: []SGE{{Addr: 0x1000, Length: 32, LKey: 5}}},
		{ID: 8, Opcode: OpRDMAWrite, SG: []SGE{{Addr: 0x2000, Length: 100, LKey: 5}, {Addr: 0x3000, Length: 100, LKey: 6}},
			RemoteAddr: 0xdead000, RKey: 9},
		{ID: 9, Opcode: OpRDMARead, SG: []SGE{{Addr: 0x4000, Length: 8, LKey: 5}}, RemoteAddr: 0xbeef000, RKey: 10},
		{ID: 10, Opcode: OpSendWithImm, Imm: 0x01020304}, // zero SGEs
	}
	require.NoError(t, encodeSend(b, wrs, 64))
	require.Equal(t, cshim.SendWR{WRID: 7, Opcode: cshim.WRSend, Flags: int32(SendSignaled | SendInline), NumSGE: 1, SGEOff: 0}, b.WR[0])
	// 200 bytes do not fit 64 bytes of inline data.
	require.Equal(t, cshim.SendWR{WRID: 8, Opcode: cshim.WRRDMAWrite, RemoteAddr: 0xdead000, RKey: 9, NumSGE: 2, SGEOff: 1}, b.WR[1])
	// READ is never inline.
	require.Equal(t, cshim.SendWR{WRID: 9, Opcode: cshim.WRRDMARead, RemoteAddr: 0xbeef000, RKey: 10, NumSGE: 1, SGEOff: 3}, b.WR[2])
	require.Equal(t, cshim.SendWR{WRID: 10, Opcode: cshim.WRSendWithImm, Imm: 0x01020304, NumSGE: 0, SGEOff: 4}, b.WR[3])
	require.Equal(t, cshim.SGE{Addr: 0x3000, Length: 100, LKey: 6}, b.SGE[2])
	require.Equal(t, cshim.SGE{Addr: 0x4000, Length: 8, LKey: 5}, b.SGE[3])

	// Without an inline budget nothing is inlined.
	require.NoError(t, encodeSend(b, wrs[:1], 0))
	require.Equal(t, int32(SendSignaled), b.WR[0].Flags)

	// More SGEs than the batch holds is EINVAL, not a write past the array.
	many := make([]SGE, 7)
	require.ErrorIs(t, encodeSend(b, []WorkRequest{{SG: many}}, 0), syscall.EINVAL)
}

func TestEncodeRecv(t *testing.T) {
	b, err := cshim.NewRecvBatch(3, 3)
	require.NoError(t, err)
	defer b.Free()
	require.NoError(t, encodeRecv(b, []RecvRequest{
		{ID: 1, SG: []SGE{{Addr: 1, Length: 2, LKey: 3}}},
		{ID: 2},
		{ID: 3, SG: []SGE{{Addr: 4, Length: 5, LKey: 6}, {Addr: 7, Length: 8, LKey: 9}}},
	}))
	require.Equal(t, cshim.RecvWR{WRID: 1, NumSGE: 1, SGEOff: 0}, b.WR[0])
	require.Equal(t, cshim.RecvWR{WRID: 2, NumSGE: 0, SGEOff: 1}, b.WR[1])
	require.Equal(t, cshim.RecvWR{WRID: 3, NumSGE: 2, SGEOff: 1}, b.WR[2])
	require.Equal(t, cshim.SGE{Addr: 7, Length: 8, LKey: 9}, b.SGE[2])
	require.ErrorIs(t, encodeRecv(b, []RecvRequest{{SG: make([]SGE, 4)}}), syscall.EINVAL)
}

// Open of a missing device fails cleanly on any machine (with or without rdma devices).
func TestOpenUnknownDevice(t *testing.T) {
	_, err := Open("asyncmsgr-no-such-dev0")
	require.ErrorIs(t, err, ErrNoDevice)
	require.ErrorIs(t, err, syscall.ENODEV)
	require.Contains(t, err.Error(), "ibv_open_device asyncmsgr-no-such-dev0")
}

func TestBufferAndNilSafety(t *testing.T) {
	_, err := AllocBuffer(0)
	require.ErrorIs(t, err, syscall.EINVAL)
	b, err := AllocBuffer(10000)
	require.NoError(t, err)
	require.Len(t, b.Bytes(), 10000)
	require.Zero(t, b.Addr()%4096)
	for _, v := range b.Bytes() {
		require.Zero(t, v)
	}
	b.Bytes()[9999] = 1
	require.NoError(t, b.Free())
	require.NoError(t, b.Free())
	require.Nil(t, b.Bytes())

	var ctx *Context
	var pd *PD
	var cq *CQ
	var qp *QP
	for _, c := range []func() error{ctx.Close, pd.Close, cq.Close, qp.Close, (*MR)(nil).Close, (*SRQ)(nil).Close,
		(*CMID)(nil).Close, (*CMEventChannel)(nil).Close, (*CompChannel)(nil).Close, (*Buffer)(nil).Free} {
		require.NoError(t, c())
	}
	_, err = ctx.AllocPD()
	require.Error(t, err)
	_, err = cq.Poll(make([]WorkCompletion, 1))
	require.Error(t, err)
}
