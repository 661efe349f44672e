package bench

import (
	"bytes"
	_ "embed"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/template"
)

// Conditions are what a reader must know to trust a run: how it was run and
// how loaded the machine was. The outer phase (on the host) fills them.
type Conditions struct {
	Date       string   `json:"date"` // UTC, when the run started
	Seconds    int      `json:"seconds"`
	Reps       int      `json:"reps"`
	Sizes      []int    `json:"sizes"`
	Quick      bool     `json:"quick"`
	Rev        string   `json:"rev"` // git rev of the tree, "+dirty" when modified
	HostCPUs   int      `json:"host_cpus"`
	LoadBefore string   `json:"load_before"` // the host's /proc/loadavg before the boot
	LoadAfter  string   `json:"load_after"`
	VM         bool     `json:"vm"` // measured in the Soft-RoCE VM
	Command    string   `json:"command"`
	Env        []string `json:"env"` // environment lines of the measuring machine
}

// FinalReps is the repetitions a final run takes (issue 9).
const FinalReps = 5

// NotFinal lists why a run is not one to quote as final: fewer than
// FinalReps repetitions, fewer sizes, a modified tree, or a host whose
// 5-minute load average before the boot was 1 or more.
func (c Conditions) NotFinal() []string {
	var why []string
	if c.Reps < FinalReps {
		why = append(why, fmt.Sprintf("BENCH_REPS=%d (a final run takes %d)", c.Reps, FinalReps))
	}
	if c.Quick || !slices.Equal(c.Sizes, DefaultSizes) {
		why = append(why, "sizes "+joinInts(c.Sizes)+" (a final run takes "+joinInts(DefaultSizes)+")")
	}
	if strings.HasSuffix(c.Rev, "+dirty") || c.Rev == "" {
		why = append(why, "tree "+orNA(c.Rev)+" has uncommitted changes or no revision")
	}
	if f := strings.Fields(c.LoadBefore); len(f) < 2 {
		why = append(why, "host load unknown")
	} else if l5, err := strconv.ParseFloat(f[1], 64); err != nil || l5 >= 1 {
		why = append(why, fmt.Sprintf("host load average %s (1, 5, 15 min) before the boot on %d CPUs: not a quiet machine", strings.Join(f[:3], " "), c.HostCPUs))
	}
	return why
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, " ")
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

// Table is a markdown table; Right marks right-aligned (numeric) columns.
type Table struct {
	Head  []string
	Right []bool
	Rows  [][]string
}

// Sep is the alignment row.
func (t Table) Sep() string {
	var b strings.Builder
	b.WriteString("|")
	for i := range t.Head {
		if i < len(t.Right) && t.Right[i] {
			b.WriteString("---:|")
		} else {
			b.WriteString("---|")
		}
	}
	return b.String()
}

// TargetRow is one judged target.
type TargetRow struct {
	What, Against string
	Value, Base   string
	Ratio, Goal   string
	Met           string // "yes", NotMet or "n/a (...)"
}

// Report is what the template renders.
type Report struct {
	C         Conditions
	NotFinal  []string
	Targets   []TargetRow
	Missed    []string
	Latency   Table
	Bandwidth Table
	Held      Table
	Merge     *Table
	MergeLow  bool
	Failed    []string
	PNG       string
	All       Table
	Profiles  []Profile
	Out       string      // the results directory, as the reader finds it
	Secure    *SecureCost // the host's secure-mode runs (issue 10), if any
}

// Profile is one profiled client run and the top of its CPU profile.
type Profile struct {
	Label string // the series and point
	Path  string // relative to the results directory
	Top   string // `go tool pprof -top`, filled by WriteReport
}

// Build computes the report of rs.
func Build(rs []Result, c Conditions, png string) Report {
	s := NewSet(rs)
	rp := Report{C: c, NotFinal: c.NotFinal(), PNG: png, Out: ".build/bench"}
	rdma := rdmaSeriesIn(s)
	for _, t := range Targets(rdma) {
		na := "n/a"
		if why := s.NotMeasured(t.Num) + s.NotMeasured(t.Den); why != "" {
			na = "not measured: " + why
		}
		row := t.Row(PointLabel(t.Num)+" "+string(t.Metric), PointLabel(t.Den), s.Median(t.Num, t.Metric), s.Median(t.Den, t.Metric), na)
		if row.Met == NotMet {
			rp.Missed = append(rp.Missed, row.What+" against "+row.Against)
		}
		rp.Targets = append(rp.Targets, row)
	}
	rp.Latency = curveTable(s, "lat", rdma)
	rp.Bandwidth = curveTable(s, "bw", rdma)
	rp.Held = heldTable(s)
	rp.Merge, rp.MergeLow = mergeTable(s)
	for _, r := range rs {
		if r.Profile != "" {
			rp.Profiles = append(rp.Profiles, Profile{Label: PointLabel(r.Key()), Path: r.Profile})
		}
		if r.Err != "" {
			rp.Failed = append(rp.Failed, fmt.Sprintf("%s %s %d B (rep %d): %s", r.Series, r.Test, r.Size, r.Rep, r.Err))
		}
	}
	rp.All = allTable(rs)
	return rp
}

