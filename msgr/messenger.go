package msgr

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/internal/lockorder"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// ErrNotStarted is returned when sending or connecting before Start.
var ErrNotStarted = errors.New("msgr: messenger not started")

// ErrShutdown is returned after Shutdown; it matches net.ErrClosed.
var ErrShutdown = fmt.Errorf("msgr: messenger shut down: %w", net.ErrClosed)

// ErrNilMessage is returned by SendMessage for a nil *Message.
var ErrNilMessage = errors.New("msgr: nil message")

// ErrNilConnection is returned by the methods of a nil *Connection that
// report errors.
var ErrNilConnection = errors.New("msgr: nil connection")

// ErrMessageTooLarge is matched by the error of SendMessage for a message
// whose MESSAGE frame (header, front, middle and data segments) would be
// larger than ms_max_frame_segment: a peer with the same limit would refuse
// it.
var ErrMessageTooLarge = errors.New("msgr: message too large")

// checkMessage refuses what SendMessage must not queue.
func (m *Messenger) checkMessage(msg *Message) error {
	if msg == nil {
		return ErrNilMessage
	}
	if n, limit := msgr2.MsgHeader2Len+msg.payloadLen(), m.cfg.MaxFrameSegment; limit > 0 && n > limit {
		return fmt.Errorf("%w: %d bytes of frame segments (front %d, middle %d, data %d), over ms_max_frame_segment %d",
			ErrMessageTooLarge, n, len(msg.Front), len(msg.Middle), len(msg.Data), limit)
	}
	return nil
}

// Option configures a Messenger.
type Option func(*Messenger)

// WithNonce sets the messenger's address nonce (default: random).
func WithNonce(n uint32) Option { return func(m *Messenger) { m.nonce = n } }

// WithAuthID sets the id part of the entity name sent in the auth-none
// request (default "admin" for clients, the entity number otherwise).
func WithAuthID(id string) Option { return func(m *Messenger) { m.authID = id } }

// WithLogger sets the logger of the messenger and of every layer under it
// (the network stack, its event centres and devices): New puts it on its
// copy of the Config before it builds the stack. The default is
// slog.Default(); levels follow Ceph's debug_ms (see DebugMsLevel).
func WithLogger(l *slog.Logger) Option { return func(m *Messenger) { m.logger = l } }

// WithPriorityDispatch makes the DispatchQueue deliver like Ceph's
// PrioritizedQueue (see DispatchQueue) instead of in arrival order.
func WithPriorityDispatch() Option { return func(m *Messenger) { m.prioDispatch = true } }

// Messenger is one messaging endpoint (Ceph's AsyncMessenger).
type Messenger struct {
	cfg          *config.Config
	name         EntityName
	nonce        uint32
	authID       string
	auth         *authConfig
	perf         *perfState
	rxBufs       rxBufPool    // big received messages' storage (rxbuf.go)
	logger       *slog.Logger // from WithLogger; nil: the Config's
	sendQBytes   int          // WithSendQueueBytes
	log          *slog.Logger
	prioDispatch bool
	stack        netstack.Stack
	dq           *DispatchQueue
	acceptor     *netstack.Acceptor // listener's centre goroutine only

	dispatchersV atomic.Pointer[[]Dispatcher]
	fastV        atomic.Pointer[[]FastDispatcher]
	myAddrsV     atomic.Pointer[msgr2.AddrVec]
	gid          atomic.Uint64

	mu            lockorder.Mutex
	listener      netstack.ServerSocket
	lworker       netstack.Worker
	conns         map[string]*Connection   // outgoing, by dial address
	peers         map[peerID]*Connection   // accepted lossless sessions
	all           map[*Connection]struct{} // every live connection
	policies      map[uint8]Policy
	defaultPolicy Policy
	globalSeq     uint64
	nextGID       uint64
	started       bool
	stopped       bool
	done          chan struct{}

	dialing  dialGroup
	cleanups sync.WaitGroup
}

type peerID struct {
	ap    netip.AddrPort
	nonce uint32
}

func peerKey(a msgr2.EntityAddr) peerID { return peerID{a.Addr, a.Nonce} }

func netipPort0(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(ap.Addr(), 0) }

// New builds a messenger for entity name on the stack cfg.TransportType
// selects (through netstack.New; the transport's package must be imported
// for its registration).
func New(cfg *config.Config, name EntityName, opts ...Option) (*Messenger, error) {
	if cfg == nil {
		cfg = config.Default()
	}
	m := &Messenger{name: name, conns: map[string]*Connection{}, peers: map[peerID]*Connection{},
		all: map[*Connection]struct{}{}, policies: map[uint8]Policy{}, done: make(chan struct{})}
	m.mu.Init(&messengerClass)
	m.dialing.mu.Init(&dialGroupClass)
	var b [8]byte
	_, _ = crand.Read(b[:])
	m.nonce = binary.LittleEndian.Uint32(b[:]) | 1
	for _, o := range opts {
		o(m)
	}
	if m.logger != nil {
		// one logger for every layer, set before the stack reads it; on a
		// copy, so that messengers sharing a Config keep their own
		c := *cfg
		c.Logger = m.logger
		cfg = &c
	}
	m.cfg = cfg
	m.log = cfg.Log()
	if m.authID == "" {
		if name.Type == EntityTypeClient {
			m.authID = "admin"
		} else {
			m.authID = strconv.FormatInt(name.Num, 10)
		}
	}
	m.auth = newAuthConfig(cfg, name, m.authID)
	st, err := netstack.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("msgr: network stack %q: %w", cfg.TransportType, err)
	}
	m.stack = st
	m.initPerf()
	m.dq = newDispatchQueue(m)
	if m.prioDispatch {
		m.dq.pq = &prioDispatch{}
	}
	empty := []Dispatcher{}
	m.dispatchersV.Store(&empty)
	emptyF := []FastDispatcher{}
	m.fastV.Store(&emptyF)
	return m, nil
}

