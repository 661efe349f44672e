package rdmatest

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

func TestStreamParser(t *testing.T) {
	var stream []byte
	stream = msgr2.AppendBanner(stream, 3, 1)
	stream = msgr2.AppendControlFrame(stream, &msgr2.Keepalive2{})
	stream = msgr2.AppendFrame(stream, msgr2.TagMessage, make([]byte, msgr2.MsgHeader2Len), make([]byte, 100<<10))
	stream = msgr2.AppendControlFrame(stream, &msgr2.Keepalive2Ack{})
	tests := []struct {
		name  string
		chunk int
	}{
		{"whole", len(stream)},
		{"bytes", 1},
		{"odd", 7},
		{"large", 40 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newSockTrace("x", true)
			for b := stream; len(b) > 0; {
				k := min(tc.chunk, len(b))
				tr.feed(DirRecv, b[:k])
				b = b[k:]
			}
			var got []string
			for _, e := range tr.Events() {
				got = append(got, e.What)
			}
			require.Equal(t, []string{"banner", "KEEPALIVE2", "MESSAGE", "KEEPALIVE2_ACK"}, got, "%s", tr)
		})
	}
	t.Run("garbage", func(t *testing.T) {
		tr := newSockTrace("x", true)
		tr.feed(DirRecv, []byte("this is not a ceph banner at all"))
		require.Equal(t, 1, tr.Count(DirRecv, "banner-error"), "%s", tr)
	})
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		stat string
		want time.Duration
		bad  bool
	}{
		{"1 (x) S 0 1 1 0 -1 4194560 10 0 0 0 250 50 0 0 20 0 1 0 1 1 1", 3 * time.Second, false},
		{"1 (a (b) c) R 0 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1", 100 * time.Millisecond, false},
		{"1 (x) S 0", 0, true},
		{"no paren", 0, true},
	}
	for _, tc := range tests {
		got, err := parseStatCPU(tc.stat)
		if tc.bad {
			require.Error(t, err, tc.stat)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
	own, err := ProcCPU()
	require.NoError(t, err)
	require.GreaterOrEqual(t, own, time.Duration(0))
}

func TestCountOwned(t *testing.T) {
	own := owner{tids: map[int]bool{42: true, 44: true}, comm: "x.test"}
	tests := []struct {
		json string
		want int
	}{
		{`[{"ifindex":0,"ifname":"rxe0","lqpn":1,"type":"GSI","comm":"ib_core"},{"lqpn":17,"pid":42,"comm":"x.test"},{"lqpn":18,"pid":43,"comm":"x.test"}]`, 1},
		{`[{"cqn":1,"pid":44,"comm":"x.test"},{"cqn":2,"comm":"x.test"},{"cqn":3,"comm":"other"}]`, 2},
		{`[]`, 0},
		{``, 0},
		{`[{"pid":42}][{"pid":42}]`, 2},
	}
	for _, tc := range tests {
		got, err := countOwned([]byte(tc.json), own)
		require.NoError(t, err, tc.json)
		require.Equal(t, tc.want, got, tc.json)
	}
}

// TestResourcesOnDevice reads the real counters: a process that opened no
// verbs context owns no RDMA object, and its fds are counted.
func TestResourcesOnDevice(t *testing.T) {
	DeviceA(t)
	c, unsupported, err := RDMAResources(os.Getpid())
	require.NoError(t, err)
	t.Logf("own rdma resources: %v (kinds the tool rejects: %v)", c, unsupported)
	require.Contains(t, c, "qp")
	require.Zero(t, c["qp"])
	fds, err := FDs()
	require.NoError(t, err)
	require.Positive(t, fds["fd"])
}