// rdmaSeriesIn are the messenger-over-rdma series measured (polling modes
// or the default), excluding the held-sender and merging runs.
func rdmaSeriesIn(s *Set) []string {
	var out []string
	for _, n := range s.SeriesOf("msgr_lat") {
		if n == MsgrRDMA.Name || (strings.HasPrefix(n, "msgr-rdma-") && !strings.HasSuffix(n, "-held")) {
			out = append(out, n)
		}
	}
	return out
}

// curveTable is the by-size table of kind "lat" or "bw": perftest and
// rdmaperf with their ratio for send and write, then the messenger series
// and each rdma series' ratio to posix.
func curveTable(s *Set, kind string, rdma []string) Table {
	send, write, msgr := "send_"+kind, "write_"+kind, "msgr_"+kind
	t := Table{Head: []string{"size"}}
	type col struct {
		k   func(int) Key
		num func(int) Key // ratio columns: k over num
	}
	var cols []col
	point := func(series, test string) func(int) Key {
		return func(n int) Key { return Key{series, test, n} }
	}
	for _, test := range []string{send, write} {
		t.Head = append(t.Head, ColLabel(Perftest.Name, test), ColLabel(Rdmaperf.Name, test), "ratio")
		p, r := point(Perftest.Name, test), point(Rdmaperf.Name, test)
		cols = append(cols, col{k: p}, col{k: r}, col{k: r, num: p})
	}
	ms := append(slices.Clone(rdma), Posix.Name)
	for _, m := range ms {
		t.Head = append(t.Head, ColLabel(m, msgr))
		cols = append(cols, col{k: point(m, msgr)})
	}
	for _, m := range rdma {
		t.Head = append(t.Head, KnownSeries()[m].Label+" / posix")
		cols = append(cols, col{k: point(m, msgr), num: point(Posix.Name, msgr)})
	}
	var sizes []int
	for _, test := range []string{send, write, msgr} {
		for _, n := range s.Sizes(test) {
			for _, c := range cols {
				if k := c.k(n); k.Test == test && s.Has(k) && !slices.Contains(sizes, n) {
					sizes = append(sizes, n)
				}
			}
		}
	}
	slices.Sort(sizes)
	m := Headline(send)
	for _, n := range sizes {
		row := []string{strconv.Itoa(n)}
		for _, c := range cols {
			v := s.Median(c.k(n), m)
			if c.num != nil {
				v = Ratio(v, s.Median(c.num(n), m))
			}
			row = append(row, Num(v))
		}
		t.Rows = append(t.Rows, row)
	}
	t.Right = slices.Repeat([]bool{true}, len(t.Head))
	return t
}

