package verbs

import (
	"fmt"
	"net/netip"
	"syscall"
)

// Opcode is a send work request opcode (enum ibv_wr_opcode).
type Opcode int32

// Send opcodes.
const (
	OpRDMAWrite        Opcode = 0
	OpRDMAWriteWithImm Opcode = 1
	OpSend             Opcode = 2
	OpSendWithImm      Opcode = 3
	OpRDMARead         Opcode = 4
)

var opcodeNames = map[Opcode]string{
	OpRDMAWrite: "RDMA_WRITE", OpRDMAWriteWithImm: "RDMA_WRITE_WITH_IMM",
	OpSend: "SEND", OpSendWithImm: "SEND_WITH_IMM", OpRDMARead: "RDMA_READ",
}

// String names the opcode as rdma-core spells it.
func (o Opcode) String() string {
	if s, ok := opcodeNames[o]; ok {
		return s
	}
	return fmt.Sprintf("Opcode(%d)", int32(o))
}

// SendFlags are enum ibv_send_flags.
type SendFlags int32

// Send flags.
const (
	SendFence     SendFlags = 1 << 0
	SendSignaled  SendFlags = 1 << 1
	SendSolicited SendFlags = 1 << 2
	SendInline    SendFlags = 1 << 3
)

// Access are enum ibv_access_flags for MRs and QPs.
type Access int32

// Access flags.
const (
	AccessLocalWrite   Access = 1 << 0
	AccessRemoteWrite  Access = 1 << 1
	AccessRemoteRead   Access = 1 << 2
	AccessRemoteAtomic Access = 1 << 3
)

// SGE is one scatter/gather element: a range of registered memory.
type SGE struct {
	Addr   uint64
	Length uint32
	LKey   uint32
}

// WorkRequest is one send-queue work request. Several are posted as one
// linked chain by QP.PostSend. ID is returned in the completion; it is an
// opaque integer the caller owns (typically an index into its own table).
type WorkRequest struct {
	ID     uint64
	Opcode Opcode
	Flags  SendFlags
	// SG lists the local memory to send (or to read into for OpRDMARead). It
	// may be empty (a zero-length SEND). The caller may reuse it after PostSend
	// returns.
	SG []SGE
	// Imm is the immediate data (host byte order) of the *_WITH_IMM opcodes.
	Imm uint32
	// RemoteAddr and RKey name the peer memory of RDMA WRITE/READ.
	RemoteAddr uint64
	RKey       uint32
}

// RecvRequest is one receive work request for a QP or an SRQ.
type RecvRequest struct {
	ID uint64
	SG []SGE
}

// WCOpcode is a work completion opcode (enum ibv_wc_opcode).
type WCOpcode int32

// Work completion opcodes.
const (
	WCSend            WCOpcode = 0
	WCRDMAWrite       WCOpcode = 1
	WCRDMARead        WCOpcode = 2
	WCRecv            WCOpcode = 1 << 7
	WCRecvRDMAWithImm WCOpcode = WCRecv + 1
)

var wcOpcodeNames = map[WCOpcode]string{
	WCSend: "SEND", WCRDMAWrite: "RDMA_WRITE", WCRDMARead: "RDMA_READ",
	WCRecv: "RECV", WCRecvRDMAWithImm: "RECV_RDMA_WITH_IMM",
}

// String names the opcode.
func (o WCOpcode) String() string {
	if s, ok := wcOpcodeNames[o]; ok {
		return s
	}
	return fmt.Sprintf("WCOpcode(%d)", int32(o))
}

// IsRecv reports whether the completion belongs to the receive queue.
func (o WCOpcode) IsRecv() bool { return o&WCRecv != 0 }

// WCStatus is a work completion status (enum ibv_wc_status). A non-success
// status is an error; its String comes from ibv_wc_status_str.
type WCStatus int32

// Work completion statuses.
const (
	WCSuccess          WCStatus = 0
	WCLocLenErr        WCStatus = 1
	WCLocQPOpErr       WCStatus = 2
	WCLocEECOpErr      WCStatus = 3
	WCLocProtErr       WCStatus = 4
	WCWRFlushErr       WCStatus = 5
	WCMWBindErr        WCStatus = 6
	WCBadRespErr       WCStatus = 7
	WCLocAccessErr     WCStatus = 8
	WCRemInvReqErr     WCStatus = 9
	WCRemAccessErr     WCStatus = 10
	WCRemOpErr         WCStatus = 11
	WCRetryExcErr      WCStatus = 12
	WCRNRRetryExcErr   WCStatus = 13
	WCLocRDDViolErr    WCStatus = 14
	WCRemInvRdReqErr   WCStatus = 15
	WCRemAbortErr      WCStatus = 16
	WCInvEECNErr       WCStatus = 17
	WCInvEECStateErr   WCStatus = 18
	WCFatalErr         WCStatus = 19
	WCRespTimeoutErr   WCStatus = 20
	WCGeneralErr       WCStatus = 21
	WCTMErr            WCStatus = 22
	WCTMRndvIncomplete WCStatus = 23
)

