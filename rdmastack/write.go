package rdmastack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// RDMA WRITE of large payloads (ms_async_rdma_send_msg_size > 0). The wire
// format is documented in doc.go; this file holds its codec and the
// per-connection state.

// Parameters of the receive buffers a connection advertises.
const (
	// writeSlots is how many receive buffers each connection registers and
	// advertises.
	writeSlots = 8
	// writeSlotChunks sizes a buffer in TX chunks (ms_async_rdma_buffer_size).
	writeSlotChunks = 8
	// writeMaxSlot bounds a buffer's size (the imm's length field has 22
	// bits).
	writeMaxSlot = 2 << 20
)

// ExtMagic starts the RDMA WRITE extension record on the side channel.
const ExtMagic = "AMWR"

// extVersion is the record version this package writes and reads.
const extVersion = 1

// extHeaderLen is the fixed part of the record; each buffer adds extSlotLen.
const (
	extHeaderLen = 12
	extSlotLen   = 16
	// ExtMaxSlots bounds the buffers one record may advertise.
	ExtMaxSlots = 64
)

// Ext is the RDMA WRITE extension record each side sends on the TCP side
// channel after Ceph's three handshake steps when its
// ms_async_rdma_send_msg_size is above 0: its threshold and the receive
// buffers the peer may write into.
type Ext struct {
	Threshold uint32
	Slots     []ExtSlot
}

// ExtSlot is one advertised receive buffer.
type ExtSlot struct {
	Addr uint64
	RKey uint32
	Len  uint32
}

// ErrBadExt is wrapped by every extension record parsing error.
var ErrBadExt = errors.New("rdmastack: malformed RDMA WRITE extension record")

// Marshal encodes e (big endian; see doc.go).
func (e Ext) Marshal() []byte {
	b := make([]byte, extHeaderLen, extHeaderLen+extSlotLen*len(e.Slots))
	copy(b, ExtMagic)
	b[4] = extVersion
	b[5] = byte(len(e.Slots))
	binary.BigEndian.PutUint32(b[8:], e.Threshold)
	for _, s := range e.Slots {
		b = binary.BigEndian.AppendUint64(b, s.Addr)
		b = binary.BigEndian.AppendUint32(b, s.RKey)
		b = binary.BigEndian.AppendUint32(b, s.Len)
	}
	return b
}

// parseExtHeader checks the fixed part and returns the slot count.
func parseExtHeader(b []byte) (n int, threshold uint32, err error) {
	if len(b) < extHeaderLen {
		return 0, 0, fmt.Errorf("%w: %d bytes, want at least %d", ErrBadExt, len(b), extHeaderLen)
	}
	if string(b[:4]) != ExtMagic {
		return 0, 0, fmt.Errorf("%w: magic %q, want %q", ErrBadExt, b[:4], ExtMagic)
	}
	if b[4] != extVersion {
		return 0, 0, fmt.Errorf("%w: version %d, want %d", ErrBadExt, b[4], extVersion)
	}
	n = int(b[5])
	if n == 0 || n > ExtMaxSlots {
		return 0, 0, fmt.Errorf("%w: %d buffers, want 1..%d", ErrBadExt, n, ExtMaxSlots)
	}
	if b[6] != 0 || b[7] != 0 {
		return 0, 0, fmt.Errorf("%w: reserved bytes %#x %#x are not zero", ErrBadExt, b[6], b[7])
	}
	threshold = binary.BigEndian.Uint32(b[8:])
	if threshold == 0 {
		return 0, 0, fmt.Errorf("%w: threshold 0", ErrBadExt)
	}
	return n, threshold, nil
}

