package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/perf"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

// rxeDevice returns the device and GID index to test on (testenv's one
// rule: the Soft-RoCE VM exports them; outside CI a missing device skips).
func rxeDevice(t *testing.T) (string, string) {
	t.Helper()
	d := testenv.RequireRDMA(t)
	return d.Name, strconv.Itoa(d.GIDIdx)
}

type sideResult struct {
	code           int
	stdout, stderr string
}

// pair runs a server and a client of the same process, the client given
// the server's out-of-band port; each side gets its own extra arguments.
func pair(t *testing.T, serverArgs, clientArgs []string) (srv, cli sideResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var o, e bytes.Buffer
		srv.code = runMain(ctx, serverArgs, &o, &e, ln)
		srv.stdout, srv.stderr = o.String(), e.String()
	}()
	var o, e bytes.Buffer
	cli.code = runMain(ctx, append(append([]string{}, clientArgs...), "-p", port, "127.0.0.1"), &o, &e, nil)
	cli.stdout, cli.stderr = o.String(), e.String()
	wg.Wait()
	return srv, cli
}

// rows returns the result rows of a perftest-style report: the lines that
// start with a space and a digit, split into fields as scripts do.
func rows(out string) [][]string {
	var r [][]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if len(l) > 1 && l[0] == ' ' && l[1] >= '0' && l[1] <= '9' {
			r = append(r, strings.Fields(l))
		}
	}
	return r
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err, s)
	return v
}

