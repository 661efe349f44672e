package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
)

// DemoPoints are the rows of `make demo`'s table.
var DemoPoints = []struct {
	Test string
	Size int
}{{"send_lat", 2}, {"send_lat", 4096}, {"write_lat", 2}, {"write_lat", 4096}, {"send_bw", 4096}, {"send_bw", 65536}}

// WriteDemo prints `make demo`'s table: perftest against rdmaperf at
// DemoPoints, medians of the repetitions, with ratios. It reports whether
// rdmaperf produced every row (the demo fails otherwise).
func WriteDemo(w io.Writer, rs []Result, reps int) bool {
	s := NewSet(rs)
	fmt.Fprintf(w, "\nrdmaperf vs C perftest (same device, same boot; latency: t_typical usec one way, median of %d runs, lower is better; bandwidth: BW average MB/sec, higher is better)\n", reps)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "test\tsize\tperftest\trdmaperf\tratio\t")
	ok := true
	for _, p := range DemoPoints {
		m := Headline(p.Test)
		a, b := s.Median(Key{Perftest.Name, p.Test, p.Size}, m), s.Median(Key{Rdmaperf.Name, p.Test, p.Size}, m)
		q := "n/a"
		if r := Ratio(b, a); !math.IsNaN(r) {
			q = strconv.FormatFloat(r, 'f', 2, 64) + "x"
		}
		ok = ok && !math.IsNaN(b)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\n", p.Test, p.Size, failed(a), failed(b), q)
	}
	tw.Flush()
	return ok
}

func failed(v float64) string {
	if math.IsNaN(v) {
		return "failed"
	}
	return Num(v)
}
