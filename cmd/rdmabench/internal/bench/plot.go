package bench

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
)

// Curve is one line of the plot: the medians of a series' test by size.
type Curve struct {
	Title string
	Data  string // path of the "size value" file
}

// Plot is the two panels of BENCHMARKS.png.
type Plot struct {
	PNG      string
	Lat, BW  []Curve
	Subtitle string
}

var plotTmpl = template.Must(template.New("plot").Funcs(template.FuncMap{"q": quoteGP}).Parse(`set terminal pngcairo size 1400,600 noenhanced
set output {{q .PNG}}
set multiplot layout 1,2 title {{q .Subtitle}}
set logscale xy
set grid
set xlabel "message size (bytes)"
set format x "%.0s%cB"
set title "latency (t_typical, one way)"
set ylabel "usec"
set key top left
plot {{range $i, $c := .Lat}}{{if $i}}, {{end}}{{q $c.Data}} w lp t {{q $c.Title}}{{end}}
set title "bandwidth (BW average)"
set ylabel "MB/sec"
set key bottom right
plot {{range $i, $c := .BW}}{{if $i}}, {{end}}{{q $c.Data}} w lp t {{q $c.Title}}{{end}}
unset multiplot
`))

// quoteGP is a gnuplot double-quoted string.
func quoteGP(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Script is the gnuplot program of p.
func (p Plot) Script() string {
	var b bytes.Buffer
	if err := plotTmpl.Execute(&b, p); err != nil {
		panic(err) // the template is fixed; its data cannot fail it
	}
	return b.String()
}

// ErrNoGnuplot is returned by Draw when gnuplot is not installed.
var ErrNoGnuplot = errors.New("gnuplot not installed: no plot")

// PlotOf writes one data file per curve into dir and returns the plot: the
// raw-verbs series of both tools and every messenger series measured.
func PlotOf(s *Set, dir, png, subtitle string) (Plot, error) {
	p := Plot{PNG: png, Subtitle: subtitle}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return p, err
	}
	rdma := rdmaSeriesIn(s)
	for _, kind := range []string{"lat", "bw"} {
		var curves []Curve
		keys := [][2]string{{Perftest.Name, "send_" + kind}, {Rdmaperf.Name, "send_" + kind}, {Perftest.Name, "write_" + kind}, {Rdmaperf.Name, "write_" + kind}}
		for _, m := range append(slices.Clone(rdma), Posix.Name) {
			keys = append(keys, [2]string{m, "msgr_" + kind})
		}
		for _, k := range keys {
			var b strings.Builder
			for _, n := range s.Sizes(k[1]) {
				if v := s.Median(Key{k[0], k[1], n}, Headline(k[1])); !math.IsNaN(v) {
					fmt.Fprintf(&b, "%d %g\n", n, v)
				}
			}
			if b.Len() == 0 {
				continue
			}
			f := filepath.Join(dir, k[0]+"."+k[1]+".dat")
			if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
				return p, err
			}
			title := ColLabel(k[0], k[1])
			if k[0] == Perftest.Name {
				title += " (C)"
			}
			curves = append(curves, Curve{Title: title, Data: f})
		}
		if kind == "lat" {
			p.Lat = curves
		} else {
			p.BW = curves
		}
	}
	return p, nil
}

// Draw runs gnuplot on p's script.
func (p Plot) Draw() error {
	if len(p.Lat) == 0 || len(p.BW) == 0 {
		return errors.New("nothing to plot")
	}
	if _, err := exec.LookPath("gnuplot"); err != nil {
		return ErrNoGnuplot
	}
	cmd := exec.Command("gnuplot")
	cmd.Stdin = strings.NewReader(p.Script())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
