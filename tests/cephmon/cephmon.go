package cephmon

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

// Tools are the Ceph programs Start runs, with the Debian package of each.
// The admin socket is spoken directly (AdminSocket), so the ceph CLI is not
// needed.
var Tools = testenv.CephTools

// Tool is a program and the Debian package that installs it.
type Tool = testenv.Tool

// Missing is testenv.Missing: skip outside CI naming what is missing, fail in
// CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	testenv.Missing(t, format, args...)
}

// Require is testenv.RequireTools.
func Require(t testing.TB, tools ...Tool) {
	t.Helper()
	testenv.RequireTools(t, tools...)
}

// RDMA selects `ms type = async+rdma` on an RDMA device.
type RDMA struct {
	Device string // e.g. "rxe0"
	GIDIdx int    // GID index of the device's RoCEv2 IPv4 GID
}

// Options says where and how Start runs the monitor.
type Options struct {
	// Host is the IP address the monitor binds (a free port on it is
	// probed); "" is 127.0.0.1.
	Host string
	// RDMA, when not nil, makes the monitor use the rdma messenger on that
	// device; nil is posix (TCP).
	RDMA *RDMA
	// Limit bounds the wait for leadership; 0 is 60 s.
	Limit time.Duration
	// CephX makes the monitor require cephx from everyone (auth_*_required
	// = cephx) and puts a client.admin key (caps mon "allow *") in the
	// keyring its mkfs imports; Mon.Keyring holds it.
	CephX bool
	// Env names an environment variable that, when set to ip:port, is the
	// v2 address of a monitor already running: Start then returns it
	// without checking for or starting anything.
	Env string
}

// Mon is a running ceph-mon (or, from Options.Env, one running elsewhere,
// of which only Addr is known).
type Mon struct {
	Addr string // ip:port of its v2 address
	Dir  string // data, log and admin-socket directory ("" if not ours)
	Conf string // its ceph.conf (the ceph CLI reads the same)
	// Fsid is the cluster's fsid, which an MMonCommand must carry ("" if
	// not ours).
	Fsid string
	// Keyring is the keyring made with ceph-authtool (mon. and, with
	// Options.CephX, client.admin); "" if not ours.
	Keyring string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
}

// Conf is the ceph.conf of a single-monitor cluster ("a") on addr with data,
// log, run dir and admin socket in dir, auth none and msgr2 only. With rdma
// it uses the rdma messenger on that device: the configuration known to make
// `ceph -s` answer over RDMA, with the rdma buffer counts cut down (Ceph's
// defaults register 128 MiB of TX chunks and post 4096 128 KiB receive
// buffers, slow to pin in the emulated VM).
func Conf(fsid, addr, dir string, rdma *RDMA) string {
	return conf(fsid, addr, dir, rdma, "none")
}

