package msgr_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/tests/leakcheck"
)

// keyringFile writes a keyring holding the given entities' keys.
func keyringFile(t *testing.T, entries map[string]cephx.Key) string {
	t.Helper()
	var b bytes.Buffer
	for name, k := range entries {
		b.WriteString("[" + name + "]\n\tkey = " + k.String() + "\n\tcaps mon = \"allow *\"\n")
	}
	p := filepath.Join(t.TempDir(), "keyring")
	require.NoError(t, os.WriteFile(p, b.Bytes(), 0o600))
	return p
}

func newKey(t *testing.T) cephx.Key {
	k, err := cephx.NewSessionKey()
	require.NoError(t, err)
	return k
}

// proxy forwards TCP connections between clients and addr, letting a test
// see both directions and alter or add to the client-to-server bytes.
type proxy struct {
	ln   net.Listener
	mu   sync.Mutex
	seen bytes.Buffer // server-to-client and client-to-server bytes
	up   bytes.Buffer // client-to-server bytes of the latest connection
	srv  net.Conn     // the latest connection's server side
	// mangle, when set, rewrites each client-to-server read before it is
	// forwarded: it returns what to forward and whether to close the
	// connection to the server after it. It runs under mu.
	mangle func(b []byte) (out []byte, closeUp bool)
}

// startProxy listens on 127.0.0.2 at addr's port: the client checks that
// the server's identity includes the port it dialled.
func startProxy(t *testing.T, addr string) *proxy {
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.2:"+port)
	require.NoError(t, err)
	p := &proxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				return
			}
			p.mu.Lock()
			p.up.Reset()
			p.srv = s
			p.mu.Unlock()
			go p.pipe(s, c, true) // client to server
			go p.pipe(c, s, false)
		}
	}()
	return p
}

func (p *proxy) pipe(dst, src net.Conn, up bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			b, closeUp := buf[:n], false
			p.mu.Lock()
			if up && p.mangle != nil {
				b, closeUp = p.mangle(b)
			}
			p.seen.Write(b)
			if up {
				p.up.Write(b)
			}
			// under mu: bytes inject adds go between reads, never inside one
			_, werr := dst.Write(b)
			p.mu.Unlock()
			if werr != nil || closeUp {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) saw(b []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Contains(p.seen.Bytes(), b)
}

func (p *proxy) setMangle(f func(b []byte) ([]byte, bool)) {
	p.mu.Lock()
	p.mangle = f
	p.mu.Unlock()
}

// once makes f apply to the next client-to-server read only.
func (p *proxy) once(f func(b []byte) ([]byte, bool)) func(b []byte) ([]byte, bool) {
	return func(b []byte) ([]byte, bool) {
		p.mangle = nil // under mu
		return f(b)
	}
}

// upLen is how many client-to-server bytes the latest connection carried.
func (p *proxy) upLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up.Len()
}

// replay sends the latest connection's client-to-server bytes from off on
// to the server again.
func (p *proxy) replay(t *testing.T, off int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := bytes.Clone(p.up.Bytes()[off:])
	require.NotEmpty(t, b, "nothing to replay")
	_, err := p.srv.Write(b)
	require.NoError(t, err)
}

// witness is a dispatcher that keeps what reached it: messages and the
// errors of connections reset.
type witness struct {
	msgr.BaseDispatcher
	got    chan *msgr.Message
	mu     sync.Mutex
	resets []error
}

func (w *witness) MsDispatch(m *msgr.Message) bool { w.got <- m; return true }

func (w *witness) MsHandleReset(_ *msgr.Connection, err error) bool {
	w.mu.Lock()
	w.resets = append(w.resets, err)
	w.mu.Unlock()
	return false
}

// reset reports the first reset error matching target, if any.
func (w *witness) reset(target error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, err := range w.resets {
		if errors.Is(err, target) {
			return err
		}
	}
	return nil
}

type authCase struct {
	serverKeys  map[string]cephx.Key
	clientKey   *cephx.Key // nil: no key (auth none only)
	serviceReq  string
	serviceMode string
	clientMode  string
	lossy       bool // stateless server, lossy client: a fault ends the session
}

// authRig is a server (osd.1) and a client (client.1) set up per an
// authCase, each with a witness and a log of its own.
type authRig struct {
	srv, cli       *msgr.Messenger
	sw, cw         *witness
	srvLog, cliLog *testenv.LogBuffer
}

