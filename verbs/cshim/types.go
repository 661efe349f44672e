package cshim

import "unsafe"

// Counters counts crossings into the batched entry points since process start.
type Counters struct {
	PostSendCalls, PostSendWRs uint64
	PostRecvCalls, PostRecvWRs uint64
	PollCalls, PollWCs         uint64
}

// DeviceInfo names a device found by ibv_get_device_list.
type DeviceInfo struct {
	Name          string
	NodeGUID      uint64 // network byte order, as libibverbs returns it
	NodeType      int
	TransportType int
}

// DeviceAttr mirrors the useful part of struct ibv_device_attr.
type DeviceAttr struct {
	FWVer                                    string
	NodeGUID, SysImageGUID                   uint64
	MaxMRSize                                uint64
	VendorID, VendorPartID, HWVer            uint32
	MaxQP, MaxQPWR, MaxSGE, MaxCQ, MaxCQE    int
	MaxMR, MaxPD, MaxQPRdAtom                int
	MaxSRQ, MaxSRQWR, MaxSRQSGE, PhysPortCnt int
}

// PortAttr mirrors the useful part of struct ibv_port_attr.
type PortAttr struct {
	State, MaxMTU, ActiveMTU, GIDTblLen int
	MaxMsgSz                            uint32
	LID                                 uint16
	LinkLayer, ActiveSpeed, ActiveWidth uint8
	PhysState                           uint8
}

// GIDEntry mirrors struct ibv_gid_entry.
type GIDEntry struct {
	GID         [16]byte
	Index       uint32
	Port        uint32
	Type        uint32 // enum ibv_gid_type
	NdevIfindex uint32
}

// WC mirrors struct shim_wc byte for byte; WCArray.View returns slices of it over C memory.
type WC struct {
	WRID         uint64
	Status       int32
	Opcode       int32
	VendorErr    uint32
	ByteLen      uint32
	Imm          uint32
	QPNum        uint32
	SrcQP        uint32
	WCFlags      uint32
	PkeyIndex    uint16
	SLID         uint16
	SL           uint8
	DLIDPathBits uint8
	_            [6]uint8
}

// WCArray is a reused C array of work completions.
type WCArray struct {
	p    unsafe.Pointer // struct shim_wc_array
	spin *Spin
	view []WC
}

// Cap is the array's capacity.
func (a *WCArray) Cap() int { return len(a.view) }

// View is the array's contents as Go values living in C memory.
func (a *WCArray) View() []WC { return a.view }

// Spin mirrors struct shim_spin: the inputs and outputs of WCArray.Spin, in
// C memory next to the array (one block per array).
type Spin struct {
	WatchAddr uint64 // 0, or the address of a byte the wait also needs
	SendN     int32  // send WRs of the batch to post (0: none)
	RecvN     int32  // receive WRs of the batch to post first (0: none)
	WantSend  int32  // send-queue completions to wait for
	WantRecv  int32  // receive completions to wait for
	Spins     int32  // empty polling rounds before returning
	WatchWant uint8  // the value the watched byte must show
	_         [3]uint8
	NWC       int32  // completions in View()[:NWC]
	GotSend   int32  // of which send-queue completions
	GotRecv   int32  // and receive completions
	Watched   int32  // 1: the watched byte showed WatchWant
	Done      int32  // 1: the wait was satisfied
	Stage     int32  // on a post failure: 1 receive post, 2 send post
	Bad       int32  // and the index of the first WR not posted
	Rounds    int32  // polling rounds made
	Limit     int32  // input: at most this many completions (0: the array's cap)
	WantAny   int32  // input: and at least this many completions of any kind
	MarkAddr  uint64 // input, post-after mode: 0, or a byte to set just before the post
	Stamp     uint64 // output, post-after mode: the clock just before the post
	SendAfter int32  // input: 1 posts the send WRs once the wait is met (not before it)
	StampTSC  int32  // input: 1 stamps with the TSC (x86), else CLOCK_MONOTONIC ns
	Sent      int32  // output: 1 when the send WRs were posted
	MarkVal   uint8  // input: the value stored at MarkAddr
	_         [3]uint8
	MaxTicks  uint64 // input: 0, or return once the clock (see StampTSC) advanced this much
	TimedOut  int32  // output: 1 when MaxTicks ended the step
	Limit1    int32  // input: 0, or at most this many completions from cq (the rest is cq2's room)
	NWC1      int32  // output: of the NWC, this many came from cq (View()[:NWC1] in a one-round step)
	_         int32
}

// SpinBlock is the array's shim_spin block (C memory): fill the inputs,
// call Spin, read the outputs.
func (a *WCArray) SpinBlock() *Spin { return a.spin }

// SGE mirrors struct shim_sge.
type SGE struct {
	Addr   uint64
	Length uint32
	LKey   uint32
}

// SendWR mirrors struct shim_send_wr.
type SendWR struct {
	WRID       uint64
	RemoteAddr uint64
	RKey       uint32
	Imm        uint32
	Opcode     int32
	Flags      int32
	NumSGE     int32
	SGEOff     int32
}

// RecvWR mirrors struct shim_recv_wr.
type RecvWR struct {
	WRID   uint64
	NumSGE int32
	SGEOff int32
}

// SendBatch is a reused C array of send WRs and their SGEs; fill WR and SGE, then Post.
type SendBatch struct {
	p   unsafe.Pointer // struct shim_send_batch
	WR  []SendWR
	SGE []SGE
}

// RecvBatch is a reused C array of receive WRs and their SGEs.
type RecvBatch struct {
	p   unsafe.Pointer // struct shim_recv_batch
	WR  []RecvWR
	SGE []SGE
}

// QPInit describes a QP to create; Create* write the actual caps back.
type QPInit struct {
	SendCQ, RecvCQ, SRQ               uintptr
	MaxSendWR, MaxRecvWR              uint32
	MaxSendSGE, MaxRecvSGE, MaxInline uint32
	Type                              int
	SigAll                            bool
}

// QPParams mirrors struct shim_qp_params (the attributes of INIT, RTR and RTS).
type QPParams struct {
	DGID                              [16]byte
	DestQPNum, RQPSN, SQPSN           uint32
	Port, PathMTU, IsGlobal, HopLimit int
	SGIDIndex, TrafficClass           int
	FlowLabel, SL, DLID               int
	MinRNRTimer, Timeout, RetryCnt    int
	RNRRetry, MaxRdAtomic             int
	MaxDestRdAtomic, Access, PKeyIdx  int
}

// AsyncEvent is a copied (and already acknowledged) ibv_async_event.
type AsyncEvent struct {
	Type, Port  int
	QPNum       uint32
	QP, CQ, SRQ uintptr
}

// ConnParam mirrors struct rdma_conn_param.
type ConnParam struct {
	ResponderResources, InitiatorDepth uint8
	FlowControl, RetryCount, RNRRetry  uint8
	PrivateData                        []byte // at most 196 bytes
}

// CMEvent is a copy of an rdma_cm_event; Event must be passed to AckCMEvent.
type CMEvent struct {
	Event, ID, ListenID, Verbs uintptr
	Type, Status               int
	PrivateData                [256]byte
	PrivateDataLen             int
}