// conf is Conf with the auth method every auth_*_required names.
func conf(fsid, addr, dir string, rdma *RDMA, auth string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[global]
fsid = %[1]s
mon host = v2:%[2]s
mon initial members = a
auth cluster required = %[3]s
auth service required = %[3]s
auth client required = %[3]s
`, fsid, addr, auth)
	if rdma != nil {
		fmt.Fprintf(&b, `ms type = async+rdma
ms async rdma device name = %s
ms async rdma gid idx = %d
ms async rdma send buffers = 256
ms async rdma receive buffers = 1024
ms async rdma receive queue len = 256
`, rdma.Device, rdma.GIDIdx)
	}
	fmt.Fprintf(&b, `ms bind msgr1 = false
ms bind msgr2 = true
mon data = %[1]s/mon.$id
log file = %[1]s/$name.log
run dir = %[1]s
admin socket = %[1]s/$name.asok
`, dir)
	return b.String()
}

// Start makes a fresh monitor (monmaptool, ceph-authtool, ceph-mon --mkfs)
// with Conf, runs it in the foreground (--no-mon-config), and waits (bounded
// by o.Limit) until it is leader of monmap epoch 1, asking its admin socket:
// on first boot a monitor wins an election at epoch 0 and bootstraps again,
// dropping client connections, before it settles. It is killed and its
// directory removed at cleanup, and its log tail is logged when the test
// failed. Missing Ceph programs skip or fail per Missing.
func Start(t testing.TB, o Options) *Mon {
	t.Helper()
	if o.Env != "" {
		if addr := os.Getenv(o.Env); addr != "" {
			t.Logf("ceph-mon: using the monitor at %s (%s)", addr, o.Env)
			return &Mon{Addr: addr}
		}
	}
	Require(t, Tools...)
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Limit == 0 {
		o.Limit = 60 * time.Second
	}
	l, err := net.Listen("tcp", net.JoinHostPort(o.Host, "0"))
	if err != nil {
		t.Fatalf("ceph-mon: probe a free port on %s: %v", o.Host, err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	// Not t.TempDir: its path holds the test name and the admin socket's
	// must fit sun_path (108 bytes).
	dir, err := os.MkdirTemp("", "cephmon-")
	if err != nil {
		t.Fatal(err)
	}
	m := &Mon{Addr: addr, Dir: dir, Conf: filepath.Join(dir, "ceph.conf")}
	t.Cleanup(func() {
		if m.done != nil {
			_ = m.cmd.Process.Kill()
			<-m.done
		}
		if t.Failed() {
			t.Logf("tail of the ceph-mon log:\n%s", m.LogTail(8000))
		}
		_ = os.RemoveAll(dir)
	})
	fsid := fmt.Sprintf("6d1c2a40-1b7e-4c55-8f0a-%012x", time.Now().UnixNano()&0xffffffffffff)
	m.Fsid = fsid
	auth := "none"
	if o.CephX {
		auth = "cephx"
	}
	if err := os.WriteFile(m.Conf, []byte(conf(fsid, addr, dir, o.RDMA, auth)), 0o600); err != nil {
		t.Fatal(err)
	}
	phase := time.Now()
	monmap, keyring := filepath.Join(dir, "monmap"), filepath.Join(dir, "keyring")
	m.Keyring = keyring
	steps := [][]string{
		{"monmaptool", "--create", "--add", "a", "v2:" + addr, "--fsid", fsid, monmap},
		{"ceph-authtool", "--create-keyring", keyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"},
	}
	if o.CephX {
		steps = append(steps, []string{"ceph-authtool", keyring, "--gen-key", "-n", "client.admin",
			"--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *"})
	}
	steps = append(steps, []string{"ceph-mon", "-c", m.Conf, "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", keyring})
	for _, args := range steps {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Logf("ceph-mon: mkfs took %v", time.Since(phase).Round(time.Millisecond))

	phase = time.Now()
	m.cmd = exec.Command("ceph-mon", "-c", m.Conf, "-i", "a", "-f", "--no-mon-config")
	m.cmd.Stdout, m.cmd.Stderr = io.Discard, io.Discard
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start ceph-mon: %v", err)
	}
	m.done = make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(o.Limit)
	firstReply := false
	var last string
	for {
		st, err := Status(m.Asok())
		if err == nil && !firstReply {
			firstReply = true
			t.Logf("ceph-mon: admin socket answers %v after start (state %s)", time.Since(phase).Round(time.Millisecond), st.State)
		}
		if err == nil && st.State == "leader" && st.Monmap.Epoch >= 1 {
			t.Logf("ceph-mon: leader of monmap epoch %d on %s %v after start", st.Monmap.Epoch, addr, time.Since(phase).Round(time.Millisecond))
			return m
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("state %s, monmap epoch %d", st.State, st.Monmap.Epoch)
		}
		select {
		case <-m.done:
			t.Fatalf("ceph-mon exited (%v) before becoming leader (%s)", m.cmd.ProcessState, last)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ceph-mon on %s not leader within %v: %s", addr, o.Limit, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Asok is the path of the monitor's admin socket ("" if not ours).
func (m *Mon) Asok() string {
	if m.Dir == "" {
		return ""
	}
	return filepath.Join(m.Dir, "mon.a.asok")
}

// LogTail returns the last n bytes of the monitor's log.
func (m *Mon) LogTail(n int) string {
	if m.Dir == "" {
		return "(no log: monitor not started here)"
	}
	b, err := os.ReadFile(filepath.Join(m.Dir, "mon.a.log"))
	if err != nil {
		return err.Error()
	}
	return tail(string(b), n)
}

// Pid is the monitor's process id (0 if not ours).
func (m *Mon) Pid() int {
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// StatusReply is the part of `mon_status` the helper reads.
type StatusReply struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Monmap struct {
		Epoch int `json:"epoch"`
	} `json:"monmap"`
}

// Status asks a monitor's admin socket for mon_status.
func Status(asok string) (StatusReply, error) {
	var st StatusReply
	out, err := testenv.AdminSocket(asok, `{"prefix":"mon_status"}`, 5*time.Second)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("mon_status reply %q: %w", tail(string(out), 200), err)
	}
	return st, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