func TestRawSubcommands(t *testing.T) {
	dev, gid := rxeDevice(t)
	cases := []struct {
		test string
		args []string
		bw   bool
		// serverRow: does the server print a row too (perftest does for
		// send/write ping-pong, send_bw's own measurement, write_bw's copy).
		serverRow bool
	}{
		{test: "send_lat", args: []string{"-n", "100"}, serverRow: true},
		{test: "write_lat", args: []string{"-n", "100", "-s", "4096"}, serverRow: true},
		{test: "read_lat", args: []string{"-n", "100", "-s", "64"}},
		{test: "send_bw", args: []string{"-n", "200", "-s", "4096"}, bw: true, serverRow: true},
		{test: "write_bw", args: []string{"-n", "200", "-s", "65536"}, bw: true, serverRow: true},
		{test: "send_lat", args: []string{"-n", "20", "-D", "1"}, serverRow: true},
		{test: "write_lat", args: []string{"-n", "20", "-D", "1", "-s", "2"}, serverRow: true},
		{test: "send_lat", args: []string{"-n", "100", "-s", "2", "-I", "64"}, serverRow: true},
		{test: "write_lat", args: []string{"-n", "100", "-s", "2", "-I", "64"}, serverRow: true},
		{test: "send_bw", args: []string{"-n", "20", "-D", "1", "-s", "1024"}, bw: true, serverRow: true},
	}
	for _, tc := range cases {
		t.Run(tc.test+strings.Join(tc.args, ""), func(t *testing.T) {
			args := append([]string{tc.test, "-d", dev, "-x", gid}, tc.args...)
			srv, cli := pair(t, args, args)
			require.Equal(t, 0, cli.code, "client:\n%s\n%s\nserver:\n%s\n%s", cli.stdout, cli.stderr, srv.stdout, srv.stderr)
			require.Equal(t, 0, srv.code, "server:\n%s\n%s", srv.stdout, srv.stderr)
			r := rows(cli.stdout)
			require.Len(t, r, 1, cli.stdout)
			duration := strings.Contains(strings.Join(tc.args, " "), "-D")
			if tc.bw {
				require.Len(t, r[0], 5)
				require.Greater(t, num(t, r[0][3]), 0.0, "BW average")
				require.Greater(t, num(t, r[0][4]), 0.0, "MsgRate")
				require.Contains(t, cli.stdout, perf.ResultFmtBW)
			} else if duration {
				require.Len(t, r[0], 4)
				require.Greater(t, num(t, r[0][2]), 0.0, "t_avg")
			} else {
				require.Len(t, r[0], 9)
				require.Equal(t, "100", r[0][1])
				require.Greater(t, num(t, r[0][4]), 0.0, "t_typical")
				require.LessOrEqual(t, num(t, r[0][2]), num(t, r[0][4]), "t_min <= t_typical")
				require.Contains(t, cli.stdout, perf.ResultFmtLat)
			}
			require.Contains(t, cli.stdout, " local address: LID ")
			require.Contains(t, cli.stdout, " GID index       : "+gid)
			if tc.serverRow {
				require.Len(t, rows(srv.stdout), 1, srv.stdout)
			} else {
				require.Empty(t, rows(srv.stdout), srv.stdout)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	dev, gid := rxeDevice(t)
	// Every line of stdout is one JSON object: the rows, nothing else.
	// (-a is covered by the parameter tests; 23 sizes up to 8 MiB take a
	// minute on the emulated VM.)
	for _, tc := range []struct{ test, size string }{{"write_lat", "256"}, {"write_bw", "8192"}} {
		args := []string{tc.test, "-d", dev, "-x", gid, "-s", tc.size, "-n", "50", "--json"}
		srv, cli := pair(t, args, args)
		require.Equal(t, 0, cli.code, cli.stderr)
		require.Equal(t, 0, srv.code, srv.stderr)
		lines := strings.Split(strings.TrimSpace(cli.stdout), "\n")
		require.Len(t, lines, 1, cli.stdout)
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &r), lines[0])
		require.Equal(t, tc.test, r["test"])
		require.Equal(t, 50.0, r["iterations"])
		if tc.test == "write_lat" {
			require.Greater(t, r["t_typical_usec"], 0.0)
		} else {
			require.Greater(t, r["bw_average"], 0.0)
			require.Equal(t, "MB/sec", r["unit"])
		}
	}
}

func TestTraceCountsDoorbells(t *testing.T) {
	dev, gid := rxeDevice(t)
	testenv.RequireRoot(t, "read the kernel counters of --trace")
	base := []string{"send_bw", "-d", dev, "-x", gid, "-n", "300", "-s", "64"}
	srv, cli := pair(t, base, append(append([]string{}, base...), "--trace"))
	require.Equal(t, 0, cli.code, cli.stderr)
	require.Equal(t, 0, srv.code, srv.stderr)
	// The result row is the same as without --trace; the trace line follows.
	require.Len(t, rows(cli.stdout), 1)
	var line string
	for _, l := range strings.Split(cli.stdout, "\n") {
		if strings.HasPrefix(l, " trace: ") {
			line = l
		}
	}
	require.NotEmpty(t, line, cli.stdout)
	f := strings.Fields(line)
	require.Equal(t, "doorbells", f[1])
	db := num(t, f[2])
	require.Greater(t, db, 0.0, line)
	// Chained posts: fewer doorbells than messages.
	require.Less(t, db, 300.0, line)
	require.Contains(t, line, "sent_pkts")
}

func TestMismatchRefused(t *testing.T) {
	// The refusal happens in the parameter exchange, before any device is
	// opened: it runs anywhere.
	srv, cli := pair(t, []string{"send_lat", "-s", "64", "-n", "100"}, []string{"send_lat", "-s", "128", "-n", "100"})
	require.Equal(t, 1, srv.code)
	require.Equal(t, 1, cli.code)
	for _, e := range []string{srv.stderr, cli.stderr} {
		require.Contains(t, e, "parameters differ")
		require.Contains(t, e, "size (-s): server 64, client 128")
	}
	srv, cli = pair(t, []string{"send_lat"}, []string{"write_bw"})
	require.Equal(t, 1, cli.code)
	require.Contains(t, cli.stderr, "test: server send_lat, client write_bw")
	require.Contains(t, cli.stderr, "iterations (-n): server 1000, client 5000")
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"bogus"}, {"send_lat", "-s"}, {"send_lat", "-q"}} {
		var o, e bytes.Buffer
		require.Equal(t, 2, runMain(context.Background(), args, &o, &e, nil), args)
		require.Contains(t, e.String(), "usage: rdmaperf")
	}
	var o, e bytes.Buffer
	require.Equal(t, 0, runMain(context.Background(), []string{"send_lat", "-h"}, &o, &e, nil))
	require.Contains(t, o.String(), "--report_gbits")
}

