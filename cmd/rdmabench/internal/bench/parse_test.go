package bench

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePerftest(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		lat        bool
		want       Row
		err        string
	}{
		{name: "lat", file: "testdata/perftest_send_lat.txt", lat: true,
			want: Row{Bytes: 2, Iters: 200, TMin: 13.91, TTypical: 14.42, TAvg: 43.90, P99: 1129.55, P999: 8278.97}},
		{name: "bw", file: "testdata/perftest_send_bw.txt",
			want: Row{Bytes: 4096, Iters: 200, BWPeak: 40.99, BWAvg: 18.06, MsgRate: 0.004622}},
		{name: "untimed bw", file: "testdata/perftest_send_bw_untimed.txt", err: "not a measurement"},
		{name: "lat parsed as bw", file: "testdata/perftest_send_bw.txt", lat: true, err: "5 fields, want 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			require.NoError(t, err)
			r, err := ParsePerftest(b, tc.lat)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, r)
		})
	}
}

func TestParsePerftestBadRows(t *testing.T) {
	for name, out := range map[string]string{
		"inf":    " 2       1000          inf          inf      inf    \t       inf       \t0.00 \t\tinf \t\tinf\n",
		"nan":    " 2       1000          13.91          8278.97      -nan    \t       43.90       \t147.88 \t\t1129.55 \t\t8278.97\n",
		"no row": "Couldn't connect to 127.0.0.1:20001\nUnable to open file descriptor for socket connection\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePerftest([]byte(out), true)
			require.Error(t, err)
		})
	}
	_, err := ParsePerftest([]byte("x\n"), true)
	require.ErrorIs(t, err, ErrNoRow)
}

func TestParseRdmaperf(t *testing.T) {
	b, err := os.ReadFile("testdata/rdmaperf_send_lat.jsonl")
	require.NoError(t, err)
	r, err := ParseRdmaperf(b, true)
	require.NoError(t, err)
	require.Equal(t, Row{Bytes: 2, Iters: 200, TMin: 12.172, TTypical: 12.462, TAvg: 15.05262436548223, P99: 74.554, P999: 96.4335}, r)

	b, err = os.ReadFile("testdata/rdmaperf_send_bw.jsonl")
	require.NoError(t, err)
	r, err = ParseRdmaperf(b, false)
	require.NoError(t, err)
	require.InDelta(t, 28.56969623565317, r.BWAvg, 1e-9)
	require.InDelta(t, 0.00045711513977045066, r.MsgRate, 1e-12)
	require.Nil(t, r.DoorbellsPerMsg)

	b, err = os.ReadFile("testdata/rdmaperf_msgr_bw_trace.jsonl")
	require.NoError(t, err)
	r, err = ParseRdmaperf(b, false)
	require.NoError(t, err)
	require.NotNil(t, r.DoorbellsPerMsg)
	require.Equal(t, 0.939, *r.DoorbellsPerMsg)
	require.InDelta(t, 0.36007959753427965, r.BWAvg, 1e-12)

	b, err = os.ReadFile("testdata/rdmaperf_msgr_lat.jsonl")
	require.NoError(t, err)
	r, err = ParseRdmaperf(b, true)
	require.NoError(t, err)
	require.Equal(t, 5617.127, r.TTypical)
}

func TestParseRdmaperfErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		out string
		lat bool
		err string
	}{
		"renamed field": {`{"test":"send_lat","bytes":2,"iterations":5,"t_median_usec":1}`, true, `no "t_typical_usec"`},
		"no bytes":      {`{"test":"send_bw","bw_average":1}`, false, `no "bytes"`},
		"gbits":         {`{"test":"send_bw","bytes":2,"bw_average":1,"unit":"Gb/sec"}`, false, "want MB/sec"},
		"error line":    {`{"error":"json: unsupported value: NaN"}`, true, "unsupported value"},
		"broken json":   {`{"test":`, true, "unexpected end"},
		"text only":     {"rdmaperf: connect: connection refused\n", true, ErrNoRow.Error()},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseRdmaperf([]byte(tc.out), tc.lat)
			require.ErrorContains(t, err, tc.err)
		})
	}
}
