package bench

import (
	"math"
	"slices"
	"strconv"
)

// Metric picks one number out of a Row.
type Metric string

// The metrics reports use.
const (
	TTypical Metric = "t_typical"
	TAvg     Metric = "t_avg"
	TMin     Metric = "t_min"
	BWAvg    Metric = "bw_average"
)

// Of is m's value in r.
func (m Metric) Of(r Row) float64 {
	switch m {
	case TTypical:
		return r.TTypical
	case TAvg:
		return r.TAvg
	case TMin:
		return r.TMin
	case BWAvg:
		return r.BWAvg
	}
	return math.NaN()
}

// Headline is the metric a test is compared by.
func Headline(test string) Metric {
	if IsLat(test) {
		return TTypical
	}
	return BWAvg
}

// Median is the middle value of vs (the mean of the two middle ones for an
// even count), NaN for none. vs is not modified.
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Ratio is a/b, NaN when either is missing or b is 0.
func Ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

// Set indexes results by point.
type Set struct {
	by   map[Key][]Result
	keys []Key // first-seen order
}

// NewSet indexes rs.
func NewSet(rs []Result) *Set {
	s := &Set{by: map[Key][]Result{}}
	for _, r := range rs {
		k := r.Key()
		if _, ok := s.by[k]; !ok {
			s.keys = append(s.keys, k)
		}
		s.by[k] = append(s.by[k], r)
	}
	return s
}

// Values are m of every successful run of k.
func (s *Set) Values(k Key, m Metric) []float64 {
	var out []float64
	for _, r := range s.by[k] {
		if r.Row != nil {
			out = append(out, m.Of(*r.Row))
		}
	}
	return out
}

// Median is the median of m over k's successful runs (NaN for none).
func (s *Set) Median(k Key, m Metric) float64 { return Median(s.Values(k, m)) }

// Has reports whether any run of k was attempted (measured or failed).
func (s *Set) Has(k Key) bool {
	for _, r := range s.by[k] {
		if r.Skipped == "" {
			return true
		}
	}
	return false
}

// NotMeasured is why k was not measured ("" when it was, or never planned).
func (s *Set) NotMeasured(k Key) string {
	for _, r := range s.by[k] {
		if r.Skipped != "" {
			return r.Skipped
		}
	}
	return ""
}

// Sizes are the sizes measured of test, ascending.
func (s *Set) Sizes(test string) []int {
	var out []int
	for _, k := range s.keys {
		if k.Test == test && !slices.Contains(out, k.Size) {
			out = append(out, k.Size)
		}
	}
	slices.Sort(out)
	return out
}

// SeriesOf are the series measured (attempted) for test, first-seen order.
func (s *Set) SeriesOf(test string) []string {
	var out []string
	for _, k := range s.keys {
		if k.Test == test && s.Has(k) && !slices.Contains(out, k.Series) {
			out = append(out, k.Series)
		}
	}
	return out
}

// Num formats a value for a table: two decimals, "n/a" for NaN.
func Num(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