func TestMsgrPosix(t *testing.T) {
	for _, test := range []string{"msgr_lat", "msgr_bw"} {
		t.Run(test, func(t *testing.T) {
			args := []string{test, "--stack", "posix", "-n", "300", "-s", "1024"}
			srv, cli := pair(t, args, args)
			require.Equal(t, 0, cli.code, cli.stderr)
			require.Equal(t, 0, srv.code, srv.stderr)
			r := rows(cli.stdout)
			require.Len(t, r, 1, cli.stdout)
			require.Equal(t, "1024", r[0][0])
			require.Equal(t, "300", r[0][1])
			require.Len(t, rows(srv.stdout), 1, "the server prints the client's row")
		})
	}
}

func TestMsgrRDMA(t *testing.T) {
	dev, gid := rxeDevice(t)
	for _, test := range []string{"msgr_lat", "msgr_bw"} {
		t.Run(test, func(t *testing.T) {
			args := []string{test, "--stack", "rdma", "-d", dev, "-x", gid, "-n", "200", "-s", "4096"}
			srv, cli := pair(t, args, args)
			require.Equal(t, 0, cli.code, "client:\n%s\n%s\nserver:\n%s", cli.stdout, cli.stderr, srv.stderr)
			require.Equal(t, 0, srv.code, srv.stderr)
			r := rows(cli.stdout)
			require.Len(t, r, 1, cli.stdout)
			require.Equal(t, "200", r[0][1])
		})
	}
}

// traceLine returns the fields of the client's " trace: " line.
func traceLine(t *testing.T, out string) []string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, " trace: ") {
			return strings.Fields(l)
		}
	}
	t.Fatalf("no trace line in:\n%s", out)
	return nil
}

// mergeChunk is the RDMA chunk size of the merging test.
const mergeChunk = "256"

func TestMsgrMergingTrace(t *testing.T) {
	dev, gid := rxeDevice(t)
	testenv.RequireRoot(t, "read the kernel counters of --trace")
	// Small messages with a deep window and small chunks, merging on and
	// off. The messenger writes each message directly from the sending
	// goroutine while the connection is idle, so without merging a stream
	// of small messages rings about one doorbell per message; adaptive
	// merging (inflight WRs past ms_async_rdma_count_trigger) must ring
	// fewer. A count comparison, not a time.
	perMsg := map[string]float64{}
	for _, trig := range []string{"true", "false"} {
		base := []string{"msgr_bw", "--stack", "rdma", "-d", dev, "-x", gid, "-n", "1500", "-s", "64", "--msgr_opt", "ms_async_rdma_buffer_size=" + mergeChunk}
		cli := append(append([]string{}, base...), "--trace", "--msgr_opt", "ms_async_rdma_submit_time_trigger="+trig)
		srv, c := pair(t, base, cli)
		require.Equal(t, 0, c.code, "client:\n%s\n%s\nserver:\n%s", c.stdout, c.stderr, srv.stderr)
		require.Equal(t, 0, srv.code, srv.stderr)
		f := traceLine(t, c.stdout)
		db := num(t, f[2])
		require.Greater(t, db, 0.0)
		perMsg[trig] = db / 1500
		t.Logf("merging %s: %s", trig, strings.Join(f, " "))
	}
	require.Less(t, perMsg["true"], perMsg["false"], "doorbells per message: merging on must ring fewer than off")
	t.Logf("doorbells per message: merging on %.4f, off %.4f", perMsg["true"], perMsg["false"])
}

// bgNoteRe is the stderr line of a row measured beside a background stream.
var bgNoteRe = regexp.MustCompile(`the background connection moved (\d+) of its (\d+) bytes during the measurement \(([0-9.]+) MB/sec\)`)

