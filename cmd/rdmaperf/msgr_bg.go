package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/clock"
	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/perf"
	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// msgr_lat --msgr_bg_bytes: a second connection between the same two
// messengers streams data client -> server while the ping-pong runs (issue
// 9: a ping-pong's latency while another connection on the same worker
// sends 64 MiB). Both messengers then run one worker (ms_async_op_threads=1,
// see msgrConfig), so the two connections share it on each side.
const (
	msgBg    = 0x7105 // client -> server, discarded
	msgBgAck = 0x7106 // server -> client, Tid = background bytes received

	bgMsgSize = 64 << 10
	// bgWindow bounds the background messages in flight (1 MiB): enough to
	// keep the link busy, few enough that a ring of messages can be reused.
	bgWindow = 16
)

// bgPort spells the server's port with a leading zero: the messenger keeps
// one connection per target string, so the same address written another way
// opens a second connection to the same messenger, which both stacks
// resolve (net.ResolveTCPAddr) to the same port.
func bgPort(port string) string { return "0" + port }

// bgStream is the client's background sender. The test loop owns sent,
// msgs and the ring between runs; during a run the stream goroutine does.
// acked is written by the worker goroutine (FastDispatch of the server's
// acknowledgements).
type bgStream struct {
	msgr.BaseDispatcher
	conn  *msgr.Connection
	ring  [bgWindow]msgr.Message
	buf   []byte
	msgs  uint64        // messages sent (the ring's index)
	sent  uint64        // bytes sent
	acked atomic.Uint64 // bytes the server has received
	kick  chan struct{} // an acknowledgement arrived (capacity 1)
}

// openBgStream opens the background connection beside ping (to the same
// server, through the same messenger m); bg must be m's dispatcher already.
func openBgStream(m *msgr.Messenger, bg *bgStream, host, port string, ping *msgr.Connection) error {
	c, err := m.ConnectTo(msgr.EntityTypeOSD, net.JoinHostPort(host, bgPort(port)))
	if err != nil {
		return fmt.Errorf("rdmaperf: background connection: %w", err)
	}
	if c == ping {
		return errors.New("rdmaperf: the messenger gave the ping-pong's connection for the background target")
	}
	bg.conn = c
	return nil
}

func newBgStream(budget int) *bgStream {
	return &bgStream{buf: make([]byte, min(budget, bgMsgSize)), kick: make(chan struct{}, 1)}
}

func (b *bgStream) CanFastDispatch(m *msgr.Message) bool { return m.Type == msgBgAck }
func (b *bgStream) FastDispatch(m *msgr.Message) {
	b.acked.Store(m.Tid)
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// bgRun is one background run beside one size's ping-pong.
type bgRun struct {
	b      *bgStream
	base   uint64 // b.sent when the run began
	budget uint64 // bytes
	cancel context.CancelFunc
	done   chan error
	// b.acked and clock.Now when the measurement began and ended
	ackedStart, ackedEnd uint64
	start, end           int64
}

// start starts streaming budget bytes and returns once the server has
// received the first message, so that the measurement begins with the
// stream flowing.
func (b *bgStream) start(ctx context.Context, budget int) (*bgRun, error) {
	ctx, cancel := context.WithCancel(ctx)
	r := &bgRun{b: b, base: b.sent, budget: uint64(budget), cancel: cancel, done: make(chan error, 1)}
	first := make(chan struct{})
	go func() { r.done <- r.stream(ctx, first) }()
	select {
	case <-first:
		return r, nil
	case err := <-r.done:
		if err == nil {
			// The whole budget already arrived (first was closed before):
			// leave the result to wait.
			r.done <- nil
			return r, nil
		}
		cancel()
		return nil, fmt.Errorf("rdmaperf: background connection: %w", err)
	}
}

// stream sends the run's budget with at most bgWindow messages
// unacknowledged and returns once the server has received it all (so that
// the next run may reuse the ring). It closes first at the first
// acknowledgement.
//
// Every message of a run but its last is full, and a run ends with nothing
// in flight, so fewer than bgWindow full messages' bytes unacknowledged
// means the message that last used a ring slot has arrived.
func (r *bgRun) stream(ctx context.Context, first chan struct{}) error {
	b := r.b
	end := r.base + r.budget
	window := uint64(bgWindow * len(b.buf))
	timer := time.NewTimer(msgrWait)
	defer timer.Stop()
	for {
		for b.sent < end && b.sent-b.acked.Load() < window {
			data := b.buf[:min(uint64(len(b.buf)), end-b.sent)]
			slot := &b.ring[b.msgs%bgWindow]
			*slot = msgr.Message{Type: msgBg, Tid: b.msgs, Data: data}
			if err := b.conn.SendMessage(slot); err != nil {
				return err
			}
			b.msgs++
			b.sent += uint64(len(data))
		}
		acked := b.acked.Load()
		if first != nil && acked > r.base {
			close(first)
			first = nil
		}
		if acked >= end {
			return nil
		}
		timer.Reset(msgrWait)
		select {
		case <-b.kick:
		case <-timer.C:
			return fmt.Errorf("the server acknowledged no background message in %v", msgrWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// begin and finish bracket the measurement.
func (r *bgRun) begin()  { r.ackedStart, r.start = r.b.acked.Load(), clock.Now() }
func (r *bgRun) finish() { r.ackedEnd, r.end = r.b.acked.Load(), clock.Now() }

// wait returns once the whole budget is sent and acknowledged (abort:
// stops the stream at once) with the stream's error.
func (r *bgRun) wait(abort bool) error {
	if abort {
		r.cancel()
	}
	err := <-r.done
	r.cancel()
	if err != nil && !abort {
		return fmt.Errorf("rdmaperf: background connection: %w", err)
	}
	return nil
}

// record puts what the measurement moved into its row.
func (r *bgRun) record(lat *perf.LatResult) {
	moved := int64(r.ackedEnd - r.ackedStart)
	lat.BgBytesMoved = &moved
	if s := float64(r.end-r.start) / 1e9; s > 0 {
		lat.BgMBps = float64(moved) / s / 0x100000
	}
}

// bgNote is the stderr line of a row measured beside a background stream.
func bgNote(w io.Writer, p *perf.Params, lat perf.LatResult) {
	if lat.BgBytesMoved == nil || w == nil {
		return
	}
	fmt.Fprintf(w, "rdmaperf: %s %d B: the background connection moved %d of its %d bytes during the measurement (%.2f MB/sec)\n",
		lat.Test, lat.Bytes, *lat.BgBytesMoved, p.MsgrBgBytes, lat.BgMBps)
}
