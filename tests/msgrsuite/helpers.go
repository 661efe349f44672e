package msgrsuite

// This file holds what every test group uses: the recording dispatcher,
// endpoints (a started messenger with its dispatcher) and checkable payloads.

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/stretchr/testify/require"
)

// recorder is a dispatcher that keeps what it sees.
type recorder struct {
	msgr.BaseDispatcher
	fast bool // take messages on the worker goroutine

	mu           sync.Mutex
	msgs         []*msgr.Message
	resets       []resetEvent
	accepts      int
	accepted     []*msgr.Connection
	remoteResets int
	onMsg        func(m *msgr.Message)
	notify       chan struct{}
}

type resetEvent struct {
	c   *msgr.Connection
	err error
}

func newRecorder(fast bool) *recorder {
	return &recorder{fast: fast, notify: make(chan struct{}, 1)}
}

func (r *recorder) poke() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) take(m *msgr.Message) {
	r.mu.Lock()
	f := r.onMsg
	if f == nil {
		r.msgs = append(r.msgs, m)
	}
	r.mu.Unlock()
	if f != nil {
		f(m)
	}
	r.poke()
}

func (r *recorder) MsDispatch(m *msgr.Message) bool { r.take(m); return true }

func (r *recorder) CanFastDispatch(*msgr.Message) bool { return r.fast }

func (r *recorder) FastDispatch(m *msgr.Message) { r.take(m) }

func (r *recorder) MsHandleAccept(c *msgr.Connection) {
	r.mu.Lock()
	r.accepts++
	r.accepted = append(r.accepted, c)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) acceptedList() []*msgr.Connection {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*msgr.Connection(nil), r.accepted...)
}

func (r *recorder) MsHandleRemoteReset(c *msgr.Connection) {
	r.mu.Lock()
	r.remoteResets++
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) remoteResetCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.remoteResets
}

func (r *recorder) MsHandleReset(c *msgr.Connection, err error) bool {
	r.mu.Lock()
	r.resets = append(r.resets, resetEvent{c, err})
	r.mu.Unlock()
	r.poke()
	return true
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *recorder) snapshot() []*msgr.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*msgr.Message(nil), r.msgs...)
}

func (r *recorder) resetList() []resetEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]resetEvent(nil), r.resets...)
}

// waitFor polls cond until it holds or the deadline passes (a bound for a
// hung test, not a timing assertion).
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type endpoint struct {
	m    *msgr.Messenger
	rec  *recorder
	addr string
}

// newEndpoint builds a messenger; bind "" leaves it unbound; start=false
// leaves it for the test to start.
func newEndpoint(t testing.TB, cfg *config.Config, name msgr.EntityName, bind string, start bool, rec *recorder) *endpoint {
	t.Helper()
	cfg = roleConfig(cfg, bind != "")
	bind = serverAddr(bind)
	m, err := msgr.New(cfg, name)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Shutdown() })
	e := &endpoint{m: m, rec: rec}
	if rec != nil {
		m.AddDispatcherTail(rec)
	}
	if bind != "" {
		require.NoError(t, m.Bind(bind))
		e.addr = m.Addr().String()
	}
	if start {
		require.NoError(t, m.Start())
	}
	return e
}

func osdName(n int64) msgr.EntityName { return msgr.EntityName{Type: msgr.EntityTypeOSD, Num: n} }

func clientName(n int64) msgr.EntityName {
	return msgr.EntityName{Type: msgr.EntityTypeClient, Num: n}
}

// payload builds a message body carrying (stream, index) and filler bytes
// derived from them, so corruption and reordering are both detectable.
func payload(stream, idx uint64, size int) []byte {
	if size < 16 {
		size = 16
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint64(b, stream)
	binary.LittleEndian.PutUint64(b[8:], idx)
	for i := 16; i < size; i++ {
		b[i] = byte(stream*31 + idx*7 + uint64(i))
	}
	return b
}

func checkPayload(b []byte) (stream, idx uint64, err error) {
	if len(b) < 16 {
		return 0, 0, fmt.Errorf("payload too short: %d", len(b))
	}
	stream = binary.LittleEndian.Uint64(b)
	idx = binary.LittleEndian.Uint64(b[8:])
	for i := 16; i < len(b); i++ {
		if b[i] != byte(stream*31+idx*7+uint64(i)) {
			return stream, idx, fmt.Errorf("stream %d message %d: byte %d corrupt", stream, idx, i)
		}
	}
	return stream, idx, nil
}

// CephXSecure is a Tweak requiring cephx everywhere and secure mode on
// every session, with keys from keyring (SecureKeyring).
func CephXSecure(keyring string) func(cfg *config.Config) {
	return func(cfg *config.Config) {
		cfg.Keyring = keyring
		cfg.AuthServiceRequired, cfg.AuthClusterRequired, cfg.AuthClientRequired = "cephx", "cephx", "cephx"
		cfg.ClientMode, cfg.ServiceMode, cfg.ClusterMode = "secure", "secure", "secure"
		cfg.MonClientMode, cfg.MonServiceMode, cfg.MonClusterMode = "secure", "secure", "secure"
	}
}

// SecureKeyring writes a keyring with one key for client.admin and osd.0
// to osd.99, the entities the suite makes, for runs with cephx required.
func SecureKeyring(t testing.TB) string {
	k, err := cephx.NewSessionKey()
	require.NoError(t, err)
	var b strings.Builder
	b.WriteString("[client.admin]\n\tkey = " + k.String() + "\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "[osd.%d]\n\tkey = %s\n", i, k.String())
	}
	p := filepath.Join(t.TempDir(), "keyring")
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o600))
	return p
}
