package msgr_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
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

// proxy forwards one TCP connection at a time between a client and addr,
// letting a test read (and alter) the client-to-server bytes.
type proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	seen   bytes.Buffer            // server-to-client and client-to-server bytes
	mangle func(b []byte, off int) // alters client-to-server bytes in flight
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
	off := 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if up && p.mangle != nil {
				p.mangle(buf[:n], off)
			}
			p.seen.Write(buf[:n])
			p.mu.Unlock()
			off += n
			if _, werr := dst.Write(buf[:n]); werr != nil {
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

type authCase struct {
	serverKeys  map[string]cephx.Key
	clientKey   *cephx.Key // nil: no key (auth none only)
	serviceReq  string
	serviceMode string
	clientMode  string
}

func authPair(t *testing.T, ac authCase) (srv, cli *msgr.Messenger, got chan *msgr.Message) {
	t.Helper()
	scfg := testConfig()
	scfg.Keyring = keyringFile(t, ac.serverKeys)
	scfg.AuthServiceRequired = ac.serviceReq
	scfg.ServiceMode = ac.serviceMode
	srv, err := msgr.New(scfg, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 1})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown() })
	got = make(chan *msgr.Message, 16)
	srv.AddDispatcherTail(&catcher{ch: got})
	require.NoError(t, srv.Bind("127.0.0.1:0"))
	require.NoError(t, srv.Start())

	ccfg := testConfig()
	ccfg.Keyring = filepath.Join(t.TempDir(), "none")
	if ac.clientKey != nil {
		ccfg.Key = ac.clientKey.String()
	}
	ccfg.ClientMode = ac.clientMode
	cli, err = msgr.New(ccfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: 1})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Shutdown() })
	require.NoError(t, cli.Start())
	return srv, cli, got
}

// TestCephXBetweenMessengers: a client with the right key gets in over
// cephx, in crc and in secure mode; in secure mode its payload never shows
// on the wire, in crc mode it does (the proxy sees both directions).
func TestCephXBetweenMessengers(t *testing.T) {
	admin := newKey(t)
	for _, mode := range []string{"crc", "secure"} {
		t.Run(mode, func(t *testing.T) {
			srv, cli, got := authPair(t, authCase{serverKeys: map[string]cephx.Key{"client.admin": admin},
				clientKey: &admin, serviceReq: "cephx", serviceMode: mode, clientMode: mode})
			px := startProxy(t, srv.Addr().String())
			c, err := cli.ConnectTo(msgr.EntityTypeOSD, px.ln.Addr().String())
			require.NoError(t, err)
			secret := []byte("attack at dawn, the password is swordfish")
			for i := 0; i < 20; i++ {
				require.NoError(t, c.SendMessage(&msgr.Message{Type: 77, Front: secret, Data: bytes.Repeat([]byte{byte(i)}, 100<<(i%8))}))
			}
			for i := 0; i < 20; i++ {
				select {
				case m := <-got:
					require.Equal(t, secret, m.Front)
					require.Len(t, m.Data, 100<<(i%8))
				case <-time.After(20 * time.Second):
					t.Fatalf("message %d not delivered (client error %v)", i, c.Err())
				}
			}
			require.Equal(t, mode == "crc", px.saw(secret), "plaintext on the wire in %s mode", mode)
			require.Zero(t, srv.AuthRefusals())
		})
	}
}

// TestCephXRefusals: each bad peer is refused with a clear error, nothing of
// it is dispatched, and the server counts the refusal.
func TestCephXRefusals(t *testing.T) {
	admin, other := newKey(t), newKey(t)
	for _, tc := range []struct {
		name string
		ac   authCase
		want string
	}{
		{"wrong key", authCase{serverKeys: map[string]cephx.Key{"client.admin": admin}, clientKey: &other,
			serviceReq: "cephx", serviceMode: "crc", clientMode: "crc"}, "rejected our client.admin credentials"},
		{"unknown entity", authCase{serverKeys: map[string]cephx.Key{"client.bob": admin}, clientKey: &admin,
			serviceReq: "cephx", serviceMode: "crc", clientMode: "crc"}, "rejected our client.admin credentials"},
		{"auth none against cephx-only", authCase{serverKeys: map[string]cephx.Key{"client.admin": admin},
			serviceReq: "cephx", serviceMode: "crc", clientMode: "crc"}, "no auth method left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli, got := authPair(t, tc.ac)
			c, err := cli.ConnectTo(msgr.EntityTypeOSD, srv.Addr().String())
			require.NoError(t, err)
			_ = c.SendMessage(&msgr.Message{Type: 77, Front: []byte("must not arrive")})
			deadline := time.Now().Add(10 * time.Second)
			for c.Err() == nil || !errors.Is(c.Err(), msgr.ErrAuthRefused) {
				require.True(t, time.Now().Before(deadline), "no refusal; client error %v", c.Err())
				time.Sleep(10 * time.Millisecond)
			}
			require.ErrorContains(t, c.Err(), tc.want)
			require.NotContains(t, c.Err().Error(), "\n")
			select {
			case m := <-got:
				t.Fatalf("a refused peer's message was dispatched: %+v", m)
			case <-time.After(200 * time.Millisecond):
			}
			if tc.ac.clientKey != nil {
				require.NotZero(t, srv.AuthRefusals(), "refusal counted")
			}
		})
	}
}

// TestSecureTamperedRecord flips one bit of a client-to-server record after
// the handshake: the server faults the connection with the secure-record
// error and dispatches nothing of it.
func TestSecureTamperedRecord(t *testing.T) {
	admin := newKey(t)
	srv, cli, got := authPair(t, authCase{serverKeys: map[string]cephx.Key{"client.admin": admin},
		clientKey: &admin, serviceReq: "cephx", serviceMode: "secure", clientMode: "secure"})
	px := startProxy(t, srv.Addr().String())
	c, err := cli.ConnectTo(msgr.EntityTypeOSD, px.ln.Addr().String())
	require.NoError(t, err)
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: []byte("first")}))
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		t.Fatalf("first message not delivered: %v", c.Err())
	}
	px.mu.Lock()
	px.mangle = func(b []byte, off int) { b[len(b)/2] ^= 0x04 }
	px.mu.Unlock()
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 2, Front: bytes.Repeat([]byte("x"), 500)}))
	select {
	case m := <-got:
		t.Fatalf("tampered message dispatched: type %d", m.Type)
	case <-time.After(time.Second):
	}
	// The server dropped the socket: the client sees it and reconnects
	// (lossless) or reports it.
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Faults == 0 && c.Err() == nil {
		require.True(t, time.Now().Before(deadline), "the tampered record did not fault the connection")
		time.Sleep(10 * time.Millisecond)
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
	conn, err := net.Dial("unix", filepath.Join(dir, "ceph-osd.2.asok"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte(`{"prefix": "perf dump"}` + "\x00"))
	require.NoError(t, err)
	var hdr [4]byte
	_, err = io.ReadFull(conn, hdr[:])
	require.NoError(t, err)
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	_, err = io.ReadFull(conn, body)
	require.NoError(t, err)
	require.Contains(t, string(body), "msgr_recv_messages")
}
