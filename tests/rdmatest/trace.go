package rdmatest

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// TracedTransport is the transport name (ms_async_transport_type) of a stack
// that wraps the rdma stack and records, per connected socket, the
// transport connect and the msgr2 banner and frames that cross it in each
// direction (see SockTrace). The messenger cannot tell it from rdma: every
// byte still goes through the rdma stack's sockets.
const TracedTransport = "rdmatrace"

// TracedInner is the transport TracedTransport wraps.
const TracedInner = "rdma"

func init() {
	netstack.Register(TracedTransport, func(cfg *config.Config) (netstack.Stack, error) {
		c := *cfg
		c.TransportType = TracedInner
		c.TransportFallback = false
		inner, err := netstack.New(&c)
		if err != nil {
			return nil, err
		}
		s := &TracedStack{inner: inner}
		for _, w := range inner.Workers() {
			s.workers = append(s.workers, &tracedWorker{Worker: w, s: s})
		}
		return s, nil
	})
}

// TracedStack is the stack behind TracedTransport.
type TracedStack struct {
	inner   netstack.Stack
	workers []netstack.Worker

	mu    sync.Mutex
	socks []*SockTrace
}

// Traced returns s as a *TracedStack, or nil when s is another stack.
func Traced(s netstack.Stack) *TracedStack {
	ts, _ := s.(*TracedStack)
	return ts
}

// Inner is the wrapped stack (its Name is TracedInner).
func (s *TracedStack) Inner() netstack.Stack { return s.inner }

// Sockets returns the traces of every socket this stack connected or
// accepted (and failed connects), oldest first.
func (s *TracedStack) Sockets() []*SockTrace {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*SockTrace(nil), s.socks...)
}

func (s *TracedStack) add(t *SockTrace) {
	s.mu.Lock()
	s.socks = append(s.socks, t)
	s.mu.Unlock()
}

// Name implements netstack.Stack.
func (s *TracedStack) Name() string { return TracedTransport }

// Start implements netstack.Stack.
func (s *TracedStack) Start() error { return s.inner.Start() }

// Stop implements netstack.Stack.
func (s *TracedStack) Stop() error { return s.inner.Stop() }

// Workers implements netstack.Stack.
func (s *TracedStack) Workers() []netstack.Worker { return s.workers }

// PickWorker implements netstack.Stack.
func (s *TracedStack) PickWorker() netstack.Worker { return s.wrap(s.inner.PickWorker()) }

func (s *TracedStack) wrap(w netstack.Worker) netstack.Worker {
	for _, tw := range s.workers {
		if tw.(*tracedWorker).Worker == w {
			return tw
		}
	}
	return w
}

type tracedWorker struct {
	netstack.Worker
	s *TracedStack
}

func (w *tracedWorker) Listen(addr string, opts netstack.SocketOptions) (netstack.ServerSocket, error) {
	ss, err := w.Worker.Listen(addr, opts)
	if err != nil {
		return nil, err
	}
	return &tracedServer{ServerSocket: ss, s: w.s}, nil
}

func (w *tracedWorker) Connect(addr string, opts netstack.SocketOptions) (netstack.ConnectedSocket, error) {
	tr := newSockTrace(addr, true)
	w.s.add(tr)
	cs, err := w.Worker.Connect(addr, opts)
	if err != nil {
		tr.record(DirLocal, "connect-error", err.Error())
		return nil, err
	}
	tr.record(DirLocal, "connect", fmt.Sprintf("%v -> %v", cs.LocalAddr(), cs.RemoteAddr()))
	return &tracedSock{ConnectedSocket: cs, tr: tr}, nil
}

type tracedServer struct {
	netstack.ServerSocket
	s *TracedStack
}

func (ss *tracedServer) Accept(opts netstack.SocketOptions, w netstack.Worker) (netstack.ConnectedSocket, error) {
	if tw, ok := w.(*tracedWorker); ok {
		w = tw.Worker
	}
	cs, err := ss.ServerSocket.Accept(opts, w)
	if err != nil {
		return nil, err
	}
	tr := newSockTrace(fmt.Sprint(cs.RemoteAddr()), false)
	tr.record(DirLocal, "accept", fmt.Sprintf("%v <- %v", cs.LocalAddr(), cs.RemoteAddr()))
	ss.s.add(tr)
	return &tracedSock{ConnectedSocket: cs, tr: tr}, nil
}

type tracedSock struct {
	netstack.ConnectedSocket
	tr *SockTrace
}

func (c *tracedSock) Read(p []byte) (int, error) {
	n, err := c.ConnectedSocket.Read(p)
	if n > 0 {
		c.tr.feed(DirRecv, p[:n])
	}
	if err != nil && n == 0 && !isWouldBlock(err) {
		c.tr.record(DirRecv, "read-error", err.Error())
	}
	return n, err
}

func (c *tracedSock) Send(bufs [][]byte, more bool) (int, error) {
	n, err := c.ConnectedSocket.Send(bufs, more)
	left := n
	for _, b := range bufs {
		if left <= 0 {
			break
		}
		if len(b) > left {
			b = b[:left]
		}
		c.tr.feed(DirSend, b)
		left -= len(b)
	}
	return n, err
}

func (c *tracedSock) Close() error {
	c.tr.record(DirLocal, "close", "")
	return c.ConnectedSocket.Close()
}

func (c *tracedSock) ReadinessMasks() (read, write netstack.EventMask) {
	return netstack.ReadinessMasks(c.ConnectedSocket)
}

func isWouldBlock(err error) bool { return err == netstack.ErrWouldBlock }

