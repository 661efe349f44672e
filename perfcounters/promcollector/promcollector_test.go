package promcollector

import (
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/perfcounters"
)

// TestScrapeParses registers the collector, scrapes it over HTTP as
// Prometheus does, and parses the text format with expfmt.
func TestScrapeParses(t *testing.T) {
	reg := perfcounters.NewRegistry()
	reg.Set("AsyncMessenger::Worker-0").Add("msgr_send_bytes", "Network sent bytes", perfcounters.Counter).Add(1234)
	reg.Set("AsyncMessenger::Worker-1").Add("msgr_send_bytes", "Network sent bytes", perfcounters.Counter).Add(5)
	reg.Set("AsyncMessenger::RDMADispatcher").Add("inflight_tx_chunks", "", perfcounters.Gauge).Set(7)
	pr := prometheus.NewPedanticRegistry()
	require.NoError(t, pr.Register(New(reg)))
	srv := httptest.NewServer(promhttp.HandlerFor(pr, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	sent := fams["asyncmsgr_msgr_send_bytes"]
	require.NotNil(t, sent)
	require.Len(t, sent.Metric, 2)
	total := 0.0
	for _, m := range sent.Metric {
		total += m.GetCounter().GetValue()
	}
	require.Equal(t, 1239.0, total)
	require.Equal(t, 7.0, fams["asyncmsgr_inflight_tx_chunks"].Metric[0].GetGauge().GetValue())
}
