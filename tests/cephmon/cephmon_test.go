package cephmon

import (
	"bufio"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

func TestConf(t *testing.T) {
	tests := []struct {
		name    string
		rdma    *RDMA
		want    []string
		notWant []string
	}{
		{"posix", nil,
			[]string{"fsid = F\n", "mon host = v2:127.0.0.1:6789\n", "auth client required = none\n", "ms bind msgr1 = false\n", "ms bind msgr2 = true\n", "admin socket = /d/$name.asok\n"},
			[]string{"ms type", "rdma"}},
		{"rdma", &RDMA{Device: "rxe0", GIDIdx: 1},
			[]string{"mon host = v2:127.0.0.1:6789\n", "ms type = async+rdma\n", "ms async rdma device name = rxe0\n", "ms async rdma gid idx = 1\n", "ms bind msgr1 = false\n"},
			nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Conf("F", "127.0.0.1:6789", "/d", tc.rdma)
			require.True(t, strings.HasPrefix(c, "[global]\n"), c)
			for _, w := range tc.want {
				require.Contains(t, c, w)
			}
			for _, w := range tc.notWant {
				require.NotContains(t, c, w)
			}
		})
	}
}

// fakeAsok answers each admin-socket command with reply(command).
func fakeAsok(t *testing.T, reply func(cmd string) []byte) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "asok-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "a.asok")
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			cmd, err := bufio.NewReader(c).ReadString(0)
			if err == nil {
				b := reply(strings.TrimSuffix(cmd, "\x00"))
				_, _ = c.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
				_, _ = c.Write(b)
			}
			_ = c.Close()
		}
	}()
	return path
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name    string
		reply   string
		state   string
		epoch   int
		wantErr string
	}{
		{"leader", `{"name":"a","state":"leader","monmap":{"epoch":1}}`, "leader", 1, ""},
		{"probing", `{"name":"a","state":"probing","monmap":{"epoch":0}}`, "probing", 0, ""},
		{"not json", `oops`, "", 0, "mon_status reply"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			asok := fakeAsok(t, func(cmd string) []byte { got = cmd; return []byte(tc.reply) })
			st, err := Status(asok)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, `{"prefix":"mon_status"}`, got)
			require.Equal(t, tc.state, st.State)
			require.Equal(t, tc.epoch, st.Monmap.Epoch)
		})
	}
}

func TestAdminSocketErrors(t *testing.T) {
	_, err := testenv.AdminSocket(filepath.Join(t.TempDir(), "none.asok"), "{}", time.Second)
	require.Error(t, err, "no socket")
	asok := fakeAsok(t, func(string) []byte { return make([]byte, 0) })
	b, err := testenv.AdminSocket(asok, "{}", 5*time.Second)
	require.NoError(t, err)
	require.Empty(t, b)
}

func TestStartExisting(t *testing.T) {
	t.Setenv("CEPHMON_TEST_EXISTING", "127.0.0.1:1")
	m := Start(t, Options{Env: "CEPHMON_TEST_EXISTING"})
	require.Equal(t, "127.0.0.1:1", m.Addr)
	require.Zero(t, m.Pid())
	require.Empty(t, m.Asok())
}

// TestStart starts a real monitor on loopback and checks that it is what
// Start promises: leader of monmap epoch 1, answering on its admin socket and
// listening on Addr.
func TestStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ceph-mon")
	}
	m := Start(t, Options{})
	require.NotZero(t, m.Pid())
	st, err := Status(m.Asok())
	require.NoError(t, err)
	require.Equal(t, "leader", st.State)
	require.Equal(t, "a", st.Name)
	require.GreaterOrEqual(t, st.Monmap.Epoch, 1)
	c, err := net.DialTimeout("tcp", m.Addr, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, c.Close())
}
