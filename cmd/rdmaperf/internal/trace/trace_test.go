package trace

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDiff(t *testing.T) {
	a := Snapshot{Doorbells: 10, HW: map[string]uint64{"sent_pkts": 100, "rcvd_pkts": 50, "completer_retry_err": 1, "send_err": 0, "rcvd_seq_err": 2, "link_downed": 0}}
	b := Snapshot{Doorbells: 35, HW: map[string]uint64{"sent_pkts": 300, "rcvd_pkts": 150, "completer_retry_err": 4, "send_err": 1, "rcvd_seq_err": 2, "link_downed": 1, "duplicate_request": 2}}
	d := Diff(a, b, 100)
	require.Equal(t, uint64(25), d.Doorbells)
	require.InDelta(t, 0.25, d.DoorbellsPerMsg, 1e-12)
	require.Equal(t, uint64(200), d.SentPkts)
	require.Equal(t, uint64(100), d.RcvdPkts)
	require.Equal(t, uint64(3+2), d.Retransmits, "completer retries and duplicate requests")
	require.Equal(t, uint64(1+1), d.Errors, "send_err and link_downed")
	require.NotContains(t, d.HW, "rcvd_seq_err", "unchanged counters are left out")
	s := d.String()
	require.True(t, strings.HasPrefix(s, " trace: doorbells 25 (0.2500/msg over 100 msgs)"), s)
	require.Contains(t, s, "send_err=1")
	// A counter that went backwards (device re-created) counts as zero.
	require.Zero(t, Diff(b, a, 1).SentPkts)
}

func TestProgramShape(t *testing.T) {
	insns := program(3, 1234)
	require.Equal(t, "out", insns[len(insns)-2].Symbol())
	require.Greater(t, len(insns), 10)
}

func TestOpenWithoutRoot(t *testing.T) {
	geteuid = func() int { return 1000 }
	t.Cleanup(func() { geteuid = os.Geteuid })
	_, err := Open("", 1)
	require.ErrorIs(t, err, ErrUnavailable)
	require.Contains(t, err.Error(), "needs root")
}
