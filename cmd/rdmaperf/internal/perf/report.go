package perf

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The text of perftest's result blocks (perftest_parameters.h, v4.5 as
// shipped by Debian), byte for byte, so that scripts parsing perftest parse
// rdmaperf.
const (
	ResultLine    = "---------------------------------------------------------------------------------------\n"
	ResultFmtBW   = " #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]"
	ResultFmtBWG  = " #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]"
	ResultFmtLat  = " #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    t_avg[usec]    t_stdev[usec]   99% percentile[usec]   99.9% percentile[usec] "
	ResultFmtLatD = " #bytes        #iterations       t_avg[usec]    tps average"

	reportFmtBW    = " %-7d    %-10d       %-7.2f            %-7.2f\t\t   %-7.6f\n"
	reportFmtBWExt = " %-7d    %d           %-7.6f            %-7.6f            %-7.6f\n"
	reportFmtLat   = " %-7d %d          %-7.2f        %-7.2f      %-7.2f  \t       %-7.2f     \t%-7.2f\t\t%-7.2f \t\t%-7.2f\n"
	reportFmtLatD  = " %-7d       %d            %-7.2f        %-7.2f\n"
)

// LatResult is one latency row; times are one-way microseconds (RTT/2 for
// ping-pong tests, the full round trip for RDMA READ), as perftest reports.
type LatResult struct {
	Test     string  `json:"test"`
	Bytes    int     `json:"bytes"`
	Iters    int     `json:"iterations"`
	TMin     float64 `json:"t_min_usec"`
	TMax     float64 `json:"t_max_usec"`
	TTypical float64 `json:"t_typical_usec"`
	TAvg     float64 `json:"t_avg_usec"`
	TStdev   float64 `json:"t_stdev_usec"`
	P99      float64 `json:"p99_usec"`
	P999     float64 `json:"p99_9_usec"`
	Duration bool    `json:"duration_mode,omitempty"`
	TPS      float64 `json:"tps_average,omitempty"`
	// msgr_lat --msgr_bg_bytes: the background bytes the server received
	// while the ping-pong ran (nil without a background stream), and
	// their rate in MB/sec (2^20 bytes, as the bandwidth rows).
	BgBytesMoved *int64  `json:"msgr_bg_bytes_moved,omitempty"`
	BgMBps       float64 `json:"msgr_bg_mb_sec,omitempty"`
}

// LatStats computes perftest's latency row from the post timestamps of a
// ping-pong (print_report_lat): deltas between consecutive posts, sorted,
// the two largest dropped, median as t_typical, its integer-truncated stdev,
// and the 99/99.9 percentiles; rttFactor is 2 for ping-pong, 1 for READ.
// scratch is reused when large enough.
func LatStats(test string, size int, posted []int64, rttFactor int, scratch []int64) LatResult {
	iters := len(posted)
	r := LatResult{Test: test, Bytes: size, Iters: iters}
	measure := iters - 1
	if measure < 3 {
		return r
	}
	delta := scratch
	if cap(delta) < measure {
		delta = make([]int64, measure)
	}
	delta = delta[:measure]
	for i := range measure {
		delta[i] = posted[i+1] - posted[i]
	}
	slices.Sort(delta)
	measure -= 2 // LAT_MEASURE_TAIL
	var median int64
	if (measure-1)%2 != 0 {
		median = (delta[measure/2] + delta[measure/2-1]) / 2
	} else {
		median = delta[measure/2]
	}
	q := 1000.0 * float64(rttFactor) // ns -> usec, one way
	var sum float64
	for i := range measure {
		sum += float64(delta[i]) / q
	}
	avg := sum / float64(measure)
	var stdevSum float64
	for i := range measure {
		// perftest computes the variance in ints (truncating); so do we.
		tv := int(avg - float64(delta[i])/q)
		stdevSum += float64(tv * tv)
	}
	i99 := int(math.Ceil(float64(measure) * 0.99))
	i999 := int(math.Ceil(float64(measure) * 0.999))
	r.TMin = float64(delta[0]) / q
	r.TMax = float64(delta[measure]) / q
	r.TTypical = float64(median) / q
	r.TAvg = avg
	r.TStdev = math.Sqrt(stdevSum / float64(measure))
	r.P99 = float64(delta[i99]) / q
	r.P999 = float64(delta[i999]) / q
	return r
}

// LatDurationStats is the row of a latency test run with -D: the average
// one-way latency and round trips per second over elapsedNs.
func LatDurationStats(test string, size, iters int, elapsedNs int64, rttFactor int) LatResult {
	r := LatResult{Test: test, Bytes: size, Iters: iters, Duration: true}
	if iters > 0 && elapsedNs > 0 {
		r.TAvg = float64(elapsedNs) / 1000 / float64(iters) / float64(rttFactor)
		r.TPS = float64(iters) * 1e9 / float64(elapsedNs)
	}
	return r
}