// requireRefusedBy connects cli to the OSD srv, sends a message that must
// not arrive and waits until the connection fails with ErrAuthRefused,
// saying want; it returns the connection.
func requireRefusedBy(t *testing.T, cli, srv *msgr.Messenger, want string) *msgr.Connection {
	t.Helper()
	c, err := cli.ConnectTo(msgr.EntityTypeOSD, srv.Addr().String())
	require.NoError(t, err)
	_ = c.SendMessage(&msgr.Message{Type: 77, Front: []byte("must not arrive")})
	testenv.WaitFor(t, 10*time.Second, "the refusal", func() bool {
		return errors.Is(c.Err(), msgr.ErrAuthRefused)
	}, func() string { return fmt.Sprintf("client error %v", c.Err()) })
	require.ErrorContains(t, c.Err(), want)
	return c
}

func authPair(t *testing.T, ac authCase) *authRig {
	t.Helper()
	r := &authRig{sw: &witness{got: make(chan *msgr.Message, 16)}, cw: &witness{got: make(chan *msgr.Message, 16)},
		srvLog: &testenv.LogBuffer{}, cliLog: &testenv.LogBuffer{}}
	// newSide is one side's messenger, logging to log, dispatching to w,
	// with policy for its peers (of peerType) when the case is lossy.
	newSide := func(cfg *config.Config, name msgr.EntityName, log *testenv.LogBuffer, w *witness, peerType uint8, policy msgr.Policy) *msgr.Messenger {
		m, err := msgr.New(cfg, name, msgr.WithLogger(log.Logger(msgr.DebugMsLevel(1))))
		require.NoError(t, err)
		t.Cleanup(func() { m.Shutdown() })
		m.AddDispatcherTail(w)
		if ac.lossy {
			m.SetPolicy(peerType, policy)
		}
		return m
	}
	scfg := testConfig()
	scfg.Keyring = keyringFile(t, ac.serverKeys)
	scfg.AuthServiceRequired = ac.serviceReq
	scfg.ServiceMode = ac.serviceMode
	srv := newSide(scfg, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 1}, r.srvLog, r.sw, msgr.EntityTypeClient, msgr.StatelessServer())
	require.NoError(t, srv.Bind("127.0.0.1:0"))
	require.NoError(t, srv.Start())

	ccfg := testConfig()
	ccfg.Keyring = filepath.Join(t.TempDir(), "none")
	if ac.clientKey != nil {
		ccfg.Key = ac.clientKey.String()
	}
	ccfg.ClientMode = ac.clientMode
	cli := newSide(ccfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: 1}, r.cliLog, r.cw, msgr.EntityTypeOSD, msgr.LossyClient())
	require.NoError(t, cli.Start())
	r.srv, r.cli = srv, cli
	return r
}

// TestCephXBetweenMessengers: a client with the right key gets in over
// cephx, in crc and in secure mode; in secure mode its payload never shows
// on the wire, in crc mode it does (the proxy sees both directions).
func TestCephXBetweenMessengers(t *testing.T) {
	admin := newKey(t)
	for _, mode := range []string{"crc", "secure"} {
		t.Run(mode, func(t *testing.T) {
			r := authPair(t, authCase{serverKeys: map[string]cephx.Key{"client.admin": admin},
				clientKey: &admin, serviceReq: "cephx", serviceMode: mode, clientMode: mode})
			px := startProxy(t, r.srv.Addr().String())
			c, err := r.cli.ConnectTo(msgr.EntityTypeOSD, px.ln.Addr().String())
			require.NoError(t, err)
			secret := []byte("attack at dawn, the password is swordfish")
			for i := 0; i < 20; i++ {
				require.NoError(t, c.SendMessage(&msgr.Message{Type: 77, Front: secret, Data: bytes.Repeat([]byte{byte(i)}, 100<<(i%8))}))
			}
			for i := 0; i < 20; i++ {
				select {
				case m := <-r.sw.got:
					require.Equal(t, secret, m.Front)
					require.Len(t, m.Data, 100<<(i%8))
				case <-time.After(20 * time.Second):
					t.Fatalf("message %d not delivered (client error %v)", i, c.Err())
				}
			}
			require.Equal(t, mode == "crc", px.saw(secret), "plaintext on the wire in %s mode", mode)
			require.Zero(t, r.srv.AuthRefusals())
		})
	}
}

