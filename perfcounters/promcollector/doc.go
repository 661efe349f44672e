// Package promcollector owns the Prometheus view of a perfcounters.Registry:
// a prometheus.Collector a user registers with their own registry. Each
// value is a metric asyncmsgr_<name> (counters as counters, gauges as
// gauges) with the label set="<perf dump set name>".
//
// It is the only package that imports Prometheus's client library; nothing
// else in asyncmsgr depends on it.
package promcollector
