package rdmatest

import (
	"encoding/binary"
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
)

// CephMon is a scratch ceph-mon 16.2 speaking msgr2 over async+rdma.
type CephMon struct {
	Addr string // "10.77.0.1:port", its v2 address
	Dir  string // data, log and admin-socket directory
	Conf string // its ceph.conf (the ceph CLI reads the same)
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// MonConf is the ceph.conf of a single-monitor cluster on addr using the
// rdma messenger on device d with auth none and msgr2 only: the
// configuration known to make `ceph -s` answer over RDMA, with the rdma
// buffer counts cut down (Ceph's defaults register 128 MiB of TX chunks and
// post 4096 128 KiB receive buffers, slow to pin in the emulated VM).
func MonConf(fsid, addr, dir string, d Device) string {
	return fmt.Sprintf(`[global]
fsid = %[1]s
mon host = v2:%[2]s
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
ms type = async+rdma
ms async rdma device name = %[4]s
ms async rdma gid idx = %[5]d
ms async rdma send buffers = 256
ms async rdma receive buffers = 1024
ms async rdma receive queue len = 256
ms_bind_msgr1 = false
ms_bind_msgr2 = true
mon data = %[3]s/mon.$id
log file = %[3]s/$name.log
run dir = %[3]s
admin socket = %[3]s/$name.asok
`, fsid, addr, dir, d.Name, d.GIDIdx)
}

// StartCephMon makes a fresh monitor (monmaptool, ceph-authtool, ceph-mon
// --mkfs) on device d's address with MonConf, runs it in the foreground
// (--no-mon-config), and waits (bounded by limit) until it is leader of
// monmap epoch 1, asking its admin socket: on first boot a monitor wins an
// election at epoch 0 and bootstraps again, dropping connections, before it
// settles. It is killed at cleanup, and its log tail is logged when the test
// failed. Missing Ceph binaries skip or fail per Missing.
func StartCephMon(t testing.TB, d Device, limit time.Duration) *CephMon {
	t.Helper()
	for _, tool := range []string{"ceph-mon", "monmaptool", "ceph-authtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			Missing(t, "%s (Debian packages ceph-mon, ceph-common)", tool)
		}
	}
	l, err := net.Listen("tcp", d.Addr(0))
	if err != nil {
		t.Fatalf("probe a free port on %s: %v", d.Host, err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	dir, err := os.MkdirTemp("", "rdmatest-mon-")
	if err != nil {
		t.Fatal(err)
	}
	m := &CephMon{Addr: addr, Dir: dir, Conf: filepath.Join(dir, "ceph.conf")}
	fsid := fmt.Sprintf("6d1c2a40-1b7e-4c55-8f0a-%012x", time.Now().UnixNano()&0xffffffffffff)
	if err := os.WriteFile(m.Conf, []byte(MonConf(fsid, addr, dir, d)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if m.done != nil {
			_ = m.cmd.Process.Kill()
			<-m.done
		}
		if t.Failed() {
			t.Logf("tail of the ceph-mon log:\n%s", m.LogTail(6000))
		}
		_ = os.RemoveAll(dir)
	})
	phase := time.Now()
	for _, args := range [][]string{
		{"monmaptool", "--create", "--add", "a", "v2:" + addr, "--fsid", fsid, filepath.Join(dir, "monmap")},
		{"ceph-authtool", "--create-keyring", filepath.Join(dir, "keyring"), "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"},
		{"ceph-mon", "-c", m.Conf, "--mkfs", "-i", "a", "--monmap", filepath.Join(dir, "monmap"), "--keyring", filepath.Join(dir, "keyring")},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Logf("ceph-mon: mkfs took %v", time.Since(phase).Round(time.Millisecond))
	phase = time.Now()
	firstReply := false
	m.cmd = exec.Command("ceph-mon", "-c", m.Conf, "-i", "a", "-f", "--no-mon-config")
	m.cmd.Stdout, m.cmd.Stderr = io.Discard, io.Discard
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start ceph-mon: %v", err)
	}
	m.done = make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	asok := filepath.Join(dir, "mon.a.asok")
	deadline := time.Now().Add(limit)
	var last string
	for {
		st, err := MonStatus(asok)
		if err == nil && !firstReply {
			firstReply = true
			t.Logf("ceph-mon: admin socket answers %v after start (state %s)", time.Since(phase).Round(time.Millisecond), st.State)
		}
		if err == nil && st.State == "leader" && st.Monmap.Epoch >= 1 {
			t.Logf("ceph-mon: leader of monmap epoch %d %v after start", st.Monmap.Epoch, time.Since(phase).Round(time.Millisecond))
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
			t.Fatalf("ceph-mon on %s (rdma %s) not leader within %v: %s", addr, d.Name, limit, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// LogTail returns the last n bytes of the monitor's log.
func (m *CephMon) LogTail(n int) string {
	b, err := os.ReadFile(filepath.Join(m.Dir, "mon.a.log"))
	if err != nil {
		return err.Error()
	}
	return tail(string(b), n)
}

// Pid is the monitor's process id.
func (m *CephMon) Pid() int { return m.cmd.Process.Pid }

// MonStatusReply is the part of `mon_status` the harness reads.
type MonStatusReply struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Monmap struct {
		Epoch int `json:"epoch"`
	} `json:"monmap"`
}

// MonStatus asks a monitor's admin socket for mon_status, speaking the admin
// socket protocol directly (a JSON command ended by NUL; the reply is a
// big-endian u32 length and that many bytes) so no ceph CLI (slow Python in
// the emulated VM) is started.
func MonStatus(asok string) (MonStatusReply, error) {
	var st MonStatusReply
	out, err := AdminSocket(asok, `{"prefix":"mon_status"}`, 5*time.Second)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("mon_status reply %q: %w", tail(string(out), 200), err)
	}
	return st, nil
}

// AdminSocket sends one JSON command to a Ceph admin socket and returns the
// reply.
func AdminSocket(asok, cmd string, limit time.Duration) ([]byte, error) {
	c, err := net.DialTimeout("unix", asok, limit)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(limit))
	if _, err := c.Write(append([]byte(cmd), 0)); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, fmt.Errorf("admin socket %s: reply length: %w", asok, err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 16<<20 {
		return nil, fmt.Errorf("admin socket %s: reply of %d bytes", asok, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, fmt.Errorf("admin socket %s: reply: %w", asok, err)
	}
	return b, nil
}
