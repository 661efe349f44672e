package promcollector

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/asyncmsgr/asyncmsgr/perfcounters"
)

// Collector exports a registry's values on every scrape.
type Collector struct {
	reg *perfcounters.Registry
}

// New returns a collector over reg.
func New(reg *perfcounters.Registry) *Collector { return &Collector{reg: reg} }

var invalid = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// metricName is asyncmsgr_<name> with characters Prometheus refuses made _.
func metricName(name string) string { return "asyncmsgr_" + invalid.ReplaceAllString(name, "_") }

// Describe sends nothing: the set of values grows as stacks and workers
// start, so this is an unchecked collector.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends every value.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.reg.Each(func(set, name, desc string, kind perfcounters.Kind, v uint64) {
		if desc == "" {
			desc = name
		}
		d := prometheus.NewDesc(metricName(name), desc, nil, prometheus.Labels{"set": set})
		t := prometheus.GaugeValue
		if kind == perfcounters.Counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(d, t, float64(v))
	})
}