// Error makes a failed status usable as an error:
// errors.Is(wc.Err(), verbs.WCRNRRetryExcErr).
func (s WCStatus) Error() string { return "verbs: work completion: " + s.String() }

// WorkCompletion is one completion polled from a CQ.
type WorkCompletion struct {
	ID        uint64
	Status    WCStatus
	Opcode    WCOpcode
	VendorErr uint32
	ByteLen   uint32
	// Imm is the immediate data in host byte order; valid when HasImm.
	Imm    uint32
	HasImm bool
	QPNum  uint32
	SrcQP  uint32
}

// Err is nil for a successful completion and the WCStatus otherwise.
func (wc *WorkCompletion) Err() error {
	if wc.Status == WCSuccess {
		return nil
	}
	return wc.Status
}

// QPType is enum ibv_qp_type.
type QPType int32

// QP types.
const (
	QPTypeRC QPType = 2
	QPTypeUC QPType = 3
	QPTypeUD QPType = 4
)

// QPState is enum ibv_qp_state.
type QPState int32

// QP states.
const (
	QPStateReset QPState = 0
	QPStateInit  QPState = 1
	QPStateRTR   QPState = 2
	QPStateRTS   QPState = 3
	QPStateSQD   QPState = 4
	QPStateSQE   QPState = 5
	QPStateErr   QPState = 6
)

var qpStateNames = [...]string{"RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR"}

// String names the state.
func (s QPState) String() string {
	return nameOf(qpStateNames[:], s, "QPState")
}

// MTU is enum ibv_mtu.
type MTU int32

// Path MTUs.
const (
	MTU256  MTU = 1
	MTU512  MTU = 2
	MTU1024 MTU = 3
	MTU2048 MTU = 4
	MTU4096 MTU = 5
)

// Bytes is the MTU in bytes (0 if invalid).
func (m MTU) Bytes() int {
	if m < MTU256 || m > MTU4096 {
		return 0
	}
	return 128 << int(m)
}

// String is the MTU in bytes.
func (m MTU) String() string { return fmt.Sprint(m.Bytes()) }

// PortState is enum ibv_port_state.
type PortState int32

// Port states.
const (
	PortNop         PortState = 0
	PortDown        PortState = 1
	PortInit        PortState = 2
	PortArmed       PortState = 3
	PortActive      PortState = 4
	PortActiveDefer PortState = 5
)

var portStateNames = [...]string{"NOP", "DOWN", "INIT", "ARMED", "ACTIVE", "ACTIVE_DEFER"}

// String names the state as ibv_port_state_str does.
func (s PortState) String() string {
	return nameOf(portStateNames[:], s, "PortState")
}

// LinkLayer is the port's link layer.
type LinkLayer uint8

// Link layers.
const (
	LinkLayerUnspecified LinkLayer = 0
	LinkLayerInfiniBand  LinkLayer = 1
	LinkLayerEthernet    LinkLayer = 2
)

// String names the link layer.
func (l LinkLayer) String() string {
	switch l {
	case LinkLayerInfiniBand:
		return "InfiniBand"
	case LinkLayerEthernet:
		return "Ethernet"
	}
	return "Unspecified"
}

// GIDType is enum ibv_gid_type.
type GIDType uint32

// GID types.
const (
	GIDTypeIB     GIDType = 0
	GIDTypeRoCEv1 GIDType = 1
	GIDTypeRoCEv2 GIDType = 2
)

var gidTypeNames = [...]string{"IB", "RoCE v1", "RoCE v2"}

// String names the type as sysfs does.
func (t GIDType) String() string {
	return nameOf(gidTypeNames[:], t, "GIDType")
}

// GID is a 128-bit global identifier, in network byte order.
type GID [16]byte

// String formats the GID as an IPv6 address.
func (g GID) String() string { return netip.AddrFrom16(g).String() }