// ParseExt parses exactly one extension record.
func ParseExt(b []byte) (Ext, error) {
	n, th, err := parseExtHeader(b)
	if err != nil {
		return Ext{}, err
	}
	if want := extHeaderLen + n*extSlotLen; len(b) != want {
		return Ext{}, fmt.Errorf("%w: %d bytes for %d buffers, want %d", ErrBadExt, len(b), n, want)
	}
	e := Ext{Threshold: th, Slots: make([]ExtSlot, n)}
	for i := range e.Slots {
		p := b[extHeaderLen+i*extSlotLen:]
		s := ExtSlot{Addr: binary.BigEndian.Uint64(p), RKey: binary.BigEndian.Uint32(p[8:]), Len: binary.BigEndian.Uint32(p[12:])}
		if s.Len == 0 || s.Len > writeMaxSlot {
			return Ext{}, fmt.Errorf("%w: buffer %d of %d bytes, want 1..%d", ErrBadExt, i, s.Len, writeMaxSlot)
		}
		e.Slots[i] = s
	}
	return e, nil
}

// Immediate data of the WRITE mode: the top two bits say what it is.
const (
	immKindShift = 30
	immKindWrite = 1 // RDMA_WRITE_WITH_IMM: slot, length of its contents
	immKindAdv   = 2 // zero-length SEND_WITH_IMM: the slot is free again
	immSlotShift = 22
	immSlotMask  = 0xff
	immLenMask   = 1<<22 - 1
)

func immWrite(slot, n int) uint32 {
	return immKindWrite<<immKindShift | uint32(slot)<<immSlotShift | uint32(n)
}

func immAdv(slot int) uint32 { return immKindAdv<<immKindShift | uint32(slot)<<immSlotShift }

func immKind(imm uint32) uint32 { return imm >> immKindShift }
func immSlot(imm uint32) int    { return int(imm>>immSlotShift) & immSlotMask }
func immLen(imm uint32) int     { return int(imm & immLenMask) }

// noChunk marks a received item whose RX chunk was already given back.
const noChunk = ^uint32(0)

// writeState is a connection's WRITE mode: the receive buffers it
// registered and advertised, and what it knows of the peer's.
type writeState struct {
	threshold int
	slotSize  int
	buf       *verbs.Buffer
	mr        *verbs.MR

	peer     []ExtSlot // the peer's buffers (nil until its record arrived)
	peerFree []uint8   // free peer buffers (a stack)
	peerBusy []bool

	cur    int // peer slot being filled by this Send call, -1 none
	curOff int
	wopen  bool // the last pend entry is a WRITE chunk of cur that takes bytes

	adPend []uint32 // advertisements (imm) not yet posted
	freed  bool
}

// newWriteState registers the connection's receive buffers.
func newWriteState(pd *verbs.PD, threshold, chunkSize int) (*writeState, error) {
	size := min(writeSlotChunks*chunkSize, writeMaxSlot)
	buf, err := verbs.AllocBuffer(writeSlots * size)
	if err != nil {
		return nil, fmt.Errorf("rdmastack: WRITE receive buffers: %w", err)
	}
	mr, err := pd.RegMR(buf, verbs.AccessLocalWrite|verbs.AccessRemoteWrite)
	if err != nil {
		_ = buf.Free()
		return nil, fmt.Errorf("rdmastack: registering WRITE receive buffers (%d bytes): %w", writeSlots*size, err)
	}
	return &writeState{threshold: threshold, slotSize: size, buf: buf, mr: mr, cur: -1}, nil
}

// release deregisters and frees the receive buffers (once the QP is
// destroyed: the peer can no longer write into them). Idempotent, nil-safe.
func (w *writeState) release() {
	if w == nil || w.freed {
		return
	}
	w.freed = true
	_ = w.mr.Close()
	_ = w.buf.Free()
}

// ext is the record advertising every receive buffer.
func (w *writeState) ext() Ext {
	e := Ext{Threshold: uint32(w.threshold), Slots: make([]ExtSlot, writeSlots)}
	for i := range e.Slots {
		e.Slots[i] = ExtSlot{Addr: w.mr.Addr() + uint64(i*w.slotSize), RKey: w.mr.RKey(), Len: uint32(w.slotSize)}
	}
	return e
}