// BWResult is one bandwidth row. Unit is "MB/sec" (2^20 bytes, as perftest)
// or "Gb/sec".
type BWResult struct {
	Test    string  `json:"test"`
	Bytes   int     `json:"bytes"`
	Iters   int     `json:"iterations"`
	BWPeak  float64 `json:"bw_peak"`
	BWAvg   float64 `json:"bw_average"`
	MsgRate float64 `json:"msg_rate_mpps"`
	Unit    string  `json:"unit"`
}

// BWStats computes perftest's bandwidth row (print_report_bw): posted[i] is
// when WR i was posted, completed[j] when completion of WR j was seen (set
// every cqMod WRs and for the last); with noPeak, completed[0] is the end
// and posted[0] the start.
func BWStats(test string, size, iters int, posted, completed []int64, cqMod int, noPeak, gbits bool) BWResult {
	r := BWResult{Test: test, Bytes: size, Iters: iters, Unit: "MB/sec"}
	factor := float64(0x100000)
	if gbits {
		factor, r.Unit = 125000000, "Gb/sec"
	}
	if iters == 0 || len(posted) == 0 || len(completed) == 0 {
		return r
	}
	// perftest's cycles are unsigned: an unset completed[0] makes the
	// initial delta huge.
	optDelta := math.Inf(1)
	if completed[0] >= posted[0] {
		optDelta = float64(completed[0] - posted[0])
	}
	if !noPeak {
		n := iters
		for i := 0; i < n; i++ {
			j0 := roundUp(i+1, cqMod) - 1
			for j := j0; j < n; j += cqMod {
				if t := float64(completed[j]-posted[i]) / float64(j-i+1); t < optDelta {
					optDelta = t
				}
			}
			if n%cqMod != 0 {
				j := n - 1
				if t := float64(completed[j]-posted[i]) / float64(j-i+1); t < optDelta {
					optDelta = t
				}
			}
		}
	}
	loc := 0
	if !noPeak {
		loc = iters - 1
	}
	sum := float64(completed[loc] - posted[0])
	if sum <= 0 {
		return r
	}
	r.BWAvg = float64(size) * float64(iters) * 1e9 / (sum * factor)
	r.MsgRate = float64(iters) * 1e3 / sum
	if !noPeak && optDelta > 0 && !math.IsInf(optDelta, 1) {
		r.BWPeak = float64(size) * 1e9 / (optDelta * factor)
	}
	return r
}

func roundUp(v, to int) int {
	if to <= 1 {
		return v
	}
	return (v + to - 1) / to * to
}

// WriteLatRow prints a latency row as perftest does (or as JSON).
func WriteLatRow(w io.Writer, r LatResult, asJSON bool) {
	if asJSON {
		writeJSON(w, r)
		return
	}
	if r.Duration {
		fmt.Fprintf(w, reportFmtLatD, r.Bytes, r.Iters, r.TAvg, r.TPS)
		return
	}
	fmt.Fprintf(w, reportFmtLat, r.Bytes, r.Iters, r.TMin, r.TMax, r.TTypical, r.TAvg, r.TStdev, r.P99, r.P999)
}

// WriteBWRow prints a bandwidth row as perftest does (or as JSON).
func WriteBWRow(w io.Writer, r BWResult, asJSON bool) {
	if asJSON {
		writeJSON(w, r)
		return
	}
	if r.BWAvg < 0.1 && r.Unit == "Gb/sec" {
		fmt.Fprintf(w, reportFmtBWExt, r.Bytes, r.Iters, r.BWPeak, r.BWAvg, r.MsgRate)
		return
	}
	fmt.Fprintf(w, reportFmtBW, r.Bytes, r.Iters, r.BWPeak, r.BWAvg, r.MsgRate)
}

func writeJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(w, "{\"error\":%q}\n", err.Error())
		return
	}
	w.Write(append(b, '\n'))
}

// WriteJSON writes v as one JSON line.
func WriteJSON(w io.Writer, v any) { writeJSON(w, v) }

// ResultHeader prints the RESULT_LINE and the column header of the test.
func ResultHeader(w io.Writer, p *Params) {
	if p.JSON {
		return
	}
	io.WriteString(w, ResultLine)
	switch {
	case p.Lat && p.Duration > 0:
		io.WriteString(w, ResultFmtLatD)
	case p.Lat:
		io.WriteString(w, ResultFmtLat)
	case p.ReportGbits:
		io.WriteString(w, ResultFmtBWG)
	default:
		io.WriteString(w, ResultFmtBW)
	}
	io.WriteString(w, "\n")
}

