package verbs

import (
	"sync"
	"sync/atomic"
	"weak"
)

// Context is an open RDMA device (struct ibv_context). Close fails with
// ErrBusy while PDs, CQs or completion channels made from it are open:
// close children first. A Context obtained from CMID.Context belongs to
// librdmacm; its Close does nothing.
type Context struct {
	n       *node
	h       uintptr
	owned   bool
	name    string
	asyncFD int

	regMu sync.Mutex
	qps   map[uintptr]weak.Pointer[QP]
	cqs   map[uintptr]weak.Pointer[CQ]
	srqs  map[uintptr]weak.Pointer[SRQ]
}

// PD is a protection domain. Close fails with ErrBusy while MRs, QPs or SRQs
// made from it are open.
type PD struct {
	n   *node
	h   uintptr
	ctx *Context
}

// Buffer is memory the Go GC never moves or frees (C memory, page aligned),
// suitable for registration. Free fails with ErrBusy while an MR covers it.
type Buffer struct {
	n    *node
	p    uintptr
	size int
}

// MR is a registered memory region over (part of) a Buffer.
type MR struct {
	n          *node
	h          uintptr
	buf        *Buffer
	addr       uintptr
	length     int
	lkey, rkey uint32
}

// CompChannel is a completion channel with a non-blocking fd. Close fails with
// ErrBusy while CQs use it.
type CompChannel struct {
	n   *node
	h   uintptr
	fd  int
	ctx *Context
}

// CQ is a completion queue. Poll is meant for one goroutine (the CQ's owner).
type CQ struct {
	n       *node
	h       uintptr
	ctx     *Context
	ch      *CompChannel
	size    int
	unacked *atomic.Int64 // CQ events got but not yet acknowledged
	x       cqExtra
}

// QP is a queue pair. PostSend and PostRecv may be called from several
// goroutines (each side has its own lock and reused C arrays).
type QP struct {
	n      *node
	h      uintptr
	qpn    uint32
	ctx    *Context
	caps   QPCaps
	qpType QPType
	srq    *SRQ
	cmid   *CMID
	// sendMu and recvMu are held for a post (and LatLoop); Close takes
	// both, in that order, so that no post is in flight when it destroys.
	sendMu sync.Mutex
	recvMu sync.Mutex
	x      qpExtra
}

// SRQ is a shared receive queue.
type SRQ struct {
	n     *node
	h     uintptr
	ctx   *Context
	maxWR int
	mu    sync.Mutex
	x     srqExtra
}

// CMEventChannel is an rdma_cm event channel with a non-blocking fd. Close
// fails with ErrBusy while CMIDs on it are open.
type CMEventChannel struct {
	n   *node
	h   uintptr
	fd  int
	mu  sync.Mutex
	ids map[uintptr]*CMID
}

// CMID is an rdma_cm identifier. Close fails with ErrBusy while its QP is open
// or while events reported for it are not acknowledged.
type CMID struct {
	n       *node
	h       uintptr
	mu      sync.Mutex
	ch      *CMEventChannel
	qp      *QP
	unacked atomic.Int32
}

// CMEvent is one rdma_cm event. It must be acknowledged with Ack (the ID
// cannot be destroyed before its events are acknowledged).
type CMEvent struct {
	Type CMEventType
	// ID is the id the event is about; for CMConnectRequest a new id for the
	// incoming connection (accept or reject it, then Close it eventually).
	ID *CMID
	// ListenID is the listening id, for CMConnectRequest.
	ListenID *CMID
	// Status is the event's status: a negative errno, or for CMRejected the
	// peer's reject reason.
	Status      int
	PrivateData []byte

	ev    uintptr
	acked atomic.Bool
}
