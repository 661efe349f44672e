package perf

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// OOB is the out-of-band TCP connection between client and server (perftest's
// "Ethernet" data exchange): length-prefixed JSON messages. It is used only
// between runs, never in a hot loop.
type OOB struct {
	c       net.Conn
	timeout time.Duration
	lenBuf  [4]byte

	// PeerDone is set by Watch when the peer reports the end of its run.
	PeerDone atomic.Bool
	// PeerFailed is set with PeerDone when the peer reported an error.
	PeerFailed atomic.Bool
	watch      chan Msg
	peerDone   chan struct{} // closed with PeerDone set
}

// Msg is one out-of-band message; Type says which fields matter.
type Msg struct {
	Type      string     `json:"type"`
	Agreement *Agreement `json:"agreement,omitempty"`
	Mismatch  []string   `json:"mismatch,omitempty"`
	Dest      *Dest      `json:"dest,omitempty"`
	Count     int        `json:"count,omitempty"`
	Err       string     `json:"err,omitempty"`
	BW        *BWResult  `json:"bw,omitempty"`
	Lat       *LatResult `json:"lat,omitempty"`
	Addr      string     `json:"addr,omitempty"`
}

// DefaultOOBTimeout bounds every out-of-band read outside a run.
const DefaultOOBTimeout = 60 * time.Second

// maxMsg bounds one message.
const maxMsg = 1 << 20

// Listen opens the server's TCP listener on port (all addresses, as perftest).
func Listen(port int) (net.Listener, error) {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("rdmaperf: listen on port %d: %w", port, err)
	}
	return ln, nil
}

// Accept waits (at most timeout, 0 = forever) for the client.
func Accept(ln net.Listener, timeout time.Duration) (*OOB, error) {
	if tl, ok := ln.(*net.TCPListener); ok && timeout > 0 {
		_ = tl.SetDeadline(time.Now().Add(timeout))
	}
	c, err := ln.Accept()
	if err != nil {
		return nil, fmt.Errorf("rdmaperf: accept: %w", err)
	}
	return newOOB(c), nil
}