// DeviceInfo is what the test-info header shows about the device.
type DeviceInfo struct {
	Name      string
	MTU       int // bytes
	LinkLayer string
	GIDIndex  int
	OutReads  int
}

var testsStr = map[string]string{"send": "Send", "write": "RDMA_Write", "read": "RDMA_Read", "msgr": "Messenger"}

// TestInfo prints perftest's test-information block (ctx_print_test_info).
func TestInfo(w io.Writer, p *Params, d DeviceInfo) {
	if p.JSON {
		return
	}
	var b strings.Builder
	b.WriteString(ResultLine)
	b.WriteString("                    ")
	b.WriteString(testsStr[p.Verb] + " ")
	if p.IsBW() {
		b.WriteString("BW ")
	} else {
		b.WriteString("Latency ")
	}
	b.WriteString("Test\n")
	fmt.Fprintf(&b, " Dual-port       : %s\t\tDevice         : %s\n", "OFF", d.Name)
	transport := "IB"
	if p.Verb == "msgr" {
		transport = p.Stack
	}
	fmt.Fprintf(&b, " Number of qps   : %d\t\tTransport type : %s\n", 1, transport)
	fmt.Fprintf(&b, " Connection type : %s\t\tUsing SRQ      : %s\n", "RC", "OFF")
	fmt.Fprintf(&b, " PCIe relax order: %s\n", "Unsupported")
	fmt.Fprintf(&b, " ibv_wr* API     : %s\n", "OFF")
	if !p.IsServer() {
		fmt.Fprintf(&b, " TX depth        : %d\n", p.TxDepth)
	}
	if p.Verb == "send" && p.IsServer() {
		fmt.Fprintf(&b, " RX depth        : %d\n", p.RxDepth)
	}
	if p.IsBW() {
		fmt.Fprintf(&b, " CQ Moderation   : %d\n", p.CQMod)
	}
	fmt.Fprintf(&b, " Mtu             : %d[B]\n", d.MTU)
	fmt.Fprintf(&b, " Link type       : %s\n", d.LinkLayer)
	if d.GIDIndex >= 0 {
		fmt.Fprintf(&b, " GID index       : %d\n", d.GIDIndex)
	}
	if p.Verb != "read" {
		fmt.Fprintf(&b, " Max inline data : %d[B]\n", p.InlineSize())
	} else {
		fmt.Fprintf(&b, " Outstand reads  : %d\n", d.OutReads)
	}
	fmt.Fprintf(&b, " rdma_cm QPs\t : %s\n", "OFF")
	fmt.Fprintf(&b, " Data ex. method : %s\n", "Ethernet")
	b.WriteString(ResultLine)
	io.WriteString(w, b.String())
}

// Dest is one side's connection data (perftest's pingpong_dest).
type Dest struct {
	LID      uint16   `json:"lid"`
	QPN      uint32   `json:"qpn"`
	PSN      uint32   `json:"psn"`
	RKey     uint32   `json:"rkey"`
	VAddr    uint64   `json:"vaddr"`
	GID      [16]byte `json:"gid"`
	OutReads int      `json:"out_reads"`
}

// cHashX formats v like C's printf("%#0Nx"): zero stays "0" padded, others
// get "0x" and the whole field is zero-padded to width.
func cHashX(v uint64, width int) string {
	if v == 0 {
		return fmt.Sprintf("%0*d", width, 0)
	}
	h := strconv.FormatUint(v, 16)
	if pad := width - 2 - len(h); pad > 0 {
		h = strings.Repeat("0", pad) + h
	}
	return "0x" + h
}

// PrintDest prints a dest as ctx_print_pingpong_data does ("local" or
// "remote" side); the GID line is printed when showGID.
func PrintDest(w io.Writer, p *Params, side string, d Dest, showGID bool) {
	if p.JSON {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, " %s address: LID %s QPN %s PSN %s", side, cHashX(uint64(d.LID), 4), cHashX(uint64(d.QPN), 6), cHashX(uint64(d.PSN), 6))
	switch p.Verb {
	case "read":
		fmt.Fprintf(&b, " OUT %s", cHashX(uint64(d.OutReads), 4))
		fallthrough
	case "write":
		fmt.Fprintf(&b, " RKey %s VAddr %s", cHashX(uint64(d.RKey), 8), cHashX(d.VAddr, 16))
	}
	b.WriteString("\n")
	if showGID {
		b.WriteString(" GID: ")
		for i, x := range d.GID {
			if i > 0 {
				b.WriteByte(':')
			}
			fmt.Fprintf(&b, "%02d", x)
		}
		b.WriteString("\n")
	}
	io.WriteString(w, b.String())
}

// WaitingBanner is what a perftest server prints before accepting.
const WaitingBanner = "\n************************************\n* Waiting for client to connect... *\n************************************\n"