// Trace directions.
const (
	DirLocal = "local" // transport events (connect, accept, close, errors)
	DirSend  = "send"  // bytes this side sent
	DirRecv  = "recv"  // bytes this side received
)

// TraceEvent is one recorded step: "banner", a frame tag name ("HELLO",
// "AUTH_DONE", "SERVER_IDENT", "KEEPALIVE2_ACK", ...), or a transport event.
type TraceEvent struct {
	At     time.Time
	Dir    string
	What   string
	Detail string
}

// String formats the event as "dir what (detail)".
func (e TraceEvent) String() string {
	s := e.Dir + " " + e.What
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// SockTrace is what crossed one socket.
type SockTrace struct {
	Target   string // dialled address, or the peer of an accepted socket
	Outgoing bool

	mu     sync.Mutex
	events []TraceEvent
	send   streamParser
	recv   streamParser
}

func newSockTrace(target string, outgoing bool) *SockTrace {
	return &SockTrace{Target: target, Outgoing: outgoing}
}

func (t *SockTrace) record(dir, what, detail string) {
	t.mu.Lock()
	t.recordLocked(dir, what, detail)
	t.mu.Unlock()
}

// maxEvents bounds a trace: a long-lived connection would otherwise grow one
// event per frame forever.
const maxEvents = 4096

func (t *SockTrace) recordLocked(dir, what, detail string) {
	if len(t.events) < maxEvents {
		t.events = append(t.events, TraceEvent{At: time.Now(), Dir: dir, What: what, Detail: detail})
	}
}

func (t *SockTrace) feed(dir string, b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := &t.recv
	if dir == DirSend {
		p = &t.send
	}
	p.feed(b, func(what, detail string) { t.recordLocked(dir, what, detail) })
}

// Events returns a copy of the recorded events.
func (t *SockTrace) Events() []TraceEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]TraceEvent(nil), t.events...)
}

// Count is how many events of dir named what were recorded.
func (t *SockTrace) Count(dir, what string) int {
	n := 0
	for _, e := range t.Events() {
		if e.Dir == dir && e.What == what {
			n++
		}
	}
	return n
}

// String lists the events, one per line.
func (t *SockTrace) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "socket to %s (outgoing %v):\n", t.Target, t.Outgoing)
	for _, e := range t.Events() {
		fmt.Fprintf(&b, "  %s %s\n", e.At.Format("15:04:05.000000"), e)
	}
	return b.String()
}

// streamParser follows one direction of a msgr2 byte stream: the banner,
// then frames. Control frames are decoded with msgr2 (their decode errors are
// recorded); MESSAGE frames and anything large are only skipped over.
type streamParser struct {
	bannerDone bool
	broken     bool
	buf        []byte
	skip       int
}

// controlMax is the largest frame the parser buffers to decode.
const controlMax = 64 << 10

func (p *streamParser) feed(b []byte, rec func(what, detail string)) {
	for len(b) > 0 && !p.broken {
		if p.skip > 0 {
			k := min(p.skip, len(b))
			p.skip -= k
			b = b[k:]
			continue
		}
		p.buf = append(p.buf, b...)
		b = nil
		for !p.broken && p.step(rec) {
		}
		if p.skip > 0 && len(p.buf) > 0 {
			b, p.buf = p.buf, nil
		}
	}
}

// step consumes one item from p.buf if it is complete and reports whether
// it did.
func (p *streamParser) step(rec func(what, detail string)) bool {
	if p.skip > 0 || len(p.buf) == 0 {
		return false
	}
	if !p.bannerDone {
		if len(p.buf) < msgr2.BannerLen {
			return false
		}
		sup, req, err := msgr2.ParseBanner(p.buf[:msgr2.BannerLen])
		if err != nil {
			rec("banner-error", err.Error())
			p.broken = true
			return false
		}
		rec("banner", fmt.Sprintf("supported %#x required %#x", sup, req))
		p.bannerDone = true
		p.buf = p.buf[msgr2.BannerLen:]
		return true
	}
	if len(p.buf) < msgr2.PreambleLen {
		return false
	}
	pre, err := msgr2.ParsePreamble(p.buf[:msgr2.PreambleLen], 1<<30)
	if err != nil {
		rec("frame-error", err.Error())
		p.broken = true
		return false
	}
	rest := pre.RestLen()
	if pre.Tag == msgr2.TagMessage || rest > controlMax {
		rec(pre.Tag.String(), fmt.Sprintf("%d bytes", msgr2.PreambleLen+rest))
		p.buf = p.buf[msgr2.PreambleLen:]
		if len(p.buf) >= rest {
			p.buf = p.buf[rest:]
		} else {
			p.skip = rest - len(p.buf)
			p.buf = p.buf[:0]
		}
		return true
	}
	if len(p.buf) < msgr2.PreambleLen+rest {
		return false
	}
	segs, err := msgr2.ParseFrameRest(&pre, p.buf[msgr2.PreambleLen:msgr2.PreambleLen+rest])
	detail := ""
	if err != nil {
		detail = "decode error: " + err.Error()
	} else if pl, err := msgr2.UnmarshalPayload(pre.Tag, segs[0]); err != nil {
		detail = "payload error: " + err.Error()
	} else {
		detail = tail(fmt.Sprintf("%+v", pl), 300)
	}
	rec(pre.Tag.String(), detail)
	p.buf = p.buf[msgr2.PreambleLen+rest:]
	if len(p.buf) == 0 {
		p.buf = nil
	}
	return true
}