// Name is the messenger's entity name.
func (m *Messenger) Name() EntityName { return m.name }

// Nonce is the messenger's address nonce.
func (m *Messenger) Nonce() uint32 { return m.nonce }

// Stack is the network stack the messenger runs on.
func (m *Messenger) Stack() netstack.Stack { return m.stack }

// DispatchQueue is the messenger's slow-path dispatch queue.
func (m *Messenger) DispatchQueue() *DispatchQueue { return m.dq }

// Log is the logger of the messenger and the layers under it.
func (m *Messenger) Log() *slog.Logger { return m.log }

func (m *Messenger) sockOpts() netstack.SocketOptions {
	return netstack.SocketOptions{NoDelay: m.cfg.TCPNoDelay, RcvBuf: m.cfg.TCPRcvBuf,
		Backlog: m.cfg.TCPListenBacklog}
}

// tickPeriod is the connection timer period: the keepalive interval, or
// a quarter of the idle timeout when that is shorter or keepalives are
// off. A tick sends a KEEPALIVE2 when the interval before it carried no
// message (onTick) and checks the idle timeout, usually many intervals
// long, so an idle connection wakes its centre once per interval.
func (m *Messenger) tickPeriod() time.Duration {
	ka, idle := m.cfg.KeepaliveInterval, m.cfg.ConnectionIdleTimeout
	t := idle / 4
	if ka > 0 && (t <= 0 || ka < t) {
		t = ka
	}
	if t <= 0 {
		return 0
	}
	return max(t, 5*time.Millisecond)
}

// SetPolicy sets the policy of connections to peers of entityType.
func (m *Messenger) SetPolicy(entityType uint8, p Policy) {
	m.mu.Lock()
	m.policies[entityType] = p
	m.mu.Unlock()
}

// SetDefaultPolicy sets the policy for peer types without their own.
func (m *Messenger) SetDefaultPolicy(p Policy) {
	m.mu.Lock()
	m.defaultPolicy = p
	m.mu.Unlock()
}

func (m *Messenger) policyFor(t uint8) Policy {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.policies[t]; ok {
		return p
	}
	return m.defaultPolicy
}

// AddDispatcherHead puts d first in the dispatch chain. A nil d panics.
func (m *Messenger) AddDispatcherHead(d Dispatcher) { m.addDispatcher(d, true) }

// AddDispatcherTail puts d last in the dispatch chain. A nil d panics.
func (m *Messenger) AddDispatcherTail(d Dispatcher) { m.addDispatcher(d, false) }

func (m *Messenger) addDispatcher(d Dispatcher, head bool) {
	if d == nil {
		// here, on the caller's goroutine, not later on the dispatch
		// queue's, as net/http's Handle does
		panic("msgr: nil Dispatcher")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.dispatchersV.Load()
	var ds []Dispatcher
	if head {
		ds = append([]Dispatcher{d}, old...)
	} else {
		ds = append(append([]Dispatcher{}, old...), d)
	}
	m.dispatchersV.Store(&ds)
	var fs []FastDispatcher
	for _, x := range ds {
		if f, ok := x.(FastDispatcher); ok {
			fs = append(fs, f)
		}
	}
	m.fastV.Store(&fs)
}

func (m *Messenger) dispatchers() []Dispatcher { return *m.dispatchersV.Load() }

// fastDispatch runs msg through the first fast dispatcher that accepts it.
func (m *Messenger) fastDispatch(msg *Message) bool {
	lockorder.AssertNone("a fast dispatcher")
	for _, f := range *m.fastV.Load() {
		if f.CanFastDispatch(msg) {
			f.FastDispatch(msg)
			return true
		}
	}
	return false
}

func (m *Messenger) nextGlobalSeq(atLeast uint64) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.globalSeq < atLeast {
		m.globalSeq = atLeast
	}
	m.globalSeq++
	return m.globalSeq
}

func (m *Messenger) randCookie() uint64 {
	var b [8]byte
	for {
		_, _ = crand.Read(b[:])
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// globalID is our global id (learned from a monitor's AUTH_DONE, else 0).
func (m *Messenger) globalID() uint64 { return m.gid.Load() }

func (m *Messenger) learnGlobalID(g uint64) { m.gid.CompareAndSwap(0, g) }

// assignGlobalID gives an auth-none peer without a global id one.
func (m *Messenger) assignGlobalID() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextGID++
	return m.nextGID
}