// heldTable is issue 9's held-sender row per polling mode: a 2 B msgr_lat
// alone and with another connection on the same worker sending 64 MiB.
func heldTable(s *Set) Table {
	t := Table{Head: []string{"polling mode", "msgr_lat 2 B alone (µs)", "while another connection sends 64 MiB (µs)", "ratio"},
		Right: []bool{false, true, true, true}}
	for _, m := range PollingModes {
		alone, held := Key{ModeSeries(m).Name, "msgr_lat", 2}, Key{HeldSeries(m).Name, "msgr_lat", 2}
		a, h := s.Median(alone, TTypical), s.Median(held, TTypical)
		row := []string{m, Num(a), Num(h), Num(Ratio(h, a))}
		if !s.Has(alone) {
			row[1] = "not measured"
			if why := s.NotMeasured(alone); why != "" {
				row[1] += ": " + why
			}
		}
		if why := s.NotMeasured(held); why != "" {
			row[2] = "not measured: " + why
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// mergeTable is the doorbells per message of the traced msgr_bw runs with
// adaptive merging on and off, and whether merging lowered them; nil when
// they did not run.
func mergeTable(s *Set) (*Table, bool) {
	db := func(on bool) float64 {
		for _, r := range s.by[Key{MergeSeries(on).Name, "msgr_bw", 64}] {
			if r.Row != nil && r.Row.DoorbellsPerMsg != nil {
				return *r.Row.DoorbellsPerMsg
			}
		}
		return math.NaN()
	}
	on, off := db(true), db(false)
	if !s.Has(Key{MergeSeries(true).Name, "msgr_bw", 64}) {
		return nil, false
	}
	f := func(v float64) string {
		if math.IsNaN(v) {
			return "n/a"
		}
		return strconv.FormatFloat(v, 'f', 4, 64)
	}
	return &Table{Head: []string{"ms_async_rdma_submit_time_trigger", "doorbells per message"}, Right: []bool{false, true},
		Rows: [][]string{{"true", f(on)}, {"false", f(off)}}}, on < off
}

// allTable lists every run.
func allTable(rs []Result) Table {
	t := Table{Head: []string{"series", "test", "size", "rep", "iters", "t_typical / BW avg", "t_avg / MsgRate", "t_min", "s", "note"},
		Right: []bool{false, false, true, true, true, true, true, true, true, false}}
	for _, r := range rs {
		row := []string{r.Series, r.Test, strconv.Itoa(r.Size), strconv.Itoa(r.Rep), strconv.Itoa(r.Iters), "", "", "", strconv.FormatFloat(r.Seconds, 'f', 1, 64), ""}
		switch {
		case r.Row != nil && IsLat(r.Test):
			row[5], row[6], row[7] = Num(r.Row.TTypical), Num(r.Row.TAvg), Num(r.Row.TMin)
		case r.Row != nil:
			row[5], row[6] = Num(r.Row.BWAvg), strconv.FormatFloat(r.Row.MsgRate, 'f', 6, 64)
			if r.Row.DoorbellsPerMsg != nil {
				row[9] = "doorbells/msg " + strconv.FormatFloat(*r.Row.DoorbellsPerMsg, 'f', 4, 64)
			}
		case r.Skipped != "":
			row[9] = "not measured: " + r.Skipped
		default:
			row[9] = "failed: " + strings.ReplaceAll(r.Err, "|", "/")
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

//go:embed report.md.tmpl
var reportTmpl string

var tmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"join": strings.Join,
	"ints": joinInts,
}).Parse(reportTmpl))

// Render is the report's markdown section.
func Render(r Report) ([]byte, error) {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// The markers around the generated section of BENCHMARKS.md; what is
// outside them is kept.
const (
	BeginMark = "<!-- rdmaperf-bench:begin (generated by `make bench`: cmd/rdmabench) -->"
	EndMark   = "<!-- rdmaperf-bench:end -->"
	beginPre  = "<!-- rdmaperf-bench:begin"
)

// Splice puts section between the markers of doc (replacing what was
// there), or appends it when doc has none; an empty doc gets a title.
func Splice(doc, section []byte) []byte {
	sec := append(append([]byte(BeginMark+"\n"), bytes.TrimRight(section, "\n")...), "\n"+EndMark+"\n"...)
	if len(bytes.TrimSpace(doc)) == 0 {
		return append([]byte("# Benchmarks\n\n"), sec...)
	}
	b := bytes.Index(doc, []byte(beginPre))
	if b < 0 {
		return append(append(bytes.TrimRight(doc, "\n"), "\n\n"...), sec...)
	}
	out := append([]byte{}, doc[:b]...)
	out = append(out, sec...)
	if e := bytes.Index(doc[b:], []byte(EndMark)); e >= 0 {
		rest := doc[b+e+len(EndMark):]
		out = append(out, bytes.TrimPrefix(rest, []byte("\n"))...)
	}
	return out
}

// TargetTable is Targets as a table.
func (r Report) TargetTable() Table {
	t := Table{Head: []string{"measurement", "median", "against", "median", "ratio", "target", "met"},
		Right: []bool{false, true, false, true, true, false, false}}
	for _, x := range r.Targets {
		t.Rows = append(t.Rows, []string{x.What, x.Value, x.Against, x.Base, x.Ratio, x.Goal, x.Met})
	}
	return t
}

// The plan's constants, for the template.
func (Report) LatPoints() []int { return LatPoints }
func (Report) BWPoint() int     { return BWPoint }
func (Report) HeldFlag() string { return HeldFlag }
func (Report) HeldBytes() int   { return HeldBytes }
