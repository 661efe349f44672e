package msgr

import (
	"time"
)

// Message is one messenger message: a type, a priority and three payload
// parts carried in a msgr2 MESSAGE frame. After SendMessage the messenger
// owns the Message until it is acknowledged (lossless) or written (lossy);
// the caller must not modify it meanwhile, nor queue it on another
// connection (Seq is assigned per connection).
type Message struct {
	Type     uint16
	Priority uint16 // 0 means PrioDefault
	Version  uint16
	Tid      uint64
	Front    []byte
	Middle   []byte
	Data     []byte

	// Seq is the per-session sequence number, assigned when the message is
	// written (sender side) or read from the frame (receiver side).
	Seq uint64
	// Conn is the connection the message arrived on (set on receive).
	Conn *Connection
	// RecvStamp is when the message's frame was fully read (set on receive).
	// Its monotonic reading is exact (time.Since); its wall reading follows
	// the process's start (one clock read per message, not time.Now's two).
	RecvStamp time.Time
	// Peer is the sender's entity name (set on receive).
	Peer EntityName

	// OnDone, when set on a message to send, is called once the messenger
	// is done with it and its buffers may be reused: acknowledged by the
	// peer (lossless) or written (lossy; its data is then copied, never
	// sent by reference), with err nil; or dropped (the connection closed,
	// the session was reset) with the connection's error. It runs on the
	// DispatchQueue goroutine, after the dispatch of what arrived before.
	OnDone func(m *Message, err error)

	// rxBuf is the pooled buffer a received message's payload lives in
	// (nil: the payload is ordinary memory); Release returns it.
	rxBuf *rxBuf
}

// Release gives a received message's payload memory back to the
// messenger, to be reused for a later message, and clears Front, Middle
// and Data. Call it once the application is done with the payload and
// holds no slice of it: the memory is overwritten by the next big message.
// It is optional: a message never released is garbage collected as usual,
// and a message whose payload is not pooled (small messages, messages over
// 1 MiB, messages built by the application) only has its fields cleared.
// Calling it again does nothing more. Not safe for concurrent use on one
// Message.
func (m *Message) Release() {
	b := m.rxBuf
	m.Front, m.Middle, m.Data, m.rxBuf = nil, nil, nil, nil
	if b != nil {
		b.put()
	}
}

func (m *Message) prio() uint16 {
	if m.Priority == 0 {
		return PrioDefault
	}
	return m.Priority
}

func (m *Message) payloadLen() int { return len(m.Front) + len(m.Middle) + len(m.Data) }

// Policy says how connections to one peer type behave (Ceph's
// Messenger::Policy).
type Policy struct {
	// Lossy connections drop their queue on fault and report it with
	// MsHandleReset; they never reconnect by themselves.
	Lossy bool
	// Server connections never initiate a reconnect: on fault a lossless
	// session waits in standby for the peer to come back.
	Server bool
	// Standby: a lossless session with nothing queued waits until a
	// message is queued before reconnecting (a session the peer dialled
	// always does).
	Standby bool
	// ResetCheck: when the peer reconnects with an unknown session, reset
	// ours and report MsHandleRemoteReset.
	ResetCheck bool
	// FeaturesSupported / FeaturesRequired are the Ceph feature bits
	// advertised in CLIENT_IDENT/SERVER_IDENT; zero means DefaultFeatures/0.
	FeaturesSupported uint64
	FeaturesRequired  uint64
	// ThrottlerBytes / ThrottlerMessages are Ceph's throttler_bytes and
	// throttler_messages: budgets shared by every connection with this
	// policy for the bytes and the number of received messages not yet
	// dispatched (a message gives them back when its dispatcher returns).
	// A message that does not fit is left in the socket until it does.
	// nil: no limit. See Messenger.SetPolicyThrottlers.
	ThrottlerBytes, ThrottlerMessages *Throttle
}

// LossyClient is Ceph's Policy::lossy_client.
func LossyClient() Policy { return Policy{Lossy: true} }

// LosslessClient is Ceph's Policy::lossless_client.
func LosslessClient() Policy { return Policy{} }

// LosslessPeer is Ceph's Policy::lossless_peer (reconnects, checks resets).
func LosslessPeer() Policy { return Policy{ResetCheck: true} }

// StatelessServer is Ceph's Policy::stateless_server.
func StatelessServer() Policy { return Policy{Lossy: true, Server: true} }

// StatefulServer is Ceph's Policy::stateful_server.
func StatefulServer() Policy { return Policy{Server: true, ResetCheck: true} }

// DefaultFeatures is the Ceph feature mask advertised when a Policy leaves
// FeaturesSupported zero: the CEPH_FEATURES_ALL value recent Ceph clients
// report (`ceph features`), which includes MSG_ADDR2 and the SERVER_* bits a
// msgr2 monitor requires. The session uses its intersection with the peer's.
const DefaultFeatures uint64 = 0x3f01cfbffffdffff

// Dispatcher receives messages and connection events (Ceph's Dispatcher).
// Methods run on the DispatchQueue goroutine, except for FastDispatch.
// Embed BaseDispatcher to implement only what you need.
type Dispatcher interface {
	// MsDispatch handles m and reports whether it consumed it; unconsumed
	// messages go to the next dispatcher.
	MsDispatch(m *Message) bool
	// MsHandleConnect reports that an outgoing connection became ready.
	MsHandleConnect(c *Connection)
	// MsHandleAccept reports that an incoming connection became ready.
	MsHandleAccept(c *Connection)
	// MsHandleReset reports that a connection faulted and was dropped (lossy
	// policy, or a connection that failed before its session was
	// established); err says why. It returns true when handled.
	MsHandleReset(c *Connection, err error) bool
	// MsHandleRemoteReset reports that the peer reset the session (it lost
	// its state); messages queued to it before were discarded.
	MsHandleRemoteReset(c *Connection)
}

// FastDispatcher is implemented by dispatchers that can handle some messages
// directly on the connection's worker goroutine. FastDispatch must not
// block.
type FastDispatcher interface {
	CanFastDispatch(m *Message) bool
	FastDispatch(m *Message)
}

// BaseDispatcher implements Dispatcher with no-ops; embed it.
type BaseDispatcher struct{}

// MsDispatch consumes nothing.
func (BaseDispatcher) MsDispatch(*Message) bool { return false }

// MsHandleConnect does nothing.
func (BaseDispatcher) MsHandleConnect(*Connection) {}

// MsHandleAccept does nothing.
func (BaseDispatcher) MsHandleAccept(*Connection) {}

// MsHandleReset does nothing.
func (BaseDispatcher) MsHandleReset(*Connection, error) bool { return false }

// MsHandleRemoteReset does nothing.
func (BaseDispatcher) MsHandleRemoteReset(*Connection) {}