// slot is receive buffer i's memory.
func (w *writeState) slot(i int) []byte {
	return w.buf.Bytes()[i*w.slotSize : (i+1)*w.slotSize]
}

// setPeer records the peer's record: every buffer in it is free.
func (w *writeState) setPeer(e Ext) {
	w.peer = e.Slots
	w.peerBusy = make([]bool, len(e.Slots))
	w.peerFree = make([]uint8, 0, len(e.Slots))
	for i := len(e.Slots) - 1; i >= 0; i-- {
		w.peerFree = append(w.peerFree, uint8(i))
	}
}

// takePeer takes a free peer buffer.
func (w *writeState) takePeer() (int, bool) {
	if len(w.peerFree) == 0 {
		return 0, false
	}
	s := int(w.peerFree[len(w.peerFree)-1])
	w.peerFree = w.peerFree[:len(w.peerFree)-1]
	w.peerBusy[s] = true
	return s, true
}

// putPeer marks peer buffer s free; false when s was not busy (a protocol
// error).
func (w *writeState) putPeer(s int) bool {
	if s >= len(w.peer) || !w.peerBusy[s] {
		return false
	}
	w.peerBusy[s] = false
	w.peerFree = append(w.peerFree, uint8(s))
	return true
}

// errWriteMismatch names the option when the two sides disagree.
func errWriteMismatch(local int, what string) error {
	if local > 0 {
		return fmt.Errorf("rdmastack: ms_async_rdma_send_msg_size = %d here but %s: set ms_async_rdma_send_msg_size on both sides or on neither", local, what)
	}
	return fmt.Errorf("rdmastack: ms_async_rdma_send_msg_size = 0 here but %s: set ms_async_rdma_send_msg_size on both sides or on neither", what)
}

// writeExt sends our record (the client sends it with its ack meta).
func (c *conn) writeExtWith(prefix []byte, deadline time.Time) error {
	rec := append(prefix, c.wr.ext().Marshal()...)
	_ = c.tcp.SetWriteDeadline(deadline)
	if _, err := c.tcp.Write(rec); err != nil {
		return err
	}
	c.d.C.AdvertsSent.Add(writeSlots)
	return nil
}

// readExt reads the peer's record and enables WRITE toward it.
func (c *conn) readExt(deadline time.Time) error {
	_ = c.tcp.SetReadDeadline(deadline)
	var hdr [extHeaderLen]byte
	if _, err := io.ReadFull(c.tcp, hdr[:]); err != nil {
		what := "the peer sent no RDMA WRITE extension record after the handshake"
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
			what = "the peer closed the side channel instead of sending its RDMA WRITE extension record (its ms_async_rdma_send_msg_size is probably 0)"
		}
		return &hsError{msg: errWriteMismatch(c.wr.threshold, what).Error(), err: err}
	}
	n, _, err := parseExtHeader(hdr[:])
	if err != nil {
		return errors.Join(errWriteMismatch(c.wr.threshold, "the peer's side channel says something else after the handshake"), err)
	}
	rec := make([]byte, extHeaderLen+n*extSlotLen)
	copy(rec, hdr[:])
	if _, err := io.ReadFull(c.tcp, rec[extHeaderLen:]); err != nil {
		return &hsError{msg: "rdmastack: reading the RDMA WRITE extension record", err: err}
	}
	e, err := ParseExt(rec)
	if err != nil {
		return err
	}
	c.lock()
	c.wr.setPeer(e)
	c.unlock()
	c.d.C.AdvertsRecv.Add(uint64(len(e.Slots)))
	return nil
}

// extMismatchIn reports whether b (bytes read from the side channel by a
// side whose WRITE mode is off) starts an extension record.
func extMismatchIn(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	k := min(len(b), len(ExtMagic))
	return string(b[:k]) == ExtMagic[:k]
}
