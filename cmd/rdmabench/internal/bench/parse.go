package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Row is one result row of either tool. Latencies are one-way µs
// (perftest's t_typical is the median), bandwidth MB/sec (2^20 bytes/s).
type Row struct {
	Bytes    int     `json:"bytes"`
	Iters    int     `json:"iterations"`
	TMin     float64 `json:"t_min_usec,omitempty"`
	TTypical float64 `json:"t_typical_usec,omitempty"`
	TAvg     float64 `json:"t_avg_usec,omitempty"`
	P99      float64 `json:"p99_usec,omitempty"`
	P999     float64 `json:"p99_9_usec,omitempty"`
	BWPeak   float64 `json:"bw_peak,omitempty"`
	BWAvg    float64 `json:"bw_average,omitempty"`
	MsgRate  float64 `json:"msg_rate_mpps,omitempty"`
	// DoorbellsPerMsg is rdmaperf --trace's count (ibv_post_send calls
	// reaching the kernel per message), when traced.
	DoorbellsPerMsg *float64 `json:"doorbells_per_msg,omitempty"`
}

// ErrNoRow is returned when a tool's output holds no result row.
var ErrNoRow = errors.New("no result row")

// ParsePerftest reads the last result row of a perftest client's text
// output (perftest_parameters.h's REPORT_FMT_LAT / REPORT_FMT_BW: rows start
// with a space and a digit). perftest prints inf or nan when it could not
// read the CPU frequency; such a row is an error, not a number.
func ParsePerftest(out []byte, lat bool) (Row, error) {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if len(l) > 1 && l[0] == ' ' && l[1] >= '0' && l[1] <= '9' {
			last = l
		}
	}
	if last == "" {
		return Row{}, ErrNoRow
	}
	f := strings.Fields(last)
	// lat: bytes iters t_min t_max t_typical t_avg t_stdev p99 p99.9
	// bw:  bytes iters bw_peak bw_average msg_rate
	want := 5
	if lat {
		want = 9
	}
	if len(f) < want {
		return Row{}, fmt.Errorf("perftest row %q: %d fields, want %d", last, len(f), want)
	}
	var r Row
	var err error
	num := func(i int) float64 {
		v, e := strconv.ParseFloat(f[i], 64)
		if e == nil && (math.IsInf(v, 0) || math.IsNaN(v) || v < 0) {
			e = fmt.Errorf("not a measurement")
		}
		if e != nil && err == nil {
			err = fmt.Errorf("perftest row %q: field %d %q: %w", last, i+1, f[i], e)
		}
		return v
	}
	r.Bytes, r.Iters = int(num(0)), int(num(1))
	if lat {
		r.TMin, r.TTypical, r.TAvg, r.P99, r.P999 = num(2), num(4), num(5), num(7), num(8)
	} else {
		r.BWPeak, r.BWAvg, r.MsgRate = num(2), num(3), num(4)
		if err == nil && r.BWAvg == 0 && r.MsgRate == 0 {
			// perftest could not time the run (its "Correlation
			// coefficient" warning): zeros, not a measurement.
			err = fmt.Errorf("perftest row %q: zero bandwidth and message rate: not a measurement", last)
		}
	}
	if err != nil {
		return Row{}, err
	}
	return r, nil
}

// rdmaperfLine is one line of rdmaperf --json: a latency row, a bandwidth
// row, or {"trace": {...}} after the row it belongs to.
type rdmaperfLine struct {
	Test     string   `json:"test"`
	Bytes    *int     `json:"bytes"`
	Iters    int      `json:"iterations"`
	TMin     float64  `json:"t_min_usec"`
	TTypical *float64 `json:"t_typical_usec"`
	TAvg     float64  `json:"t_avg_usec"`
	P99      float64  `json:"p99_usec"`
	P999     float64  `json:"p99_9_usec"`
	BWPeak   float64  `json:"bw_peak"`
	BWAvg    *float64 `json:"bw_average"`
	MsgRate  float64  `json:"msg_rate_mpps"`
	Unit     string   `json:"unit"`
	Trace    *struct {
		DoorbellsPerMsg *float64 `json:"doorbells_per_msg"`
	} `json:"trace"`
	Error string `json:"error"`
}

// ParseRdmaperf reads the last result row of an rdmaperf --json client's
// output, and the trace that follows it if any. Lines that are not JSON
// (warnings on stderr merged into the output) are skipped; a row without
// the field its kind needs is an error, so a renamed field fails loudly.
func ParseRdmaperf(out []byte, lat bool) (Row, error) {
	var r Row
	found := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 || l[0] != '{' {
			continue
		}
		var j rdmaperfLine
		if err := json.Unmarshal(l, &j); err != nil {
			return Row{}, fmt.Errorf("rdmaperf --json line %q: %w", l, err)
		}
		switch {
		case j.Error != "":
			return Row{}, fmt.Errorf("rdmaperf --json: %s", j.Error)
		case j.Trace != nil:
			if found && j.Trace.DoorbellsPerMsg != nil {
				v := *j.Trace.DoorbellsPerMsg
				r.DoorbellsPerMsg = &v
			}
			continue
		case j.Bytes == nil:
			return Row{}, fmt.Errorf("rdmaperf --json line %q: no \"bytes\"", l)
		}
		r = Row{Bytes: *j.Bytes, Iters: j.Iters}
		if lat {
			if j.TTypical == nil {
				return Row{}, fmt.Errorf("rdmaperf --json line %q: no \"t_typical_usec\"", l)
			}
			r.TMin, r.TTypical, r.TAvg, r.P99, r.P999 = j.TMin, *j.TTypical, j.TAvg, j.P99, j.P999
		} else {
			if j.BWAvg == nil {
				return Row{}, fmt.Errorf("rdmaperf --json line %q: no \"bw_average\"", l)
			}
			if j.Unit != "" && j.Unit != "MB/sec" {
				return Row{}, fmt.Errorf("rdmaperf --json line %q: unit %q, want MB/sec", l, j.Unit)
			}
			r.BWPeak, r.BWAvg, r.MsgRate = j.BWPeak, *j.BWAvg, j.MsgRate
		}
		found = true
	}
	if !found {
		return Row{}, ErrNoRow
	}
	return r, nil
}

// Value is the row's headline number: t_typical for latency, BW average
// for bandwidth.
func (r Row) Value(lat bool) float64 {
	if lat {
		return r.TTypical
	}
	return r.BWAvg
}
