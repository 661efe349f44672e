package bench

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	noCaps  = Caps{}
	allCaps = Caps{OptOK: func(string) bool { return true }, FlagOK: func(string) bool { return true }, Root: true}
)

func TestBenchPlanRatioPointsAlternate(t *testing.T) {
	p := BenchPlan(3, DefaultSizes, noCaps)
	count := map[Key]int{}
	for _, s := range p {
		count[s.Key()]++
	}
	for _, k := range []Key{{"perftest", "send_lat", 2}, {"rdmaperf", "write_lat", 4096}, {"rdmaperf", "send_bw", 65536},
		{"msgr-rdma", "msgr_lat", 2}, {"msgr-posix", "msgr_lat", 4096}, {"msgr-rdma", "msgr_bw", 65536}} {
		require.Equal(t, 3, count[k], "%v", k)
	}
	for _, k := range []Key{{"perftest", "send_lat", 256}, {"rdmaperf", "write_bw", 1048576}, {"msgr-posix", "msgr_bw", 2}} {
		require.Equal(t, 1, count[k], "%v", k)
	}
	// perftest and rdmaperf alternate: each rdmaperf run follows the
	// perftest run of the same point.
	for i, s := range p {
		if s.Series.Name == "rdmaperf" {
			require.Equal(t, "perftest", p[i-1].Series.Name)
			require.Equal(t, s.Key().Test, p[i-1].Test)
			require.Equal(t, s.Size, p[i-1].Size)
		}
	}
	// Without the polling-mode option: the default rdma series, the held
	// rows planned (to say "not measured"), no traced runs without root.
	require.Zero(t, count[Key{"msgr-rdma-worker", "msgr_lat", 2}])
	require.Equal(t, 3, count[Key{"msgr-rdma-worker-held", "msgr_lat", 2}])
	require.Zero(t, count[Key{"merge-true", "msgr_bw", 64}])
	require.Equal(t, "this tree's config has no ms_async_rdma_polling_mode", noCaps.Missing(ModeSeries("worker")))
	require.Contains(t, noCaps.Missing(HeldSeries("worker")), "no ms_async_rdma_polling_mode")
	require.Equal(t, 1000, LatIters(4096))
	require.Equal(t, 20, BWIters(1<<20))
}

func TestBenchPlanWithPollingModes(t *testing.T) {
	p := BenchPlan(1, QuickSizes, allCaps)
	var names []string
	for _, s := range p {
		if !slices.Contains(names, s.Series.Name) {
			names = append(names, s.Series.Name)
		}
	}
	require.Equal(t, []string{"perftest", "rdmaperf", "msgr-rdma-dispatcher", "msgr-rdma-worker", "msgr-posix",
		"msgr-rdma-dispatcher-held", "msgr-rdma-worker-held", "msgr-rdma-worker-app", "merge-true", "merge-false"}, names)
	require.Empty(t, allCaps.Missing(HeldSeries("worker")))
	var profiled []Key
	for _, s := range BenchPlan(2, QuickSizes, allCaps) {
		if s.Profile {
			require.Equal(t, 1, s.Rep)
			profiled = append(profiled, s.Key())
		}
	}
	require.Equal(t, []Key{{"msgr-rdma-dispatcher", "msgr_lat", 2}, {"msgr-rdma-worker", "msgr_lat", 2}}, profiled)
	only := Caps{OptOK: allCaps.OptOK}
	require.Equal(t, "rdmaperf has no --msgr_bg_bytes yet", only.Missing(HeldSeries("worker")))
}

func TestArgv(t *testing.T) {
	dev := Device{Name: "rxe0", GIDIndex: 1}
	for _, tc := range []struct {
		s        Spec
		srv, cli string
	}{
		{Spec{Series: Perftest, Test: "send_lat", Size: 2, Iters: 1000},
			"ib_send_lat -d rxe0 -x 1 -F -s 2 -n 1000 -p 20001", "ib_send_lat -d rxe0 -x 1 -F -s 2 -n 1000 -p 20001 127.0.0.1"},
		{Spec{Series: Rdmaperf, Test: "write_bw", Size: 65536, Iters: 200},
			"rp write_bw -d rxe0 -x 1 --json -s 65536 -n 200 -p 20001", "rp write_bw -d rxe0 -x 1 --json -s 65536 -n 200 -p 20001 127.0.0.1"},
		{Spec{Series: Posix, Test: "msgr_lat", Size: 2, Iters: 1000},
			"rp msgr_lat --stack posix --json -s 2 -n 1000 -p 20001", "rp msgr_lat --stack posix --json -s 2 -n 1000 -p 20001 127.0.0.1"},
		{Spec{Series: HeldSeries("worker"), Test: "msgr_lat", Size: 2, Iters: 1000},
			"rp msgr_lat --stack rdma -d rxe0 -x 1 --json --msgr_opt ms_async_rdma_polling_mode=worker --msgr_bg_bytes 67108864 -s 2 -n 1000 -p 20001",
			"rp msgr_lat --stack rdma -d rxe0 -x 1 --json --msgr_opt ms_async_rdma_polling_mode=worker --msgr_bg_bytes 67108864 -s 2 -n 1000 -p 20001 127.0.0.1"},
		{Spec{Series: MergeSeries(false), Test: "msgr_bw", Size: 64, Iters: 2000},
			"rp msgr_bw --stack rdma -d rxe0 -x 1 --json --msgr_opt ms_async_rdma_buffer_size=256 -s 64 -n 2000 -p 20001",
			"rp msgr_bw --stack rdma -d rxe0 -x 1 --json --msgr_opt ms_async_rdma_buffer_size=256 -s 64 -n 2000 -p 20001 --trace --msgr_opt ms_async_rdma_submit_time_trigger=false 127.0.0.1"},
	} {
		require.Equal(t, tc.srv, strings.Join(tc.s.ServerArgv("rp", dev, 20001), " "))
		require.Equal(t, tc.cli, strings.Join(tc.s.ClientArgv("rp", dev, 20001, "127.0.0.1"), " "))
	}
}

func TestDemoPlan(t *testing.T) {
	p := DemoPlan(3, 500)
	require.Len(t, p, 3*2*2*2+4)
	require.Equal(t, 500, p[0].Iters)
	require.Equal(t, Spec{Series: Rdmaperf, Test: "send_bw", Size: 65536, Iters: 200, Rep: 1}, p[len(p)-1])
}

func TestListensOn(t *testing.T) {
	table := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:4E21 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:4E22 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 1235 1 0000000000000000 20 4 30 10 -1
`)
	require.True(t, ListensOn(table, 20001))
	require.False(t, ListensOn(table, 20002), "an established socket is not a listener")
	require.False(t, ListensOn(table, 1))
}