// IPv4 returns the IPv4 address of an IPv4-mapped GID (::ffff:a.b.c.d).
func (g GID) IPv4() (netip.Addr, bool) {
	a := netip.AddrFrom16(g)
	if !a.Is4In6() {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// IsZero reports whether every byte is zero.
func (g GID) IsZero() bool { return g == GID{} }

// Device describes an RDMA device found on the machine.
type Device struct {
	Name     string
	NodeGUID uint64
	// NodeType and Transport are enum ibv_node_type and ibv_transport_type.
	NodeType, Transport int
}

// DeviceAttr is the useful part of ibv_query_device.
type DeviceAttr struct {
	FWVer                                 string
	NodeGUID, SysImageGUID, MaxMRSize     uint64
	VendorID, VendorPartID, HWVer         uint32
	MaxQP, MaxQPWR, MaxSGE, MaxCQ, MaxCQE int
	MaxMR, MaxPD, MaxQPRdAtom             int
	MaxSRQ, MaxSRQWR, MaxSRQSGE           int
	PhysPortCnt                           int
}

// PortAttr is the useful part of ibv_query_port.
type PortAttr struct {
	State     PortState
	MaxMTU    MTU
	ActiveMTU MTU
	GIDTblLen int
	MaxMsgSz  uint32
	LID       uint16
	LinkLayer LinkLayer
}

// GIDEntry is one valid entry of a port's GID table.
type GIDEntry struct {
	Index int
	Port  int
	GID   GID
	Type  GIDType
	// NetdevIndex and Netdev name the network device the GID belongs to
	// (RoCE); 0 and "" when none.
	NetdevIndex int
	Netdev      string
}

// QPInitAttr describes a QP to create. Zero sizes get defaults (16 WRs, 1 SGE).
type QPInitAttr struct {
	SendCQ, RecvCQ *CQ
	// SRQ, when set, supplies receive buffers; MaxRecvWR/MaxRecvSGE are ignored.
	SRQ                    *SRQ
	MaxSendWR, MaxRecvWR   int
	MaxSendSGE, MaxRecvSGE int
	MaxInlineData          int
	// SigAll signals every send WR (sq_sig_all); otherwise only WRs with SendSignaled.
	SigAll bool
	// Type defaults to QPTypeRC.
	Type QPType
}

// QPCaps are the capacities the device actually granted.
type QPCaps struct {
	MaxSendWR, MaxRecvWR, MaxSendSGE, MaxRecvSGE, MaxInlineData int
}

// ConnParams are the attributes of the RESET→INIT→RTR→RTS transitions of an
// RC QP. Start from DefaultConnParams and override fields: zero is a valid
// value for several of them (RNRRetry 0 disables RNR retries).
type ConnParams struct {
	Port      int
	PKeyIndex int
	Access    Access

	RemoteQPN uint32
	RemotePSN uint32 // the peer's initial send PSN = our rq_psn
	LocalPSN  uint32 // our sq_psn
	RemoteGID GID
	DLID      uint16

	PathMTU         MTU
	IsGlobal        bool
	HopLimit        int
	SGIDIndex       int
	TrafficClass    int
	FlowLabel       int
	SL              int
	MinRNRTimer     int
	Timeout         int
	RetryCnt        int
	RNRRetry        int
	MaxRdAtomic     int
	MaxDestRdAtomic int
}

// DefaultConnParams returns Ceph's RC attributes (REFERENCE.md): port 1,
// path_mtu 1024, is_global 1, hop_limit 6, sgid_index 0, traffic_class 0,
// sl 0, min_rnr_timer 0x12, timeout 0x12, retry_cnt 7, rnr_retry 7,
// max_rd_atomic 1, max_dest_rd_atomic 1, local write + remote read/write access.
func DefaultConnParams() ConnParams {
	return ConnParams{
		Port:            1,
		Access:          AccessLocalWrite | AccessRemoteWrite | AccessRemoteRead,
		PathMTU:         MTU1024,
		IsGlobal:        true,
		HopLimit:        6,
		MinRNRTimer:     0x12,
		Timeout:         0x12,
		RetryCnt:        7,
		RNRRetry:        7,
		MaxRdAtomic:     1,
		MaxDestRdAtomic: 1,
	}
}

// SRQInitAttr describes a shared receive queue.
type SRQInitAttr struct {
	MaxWR, MaxSGE int
	// Limit arms the limit event at creation (0 = not armed).
	Limit int
}

// EventType is an async event type (enum ibv_event_type).
type EventType int32

// Async event types.
const (
	EventCQErr          EventType = 0
	EventQPFatal        EventType = 1
	EventQPReqErr       EventType = 2
	EventQPAccessErr    EventType = 3
	EventCommEst        EventType = 4
	EventSQDrained      EventType = 5
	EventPathMig        EventType = 6
	EventPathMigErr     EventType = 7
	EventDeviceFatal    EventType = 8
	EventPortActive     EventType = 9
	EventPortErr        EventType = 10
	EventLIDChange      EventType = 11
	EventPKeyChange     EventType = 12
	EventSMChange       EventType = 13
	EventSRQErr         EventType = 14
	EventSRQLimit       EventType = 15
	EventLastWQEReached EventType = 16
	EventClientRereg    EventType = 17
	EventGIDChange      EventType = 18
	EventWQFatal        EventType = 19
)

// AsyncEvent is one device async event, already acknowledged. The object it
// concerns is set when it is still open (and was created by this package).
type AsyncEvent struct {
	Type  EventType
	Port  int    // port events
	QPNum uint32 // QP events
	QP    *QP
	CQ    *CQ
	SRQ   *SRQ
}

// PortSpace is an rdma_cm port space.
type PortSpace int

// Port spaces.
const (
	PSTCP PortSpace = 0x0106
	PSUDP PortSpace = 0x0111
)

// CMEventType is enum rdma_cm_event_type.
type CMEventType int32

// rdma_cm event types.
const (
	CMAddrResolved    CMEventType = 0
	CMAddrError       CMEventType = 1
	CMRouteResolved   CMEventType = 2
	CMRouteError      CMEventType = 3
	CMConnectRequest  CMEventType = 4
	CMConnectResponse CMEventType = 5
	CMConnectError    CMEventType = 6
	CMUnreachable     CMEventType = 7
	CMRejected        CMEventType = 8
	CMEstablished     CMEventType = 9
	CMDisconnected    CMEventType = 10
	CMDeviceRemoval   CMEventType = 11
	CMMulticastJoin   CMEventType = 12
	CMMulticastError  CMEventType = 13
	CMAddrChange      CMEventType = 14
	CMTimewaitExit    CMEventType = 15
)

// CMConnParam is struct rdma_conn_param.
type CMConnParam struct {
	ResponderResources, InitiatorDepth uint8
	FlowControl                        uint8
	RetryCount, RNRRetryCount          uint8
	PrivateData                        []byte
}

// DefaultCMConnParam is Ceph's rdma_cm parameters: retry_count 7, rnr_retry 7,
// one outstanding RDMA READ each way.
func DefaultCMConnParam() CMConnParam {
	return CMConnParam{ResponderResources: 1, InitiatorDepth: 1, RetryCount: 7, RNRRetryCount: 7}
}

// Counters count crossings into the shim's batched entry points since the
// process started (zero without cgo).
type Counters struct {
	PostSendCalls, PostSendWRs uint64
	PostRecvCalls, PostRecvWRs uint64
	PollCalls, PollWCs         uint64
}

// check rejects values that do not fit the fields of struct ibv_qp_attr
// (which would otherwise be truncated silently), with an *Error wrapping EINVAL.
func (p *ConnParams) check() error {
	for _, f := range []struct {
		name   string
		v, max int
	}{
		{"Port", p.Port, 255}, {"PKeyIndex", p.PKeyIndex, 0xffff}, {"HopLimit", p.HopLimit, 255},
		{"SGIDIndex", p.SGIDIndex, 255}, {"TrafficClass", p.TrafficClass, 255},
		{"FlowLabel", p.FlowLabel, 0xfffff}, {"SL", p.SL, 15}, {"MinRNRTimer", p.MinRNRTimer, 31},
		{"Timeout", p.Timeout, 31}, {"RetryCnt", p.RetryCnt, 7}, {"RNRRetry", p.RNRRetry, 7},
		{"MaxRdAtomic", p.MaxRdAtomic, 255}, {"MaxDestRdAtomic", p.MaxDestRdAtomic, 255},
		{"PathMTU", int(p.PathMTU), int(MTU4096)},
	} {
		if f.v < 0 || f.v > f.max {
			return &Error{Op: "check ConnParams", Errno: syscall.EINVAL, Detail: fmt.Sprintf("%s %d out of range [0,%d]", f.name, f.v, f.max)}
		}
	}
	return nil
}

// nameOf is names[v], or TYPE(v) for a value the table does not name.
func nameOf[T ~int32 | ~uint32](names []string, v T, typ string) string {
	if i := int64(v); i >= 0 && i < int64(len(names)) {
		return names[i]
	}
	return fmt.Sprintf("%s(%d)", typ, int64(v))
}