// Dial connects to the server, retrying for up to timeout while it is not
// yet listening (perftest retries too).
func Dial(server string, port int, timeout time.Duration) (*OOB, error) {
	addr := server
	if _, _, err := net.SplitHostPort(server); err != nil {
		addr = net.JoinHostPort(strings.Trim(server, "[]"), strconv.Itoa(port))
	}
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			return newOOB(c), nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("rdmaperf: connect to %s: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func newOOB(c net.Conn) *OOB {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &OOB{c: c, timeout: DefaultOOBTimeout}
}

// Close closes the connection; nil-safe.
func (o *OOB) Close() error {
	if o == nil {
		return nil
	}
	return o.c.Close()
}

// Send writes one message.
func (o *OOB) Send(m Msg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_ = o.c.SetWriteDeadline(time.Now().Add(o.timeout))
	if _, err := o.c.Write(buf); err != nil {
		return fmt.Errorf("rdmaperf: out-of-band send %s: %w", m.Type, err)
	}
	return nil
}

// Recv reads one message, waiting at most timeout (0 = the default).
func (o *OOB) Recv(timeout time.Duration) (Msg, error) {
	var m Msg
	if timeout <= 0 {
		timeout = o.timeout
	}
	_ = o.c.SetReadDeadline(time.Now().Add(timeout))
	if _, err := io.ReadFull(o.c, o.lenBuf[:]); err != nil {
		return m, fmt.Errorf("rdmaperf: out-of-band receive: %w", err)
	}
	n := binary.BigEndian.Uint32(o.lenBuf[:])
	if n > maxMsg {
		return m, fmt.Errorf("rdmaperf: out-of-band message of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(o.c, b); err != nil {
		return m, fmt.Errorf("rdmaperf: out-of-band receive: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("rdmaperf: out-of-band message: %w", err)
	}
	return m, nil
}

// Expect receives one message and checks its type; an "error" message from
// the peer becomes an error.
func (o *OOB) Expect(typ string, timeout time.Duration) (Msg, error) {
	m, err := o.Recv(timeout)
	if err != nil {
		return m, err
	}
	if m.Type == "error" {
		return m, fmt.Errorf("rdmaperf: the peer failed: %s", m.Err)
	}
	if m.Type != typ {
		return m, fmt.Errorf("rdmaperf: out-of-band protocol: got %q, want %q", m.Type, typ)
	}
	return m, nil
}

// Barrier sends "sync" and waits for the peer's.
func (o *OOB) Barrier() error {
	if err := o.Send(Msg{Type: "sync"}); err != nil {
		return err
	}
	_, err := o.Expect("sync", 0)
	return err
}

// ErrMismatch is returned when client and server parameters differ.
var ErrMismatch = errors.New("rdmaperf: client and server parameters differ")

// HelloClient sends the client's agreement and waits for the verdict.
func (o *OOB) HelloClient(a Agreement) error {
	if err := o.Send(Msg{Type: "hello", Agreement: &a}); err != nil {
		return err
	}
	m, err := o.Expect("verdict", 0)
	if err != nil {
		return err
	}
	if len(m.Mismatch) > 0 {
		return fmt.Errorf("%w: %s", ErrMismatch, strings.Join(m.Mismatch, "; "))
	}
	return nil
}

// HelloServer reads the client's agreement, compares it with a and answers.
func (o *OOB) HelloServer(a Agreement) error {
	m, err := o.Expect("hello", 0)
	if err != nil {
		return err
	}
	if m.Agreement == nil {
		return errors.New("rdmaperf: out-of-band hello without parameters")
	}
	mm := Mismatch(a, *m.Agreement)
	if err := o.Send(Msg{Type: "verdict", Mismatch: mm}); err != nil {
		return err
	}
	if len(mm) > 0 {
		return fmt.Errorf("%w: %s", ErrMismatch, strings.Join(mm, "; "))
	}
	return nil
}

// StartWatch starts waiting, in the background, for the peer's "done" of the
// current run; PeerDone turns true, and PeerDoneC is closed, when it
// arrives. Finish collects it.
func (o *OOB) StartWatch(limit time.Duration) {
	o.PeerDone.Store(false)
	o.PeerFailed.Store(false)
	o.watch = make(chan Msg, 1)
	done := make(chan struct{})
	o.peerDone = done
	go func() {
		m, err := o.Recv(limit)
		if err != nil {
			m = Msg{Type: "error", Err: err.Error()}
		}
		o.PeerFailed.Store(m.Type == "error")
		o.PeerDone.Store(true)
		close(done)
		o.watch <- m
	}()
}

// PeerDoneC is closed when the peer's end of the run started by StartWatch
// arrives. A side with nothing to do in the run waits on it rather than
// polling PeerDone: a sleep loop's timer wakes a thread hundreds of times a
// second, and on a 2-vCPU VM each wake-up takes a vCPU from the peers and
// the device's kernel work being measured.
func (o *OOB) PeerDoneC() <-chan struct{} { return o.peerDone }

// Finish reports this side's end of the run (count and error) and returns
// the peer's report.
func (o *OOB) Finish(count int, runErr error) (Msg, error) {
	m := Msg{Type: "done", Count: count}
	if runErr != nil {
		m = Msg{Type: "error", Err: runErr.Error()}
	}
	sendErr := o.Send(m)
	peer := <-o.watch
	if runErr != nil {
		return peer, runErr
	}
	if sendErr != nil {
		return peer, sendErr
	}
	if peer.Type == "error" {
		return peer, fmt.Errorf("rdmaperf: the peer failed: %s", peer.Err)
	}
	if peer.Type != "done" {
		return peer, fmt.Errorf("rdmaperf: out-of-band protocol: got %q, want done", peer.Type)
	}
	return peer, nil
}
