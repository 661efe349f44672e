//go:build linux && cgo

package cshim

/*
#include <sys/socket.h>
#include "shim.h"
*/
import "C"

import "unsafe"

// ABI constants from the rdma-core headers. The verbs package defines its own
// typed constants with the same values (so that they exist without cgo); its
// tests compare them with these.
const (
	WRRDMAWrite        = C.IBV_WR_RDMA_WRITE
	WRRDMAWriteWithImm = C.IBV_WR_RDMA_WRITE_WITH_IMM
	WRSend             = C.IBV_WR_SEND
	WRSendWithImm      = C.IBV_WR_SEND_WITH_IMM
	WRRDMARead         = C.IBV_WR_RDMA_READ

	SendFence     = C.IBV_SEND_FENCE
	SendSignaled  = C.IBV_SEND_SIGNALED
	SendSolicited = C.IBV_SEND_SOLICITED
	SendInline    = C.IBV_SEND_INLINE

	WCSend            = C.IBV_WC_SEND
	WCRDMAWrite       = C.IBV_WC_RDMA_WRITE
	WCRDMARead        = C.IBV_WC_RDMA_READ
	WCRecv            = C.IBV_WC_RECV
	WCRecvRDMAWithImm = C.IBV_WC_RECV_RDMA_WITH_IMM
	WCWithImm         = C.IBV_WC_WITH_IMM

	WCSuccess          = C.IBV_WC_SUCCESS
	WCLocLenErr        = C.IBV_WC_LOC_LEN_ERR
	WCLocProtErr       = C.IBV_WC_LOC_PROT_ERR
	WCWRFlushErr       = C.IBV_WC_WR_FLUSH_ERR
	WCRemAccessErr     = C.IBV_WC_REM_ACCESS_ERR
	WCRetryExcErr      = C.IBV_WC_RETRY_EXC_ERR
	WCRNRRetryExcErr   = C.IBV_WC_RNR_RETRY_EXC_ERR
	WCGeneralErr       = C.IBV_WC_GENERAL_ERR
	WCTMRndvIncomplete = C.IBV_WC_TM_RNDV_INCOMPLETE

	AccessLocalWrite   = C.IBV_ACCESS_LOCAL_WRITE
	AccessRemoteWrite  = C.IBV_ACCESS_REMOTE_WRITE
	AccessRemoteRead   = C.IBV_ACCESS_REMOTE_READ
	AccessRemoteAtomic = C.IBV_ACCESS_REMOTE_ATOMIC

	QPTypeRC = C.IBV_QPT_RC
	QPTypeUC = C.IBV_QPT_UC
	QPTypeUD = C.IBV_QPT_UD

	QPSReset = C.IBV_QPS_RESET
	QPSInit  = C.IBV_QPS_INIT
	QPSRTR   = C.IBV_QPS_RTR
	QPSRTS   = C.IBV_QPS_RTS
	QPSSQD   = C.IBV_QPS_SQD
	QPSSQE   = C.IBV_QPS_SQE
	QPSErr   = C.IBV_QPS_ERR

	PortDown   = C.IBV_PORT_DOWN
	PortActive = C.IBV_PORT_ACTIVE

	MTU256  = C.IBV_MTU_256
	MTU1024 = C.IBV_MTU_1024
	MTU4096 = C.IBV_MTU_4096

	LinkLayerUnspecified = C.IBV_LINK_LAYER_UNSPECIFIED
	LinkLayerInfiniBand  = C.IBV_LINK_LAYER_INFINIBAND
	LinkLayerEthernet    = C.IBV_LINK_LAYER_ETHERNET

	GIDTypeIB     = C.IBV_GID_TYPE_IB
	GIDTypeRoCEv1 = C.IBV_GID_TYPE_ROCE_V1
	GIDTypeRoCEv2 = C.IBV_GID_TYPE_ROCE_V2

	EventCQErr          = C.IBV_EVENT_CQ_ERR
	EventQPFatal        = C.IBV_EVENT_QP_FATAL
	EventQPReqErr       = C.IBV_EVENT_QP_REQ_ERR
	EventQPAccessErr    = C.IBV_EVENT_QP_ACCESS_ERR
	EventCommEst        = C.IBV_EVENT_COMM_EST
	EventSQDrained      = C.IBV_EVENT_SQ_DRAINED
	EventPathMig        = C.IBV_EVENT_PATH_MIG
	EventPathMigErr     = C.IBV_EVENT_PATH_MIG_ERR
	EventDeviceFatal    = C.IBV_EVENT_DEVICE_FATAL
	EventPortActive     = C.IBV_EVENT_PORT_ACTIVE
	EventPortErr        = C.IBV_EVENT_PORT_ERR
	EventLIDChange      = C.IBV_EVENT_LID_CHANGE
	EventPKeyChange     = C.IBV_EVENT_PKEY_CHANGE
	EventSMChange       = C.IBV_EVENT_SM_CHANGE
	EventSRQErr         = C.IBV_EVENT_SRQ_ERR
	EventSRQLimit       = C.IBV_EVENT_SRQ_LIMIT_REACHED
	EventLastWQEReached = C.IBV_EVENT_QP_LAST_WQE_REACHED
	EventClientRereg    = C.IBV_EVENT_CLIENT_REREGISTER
	EventGIDChange      = C.IBV_EVENT_GID_CHANGE
	EventWQFatal        = C.IBV_EVENT_WQ_FATAL

	CMAddrResolved    = C.RDMA_CM_EVENT_ADDR_RESOLVED
	CMAddrError       = C.RDMA_CM_EVENT_ADDR_ERROR
	CMRouteResolved   = C.RDMA_CM_EVENT_ROUTE_RESOLVED
	CMRouteError      = C.RDMA_CM_EVENT_ROUTE_ERROR
	CMConnectRequest  = C.RDMA_CM_EVENT_CONNECT_REQUEST
	CMConnectResponse = C.RDMA_CM_EVENT_CONNECT_RESPONSE
	CMConnectError    = C.RDMA_CM_EVENT_CONNECT_ERROR
	CMUnreachable     = C.RDMA_CM_EVENT_UNREACHABLE
	CMRejected        = C.RDMA_CM_EVENT_REJECTED
	CMEstablished     = C.RDMA_CM_EVENT_ESTABLISHED
	CMDisconnected    = C.RDMA_CM_EVENT_DISCONNECTED
	CMDeviceRemoval   = C.RDMA_CM_EVENT_DEVICE_REMOVAL
	CMMulticastJoin   = C.RDMA_CM_EVENT_MULTICAST_JOIN
	CMMulticastError  = C.RDMA_CM_EVENT_MULTICAST_ERROR
	CMAddrChange      = C.RDMA_CM_EVENT_ADDR_CHANGE
	CMTimewaitExit    = C.RDMA_CM_EVENT_TIMEWAIT_EXIT

	PSTCP = C.RDMA_PS_TCP
	PSUDP = C.RDMA_PS_UDP

	AFInet  = C.AF_INET
	AFInet6 = C.AF_INET6
)