// checkBackground runs msgr_lat with --msgr_bg_bytes n on args, once with
// the text report and once with --json, and checks that the rows keep
// perftest's shape, that the run succeeded (the client waits until the
// server has acknowledged all n bytes) and that the part moved during the
// measurement is reported, the same on stderr and in the JSON row.
func checkBackground(t *testing.T, args []string, n int) {
	t.Helper()
	args = append(append([]string{}, args...), "--msgr_bg_bytes", strconv.Itoa(n))
	srv, cli := pair(t, args, args)
	require.Equal(t, 0, cli.code, "client:\n%s\n%s\nserver:\n%s\n%s", cli.stdout, cli.stderr, srv.stdout, srv.stderr)
	require.Equal(t, 0, srv.code, srv.stderr)
	r := rows(cli.stdout)
	require.Len(t, r, 1, cli.stdout)
	require.Len(t, r[0], 9, "a perftest latency row: %v", r[0])
	require.Len(t, rows(srv.stdout), 1, "the server prints the client's row")
	m := bgNoteRe.FindStringSubmatch(cli.stderr)
	require.NotNil(t, m, cli.stderr)
	require.Equal(t, strconv.Itoa(n), m[2])
	moved := num(t, m[1])
	require.Greater(t, moved, 0.0, "the background stream moved nothing during %s iterations", r[0][1])
	require.LessOrEqual(t, moved, float64(n))
	require.Regexp(t, bgNoteRe, srv.stderr, "the server notes the client's row")

	js := append(append([]string{}, args...), "--json")
	srv, cli = pair(t, js, js)
	require.Equal(t, 0, cli.code, "client:\n%s\n%s\nserver:\n%s\n%s", cli.stdout, cli.stderr, srv.stdout, srv.stderr)
	require.Equal(t, 0, srv.code, srv.stderr)
	lines := strings.Split(strings.TrimSpace(cli.stdout), "\n")
	require.Len(t, lines, 1, cli.stdout)
	var row map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &row), lines[0])
	require.Greater(t, row["t_typical_usec"], 0.0)
	require.Contains(t, row, "msgr_bg_bytes_moved", lines[0])
	jm := row["msgr_bg_bytes_moved"].(float64)
	require.Greater(t, jm, 0.0)
	require.LessOrEqual(t, jm, float64(n))
	require.Greater(t, row["msgr_bg_mb_sec"], 0.0)
	m = bgNoteRe.FindStringSubmatch(cli.stderr)
	require.NotNil(t, m, cli.stderr)
	require.Equal(t, jm, num(t, m[1]), "stderr and the JSON row report the same bytes")
	require.False(t, strings.HasPrefix(strings.TrimSpace(cli.stderr), "{"), "stderr has no JSON lines (rdmabench parses the combined output)")
}

func TestMsgrBackgroundPosix(t *testing.T) {
	// 32 MiB stream: several hundred ms over loopback, far longer than the
	// first acknowledgement the measurement waits for.
	checkBackground(t, []string{"msgr_lat", "--stack", "posix", "-n", "1000", "-s", "2"}, 32<<20)
}

func TestMsgrBackgroundShortBudget(t *testing.T) {
	// A budget of one message and a bit: the last message is short and the
	// run ends when the server has both, whatever the ping-pong's length.
	args := []string{"msgr_lat", "--stack", "posix", "-n", "100", "-s", "8", "--msgr_bg_bytes", strconv.Itoa(64<<10 + 1)}
	srv, cli := pair(t, args, args)
	require.Equal(t, 0, cli.code, "client:\n%s\n%s\nserver:\n%s", cli.stdout, cli.stderr, srv.stderr)
	require.Equal(t, 0, srv.code, srv.stderr)
	m := bgNoteRe.FindStringSubmatch(cli.stderr)
	require.NotNil(t, m, cli.stderr)
	require.LessOrEqual(t, num(t, m[1]), float64(64<<10+1))
}

func TestMsgrBackgroundOneWorker(t *testing.T) {
	args := []string{"msgr_lat", "--stack", "posix", "-n", "100", "--msgr_bg_bytes", "4096", "--msgr_opt", "ms_async_op_threads=2"}
	srv, cli := pair(t, args, args)
	require.Equal(t, 1, srv.code)
	require.Equal(t, 1, cli.code)
	require.Contains(t, srv.stderr, "needs ms_async_op_threads=1")
}

func TestMsgrBackgroundRDMA(t *testing.T) {
	dev, gid := rxeDevice(t)
	checkBackground(t, []string{"msgr_lat", "--stack", "rdma", "-d", dev, "-x", gid, "-n", "300", "-s", "2"}, 16<<20)
}
