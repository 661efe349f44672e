package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"

	"github.com/stretchr/testify/require"
)

// TestAgreesWithCephConf parses files with Ceph's own parser (ceph-conf
// --show-config-value) and with Parse, and compares the values of the
// options both know: suffix handling (IEC for sizes, SI for counts),
// section precedence, key spelling with spaces, quoting and comments.
func TestAgreesWithCephConf(t *testing.T) {
	testenv.RequireTools(t, testenv.Tool{Name: "ceph-conf", Package: "ceph-common"})
	files := []struct {
		name, conf string
	}{
		{"suffixes", `[global]
	ms async rdma buffer size = 64K
	ms_async_rdma_send_buffers = 2K
	ms_async_rdma_receive_buffers = 3M   # SI
	ms_async_rdma_receive_queue_len = 5000
	ms_tcp_rcvbuf = 1Mi ; IEC
	ms_tcp_listen_backlog = 1K
	ms_async_rdma_polling_us = 7
`},
		{"sections", `[client]
	ms_async_op_threads = 5
	ms_async_rdma_device_name = client
[global]
	ms_async_op_threads = 4
	ms_async_rdma_device_name = global
	ms_async_rdma_type = iwarp
[client.admin]
	ms_async_rdma_device_name = 'admin'
[mon]
	ms_async_rdma_device_name = mon
`},
		{"values", `[global]
	ms_tcp_nodelay = 0
	ms_async_rdma_cm = true
	ms_async_rdma_support_srq = False
	ms_async_rdma_enable_hugepage = 1
	ms_initial_backoff = 0.5
	ms_max_backoff = 20
	ms_async_rdma_device_name = "rxe\"0"
	ms_async_rdma_gid_idx = -1
	ms_async_rdma_dscp = 0
	ms_async_rdma_sl = 5 ; PCP
	ms_tcp_rcvbuf = 512B
	ms_async_rdma_port_num = \
		2
`},
	}
	compared := []string{
		"ms_async_rdma_buffer_size", "ms_async_rdma_send_buffers", "ms_async_rdma_receive_buffers",
		"ms_async_rdma_receive_queue_len", "ms_tcp_rcvbuf", "ms_tcp_listen_backlog", "ms_async_rdma_polling_us",
		"ms_async_op_threads", "ms_async_rdma_device_name", "ms_async_rdma_type", "ms_tcp_nodelay",
		"ms_async_rdma_cm", "ms_async_rdma_support_srq", "ms_async_rdma_enable_hugepage",
		"ms_initial_backoff", "ms_max_backoff", "ms_async_rdma_gid_idx", "ms_async_rdma_dscp",
		"ms_async_rdma_sl", "ms_async_rdma_port_num",
	}
	dir := t.TempDir()
	for _, f := range files {
		for _, entity := range []string{"client.admin", "osd.1"} {
			t.Run(f.name+"/"+entity, func(t *testing.T) {
				path := filepath.Join(dir, f.name+".conf")
				require.NoError(t, os.WriteFile(path, []byte(f.conf), 0o600))
				c := Default()
				_, err := c.ParseFile(path, entity)
				require.NoError(t, err)
				cmd := exec.Command("ceph-conf", "-c", path, "--name", entity, "--show-config")
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "ceph-conf: %s", out)
				cephValues := map[string]string{}
				for _, line := range strings.Split(string(out), "\n") {
					if k, v, ok := strings.Cut(line, " = "); ok {
						cephValues[k] = v
					}
				}
				for _, opt := range compared {
					theirs, ok := cephValues[opt]
					require.True(t, ok, "ceph-conf --show-config lacks %s", opt)
					ours, err := c.Get(opt)
					require.NoError(t, err)
					if a, errA := strconv.ParseFloat(theirs, 64); errA == nil {
						if b, errB := strconv.ParseFloat(ours, 64); errB == nil {
							require.Equal(t, a, b, "%s: ceph-conf %q, ours %q", opt, theirs, ours)
							continue
						}
					}
					require.Equal(t, theirs, ours, "%s", opt)
				}
			})
		}
	}
}