// requireNothingFrom checks that nothing (more) from the peer reached the
// server's dispatcher: a refused or faulted peer's messages never do.
func requireNothingFrom(t *testing.T, r *authRig) {
	t.Helper()
	select {
	case m := <-r.sw.got:
		t.Fatalf("a message of the refused or faulted peer was dispatched: type %d %q", m.Type, m.Front)
	default:
	}
}

// TestCephXRefusals: each bad peer is refused with a clear error on both
// sides: the client's says why, the server logs the refusal once with the
// peer's address and the reason and counts it (for credentials at once; a
// peer offering only a method not allowed when it gives up). Nothing of it
// is dispatched, and once the client gives up no connection or goroutine
// is left on either side.
func TestCephXRefusals(t *testing.T) {
	admin, other := newKey(t), newKey(t)
	for _, tc := range []struct {
		name    string
		ac      authCase
		want    string // in the client's error
		srvWant string // in the server's log
	}{
		{"wrong key", authCase{serverKeys: map[string]cephx.Key{"client.admin": admin}, clientKey: &other,
			serviceReq: "cephx", serviceMode: "crc", clientMode: "crc"}, "rejected our client.admin credentials",
			"did not prove its key (wrong key)"},
		{"unknown entity", authCase{serverKeys: map[string]cephx.Key{"client.bob": admin}, clientKey: &admin,
			serviceReq: "cephx", serviceMode: "crc", clientMode: "crc"}, "rejected our client.admin credentials",
			"cephx: unknown entity client.admin"},
		{"auth none against cephx-only", authCase{serverKeys: map[string]cephx.Key{"client.admin": admin},
			serviceReq: "cephx", serviceMode: "crc", clientMode: "crc"}, "no auth method left",
			"auth method 1 not allowed, and the peer gave up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := authPair(t, tc.ac)
			base := leakcheck.Take(t, r.srv, r.cli)
			c := requireRefusedBy(t, r.cli, r.srv, tc.want)
			require.NotContains(t, c.Err().Error(), "\n")
			testenv.WaitFor(t, 10*time.Second, "the server's log of the refusal", func() bool {
				return strings.Contains(r.srvLog.String(), tc.srvWant)
			}, r.srvLog.String)
			line := logLine(r.srvLog.String(), "msgr: refused peer")
			require.Contains(t, line, "peer=127.0.0.1:", "the refusal names the peer's address")
			require.Contains(t, line, tc.srvWant, "and the reason")
			require.NotZero(t, r.srv.AuthRefusals(), "refusal counted")
			// A lossless client would try again after its backoff: give up.
			c.MarkDown()
			base.Settled(t, 10*time.Second, r.srv, r.cli)
			requireNothingFrom(t, r)
			require.Equal(t, uint64(strings.Count(r.srvLog.String(), "msgr: refused peer")), r.srv.AuthRefusals(),
				"each refusal logged once")
		})
	}
}

// logLine is the first line of log holding msg.
func logLine(log, msg string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, msg) {
			return l
		}
	}
	return ""
}