// Sizes of the mirrored C structs, for layout tests.
const (
	SizeofWC     = C.sizeof_struct_shim_wc
	SizeofSGE    = C.sizeof_struct_shim_sge
	SizeofSendWR = C.sizeof_struct_shim_send_wr
	SizeofRecvWR = C.sizeof_struct_shim_recv_wr
	SizeofSpin   = C.sizeof_struct_shim_spin
)

// Field offsets of the mirrored C structs as the C compiler lays them out,
// for layout tests (which cannot use cgo themselves).
var cOffsets = map[string]uintptr{
	"wc.status":       unsafe.Offsetof(C.struct_shim_wc{}.status),
	"wc.imm":          unsafe.Offsetof(C.struct_shim_wc{}.imm),
	"wc.wc_flags":     unsafe.Offsetof(C.struct_shim_wc{}.wc_flags),
	"wc.sl":           unsafe.Offsetof(C.struct_shim_wc{}.sl),
	"send.opcode":     unsafe.Offsetof(C.struct_shim_send_wr{}.opcode),
	"send.sge_off":    unsafe.Offsetof(C.struct_shim_send_wr{}.sge_off),
	"recv.sge_off":    unsafe.Offsetof(C.struct_shim_recv_wr{}.sge_off),
	"sge.lkey":        unsafe.Offsetof(C.struct_shim_sge{}.lkey),
	"spin.watch_want": unsafe.Offsetof(C.struct_shim_spin{}.watch_want),
	"spin.nwc":        unsafe.Offsetof(C.struct_shim_spin{}.nwc),
	"spin.rounds":     unsafe.Offsetof(C.struct_shim_spin{}.rounds),
	"spin.stamp":      unsafe.Offsetof(C.struct_shim_spin{}.stamp),
	"spin.mark_val":   unsafe.Offsetof(C.struct_shim_spin{}.mark_val),
	"spin.max_ticks":  unsafe.Offsetof(C.struct_shim_spin{}.max_ticks),
	"spin.nwc1":       unsafe.Offsetof(C.struct_shim_spin{}.nwc1),
}
