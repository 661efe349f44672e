package rdmafault

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/rdmastack"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

func TestMain(m *testing.M) {
	rdmatest.RunAsChild(childRoles)
	os.Exit(m.Run())
}

const (
	typeData = 1 // payload(id): id, size, pattern
	typeAck  = 2 // Front: incarnation u32, id u64
	typeEcho = 3 // an echoed payload
)

// payload builds a message front for id: le64 id, le32 length, then a
// pattern derived from id (so a corrupted, truncated or misplaced payload is
// detected).
func payload(id uint64, size int) []byte {
	b := make([]byte, 12+size)
	binary.LittleEndian.PutUint64(b, id)
	binary.LittleEndian.PutUint32(b[8:], uint32(size))
	for i := 0; i < size; i++ {
		b[12+i] = byte(id*131 + uint64(i)*7 + uint64(i>>8))
	}
	return b
}

// checkPayload returns the id of a payload, or an error if it is not intact.
func checkPayload(b []byte) (uint64, error) {
	if len(b) < 12 {
		return 0, fmt.Errorf("payload of %d bytes", len(b))
	}
	id := binary.LittleEndian.Uint64(b)
	size := int(binary.LittleEndian.Uint32(b[8:]))
	if len(b) != 12+size {
		return id, fmt.Errorf("payload %d: %d bytes, header says %d", id, len(b), 12+size)
	}
	for i := 0; i < size; i++ {
		if b[12+i] != byte(id*131+uint64(i)*7+uint64(i>>8)) {
			return id, fmt.Errorf("payload %d: byte %d corrupted", id, i)
		}
	}
	return id, nil
}

// sizeFor varies message sizes deterministically between lo and hi.
func sizeFor(id uint64, lo, hi int) int {
	return lo + int((id*2654435761)%uint64(hi-lo+1))
}

// inOrder records received payload ids and checks they arrive exactly once,
// in order 0, 1, 2, ..., intact.
type inOrder struct {
	mu   sync.Mutex
	next uint64
	errs []string
	echo bool // reply to each message with the same front (typeEcho)
}

func (o *inOrder) take(m *msgr.Message) {
	id, err := checkPayload(m.Front)
	o.mu.Lock()
	switch {
	case err != nil:
		o.errs = append(o.errs, err.Error())
	case id != o.next:
		o.errs = append(o.errs, fmt.Sprintf("got id %d, expected %d", id, o.next))
		if id > o.next {
			o.next = id + 1
		}
	default:
		o.next++
	}
	o.mu.Unlock()
	if o.echo {
		_ = m.Conn.SendMessage(&msgr.Message{Type: typeEcho, Front: m.Front})
	}
}

func (o *inOrder) count() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.next
}

func (o *inOrder) problems() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.errs) > 10 {
		return append(o.errs[:10:10], fmt.Sprintf("... %d more", len(o.errs)-10))
	}
	return append([]string(nil), o.errs...)
}

// sink is a fast dispatcher feeding messages of one type to a function and
// counting connection events.
type sink struct {
	msgr.BaseDispatcher
	onMsg func(m *msgr.Message)

	mu           sync.Mutex
	resets       []error
	remoteResets int
}

func (s *sink) CanFastDispatch(*msgr.Message) bool { return true }
func (s *sink) FastDispatch(m *msgr.Message)       { s.onMsg(m) }
func (s *sink) MsDispatch(m *msgr.Message) bool    { s.onMsg(m); return true }
func (s *sink) MsHandleReset(_ *msgr.Connection, err error) bool {
	s.mu.Lock()
	s.resets = append(s.resets, err)
	s.mu.Unlock()
	return true
}
func (s *sink) MsHandleRemoteReset(*msgr.Connection) {
	s.mu.Lock()
	s.remoteResets++
	s.mu.Unlock()
}
func (s *sink) remoteResetCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remoteResets
}

// logBuf collects a messenger's log lines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
	t     testing.TB
}

// Write makes a logBuf an io.Writer (one line per write, as slog does).
func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, strings.TrimRight(string(p), "\n"))
	l.mu.Unlock()
	return len(p), nil
}

// grep returns the lines containing any of subs.
func (l *logBuf) grep(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		for _, sub := range subs {
			if strings.Contains(s, sub) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.lines, "\n")
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

// endpoint is a started messenger on the rdma stack.
type endpoint struct {
	m    *msgr.Messenger
	rs   *rdmastack.Stack
	addr string
	log  *logBuf
	cfg  *config.Config
}

func osdName(n int64) msgr.EntityName { return msgr.EntityName{Type: msgr.EntityTypeOSD, Num: n} }
func clientName(n int64) msgr.EntityName {
	return msgr.EntityName{Type: msgr.EntityTypeClient, Num: n}
}

// newEndpoint starts a messenger with cfg, bound to bind unless empty, with
// d as its dispatcher. Server endpoints use StatefulServer toward clients,
// client endpoints LosslessPeer toward OSDs, unless the test changes them
// before traffic.
func newEndpoint(t testing.TB, cfg *config.Config, name msgr.EntityName, bind string, d msgr.Dispatcher) *endpoint {
	t.Helper()
	lb := &logBuf{t: t}
	m, err := msgr.New(cfg, name, msgr.WithLogger(slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	rs, ok := m.Stack().(*rdmastack.Stack)
	require.True(t, ok, "messenger stack is %T, not rdma", m.Stack())
	m.SetPolicy(msgr.EntityTypeClient, msgr.StatefulServer())
	m.SetPolicy(msgr.EntityTypeOSD, msgr.LosslessPeer())
	if d != nil {
		m.AddDispatcherTail(d)
	}
	e := &endpoint{m: m, rs: rs, log: lb, cfg: cfg}
	if bind != "" {
		require.NoError(t, m.Bind(bind))
		e.addr = m.Addr().String()
	}
	require.NoError(t, m.Start())
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() { done <- m.Shutdown() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("shutdown %v: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("shutdown of %v did not return", name)
		}
		if t.Failed() {
			t.Logf("%v log:\n%s", name, lb)
		}
	})
	return e
}

// rdmaSummary is a one-line view of a stack's counters for failure messages.
func rdmaSummary(rs *rdmastack.Stack) string {
	st := rs.Stats()
	return fmt.Sprintf("qp created/active/destroyed %d/%d/%d, handshake errors %d, tx/rx completions %d/%d, tx no-mem %d, inflight tx chunks %d, rx buffers %d/%d, wc errors %v, async events %d",
		st.QPsCreated, st.QPsActive, st.QPsDestroyed, st.HandshakeErrors, st.TXCompletions, st.RXCompletions,
		st.TxNoMem, st.InflightTXChunks, st.RXBuffersInUse, st.RXBuffers, st.WCErrors, st.AsyncEvents)
}