// TestSecureRecordAttacks alters a client's secure-mode stream after the
// handshake, through a proxy: a flipped bit, a record replayed, a record
// truncated (the stream going on after it, or ending in it). The server
// detects each: it faults the connection with an error that says what
// happened, logs it, dispatches nothing of it, and (a lossy session) both
// sides drop the connection with nothing left behind.
func TestSecureRecordAttacks(t *testing.T) {
	admin := newKey(t)
	// Each attack arranges, after the first message went through, for the
	// second to be damaged on its way; then sends it (and perhaps a third).
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, px *proxy, mark int)
		want   error
		third  bool // the damage shows only when more bytes follow
	}{
		{"flipped bit", func(t *testing.T, px *proxy, _ int) {
			px.setMangle(px.once(func(b []byte) ([]byte, bool) { b[len(b)/2] ^= 0x04; return b, false }))
		}, msgr2.ErrSecureAuth, false},
		{"replayed record", func(t *testing.T, px *proxy, mark int) {
			px.replay(t, mark) // the first message's records, byte for byte
		}, msgr2.ErrSecureAuth, false},
		{"truncated record and the stream goes on", func(t *testing.T, px *proxy, _ int) {
			px.setMangle(px.once(func(b []byte) ([]byte, bool) { return b[:len(b)-1], false }))
		}, msgr2.ErrSecureAuth, true},
		{"truncated record at the end of the stream", func(t *testing.T, px *proxy, _ int) {
			px.setMangle(px.once(func(b []byte) ([]byte, bool) { return b[:len(b)-10], true }))
		}, io.ErrUnexpectedEOF, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := authPair(t, authCase{serverKeys: map[string]cephx.Key{"client.admin": admin}, clientKey: &admin,
				serviceReq: "cephx", serviceMode: "secure", clientMode: "secure", lossy: true})
			px := startProxy(t, r.srv.Addr().String())
			base := leakcheck.Take(t, r.srv, r.cli)
			c, err := r.cli.ConnectTo(msgr.EntityTypeOSD, px.ln.Addr().String())
			require.NoError(t, err)
			// Connected and quiet: from here the client sends only the
			// records of the first message.
			c.SendKeepalive()
			testenv.WaitFor(t, 10*time.Second, "the session and a keepalive ack", func() bool {
				return c.Stats().KeepaliveAcks > 0
			}, func() string { return fmt.Sprintf("client error %v", c.Err()) })
			mark := px.upLen()
			require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: []byte("first")}))
			select {
			case <-r.sw.got:
			case <-time.After(20 * time.Second):
				t.Fatalf("first message not delivered: %v", c.Err())
			}
			tc.attack(t, px, mark)
			_ = c.SendMessage(&msgr.Message{Type: 2, Front: bytes.Repeat([]byte("x"), 500)})
			if tc.third {
				time.Sleep(50 * time.Millisecond) // the damaged record first, alone
				_ = c.SendMessage(&msgr.Message{Type: 3, Front: []byte("third")})
			}
			var detected error
			testenv.WaitFor(t, 10*time.Second, "the server to fault the connection", func() bool {
				detected = r.sw.reset(tc.want)
				return detected != nil
			}, r.srvLog.String)
			t.Logf("server: %v", detected)
			require.NotContains(t, detected.Error(), "\n")
			line := logLine(r.srvLog.String(), "msgr: fault")
			require.Contains(t, line, detected.Error(), "the server logs the fault")
			if tc.want == msgr2.ErrSecureAuth {
				require.Contains(t, detected.Error(), "tampered, truncated, replayed or reordered")
			} else {
				require.Contains(t, detected.Error(), "in the middle of a frame (truncated")
			}
			base.Settled(t, 10*time.Second, r.srv, r.cli)
			requireNothingFrom(t, r)
			require.Zero(t, r.srv.AuthRefusals(), "the peer passed authentication")
		})
	}
}

// TestPerfDumpOutlivesConnections: the messenger's counters keep what a
// closed connection counted, and the admin socket serves them (the ceph CLI
// reading it is tested in perfcounters/adminsock).
func TestPerfDumpOutlivesConnections(t *testing.T) {
	dir, err := os.MkdirTemp("", "asok-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	scfg := testConfig()
	scfg.AdminSocket = filepath.Join(dir, "$cluster-$name.asok")
	srv, err := msgr.New(scfg, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 2})
	require.NoError(t, err)
	defer srv.Shutdown()
	got := make(chan *msgr.Message, 8)
	srv.AddDispatcherTail(&catcher{ch: got})
	require.NoError(t, srv.Bind("127.0.0.1:0"))
	require.NoError(t, srv.Start())
	cli, err := msgr.New(testConfig(), msgr.EntityName{Type: msgr.EntityTypeClient, Num: 2})
	require.NoError(t, err)
	require.NoError(t, cli.Start())
	c, err := cli.ConnectTo(msgr.EntityTypeOSD, srv.Addr().String())
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		require.NoError(t, c.SendMessage(&msgr.Message{Type: 3, Front: []byte("hi")}))
		<-got
	}
	require.NoError(t, cli.Shutdown())
	srv.MarkDownAll() // the server's session closes too
	var dump map[string]map[string]uint64
	deadline := time.Now().Add(10 * time.Second)
	for {
		require.NoError(t, json.Unmarshal(srv.PerfDump(), &dump))
		if dump["AsyncMessenger::Worker-0"]["msgr_active_connections"] == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "server connection never closed: %v", dump)
		time.Sleep(10 * time.Millisecond)
	}
	recv := uint64(0)
	for set, vals := range dump {
		if strings.HasPrefix(set, "AsyncMessenger::Worker-") {
			recv += vals["msgr_recv_messages"]
		}
	}
	require.Equal(t, uint64(5), recv, "received messages counted after the connection closed: %v", dump)
	body, err := testenv.AdminSocket(filepath.Join(dir, "ceph-osd.2.asok"), `{"prefix": "perf dump"}`, 10*time.Second)
	require.NoError(t, err)
	require.Contains(t, string(body), "msgr_recv_messages")
}
