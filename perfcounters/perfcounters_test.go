package perfcounters

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDumpShape(t *testing.T) {
	r := NewRegistry()
	require.JSONEq(t, `{}`, string(r.Dump()))
	w := r.Set("AsyncMessenger::Worker-0")
	sent := w.Add("msgr_send_messages", "Network sent messages", Counter)
	active := w.Add("msgr_active_connections", "Active connection number", Gauge)
	sent.Add(3)
	active.Inc()
	active.Inc()
	active.Dec()
	var ext uint64 = 9
	r.Set("AsyncMessenger::RDMADispatcher").Func("tx_no_mem", "The count of no tx buffer", Counter, func() uint64 { return ext })
	require.Same(t, sent, w.Add("msgr_send_messages", "", Counter), "Add is get-or-create")
	require.JSONEq(t, `{"AsyncMessenger::RDMADispatcher":{"tx_no_mem":9},
		"AsyncMessenger::Worker-0":{"msgr_send_messages":3,"msgr_active_connections":1}}`, string(r.Dump()))
	var schema map[string]map[string]map[string]any
	require.NoError(t, json.Unmarshal(r.Schema(), &schema))
	require.Equal(t, "counter", schema["AsyncMessenger::Worker-0"]["msgr_send_messages"]["metric_type"])
	require.Equal(t, "gauge", schema["AsyncMessenger::Worker-0"]["msgr_active_connections"]["metric_type"])
	r.Remove("AsyncMessenger::RDMADispatcher")
	require.NotContains(t, string(r.Dump()), "tx_no_mem")
}

func TestConcurrentCounting(t *testing.T) {
	r := NewRegistry()
	v := r.Set("s").Add("n", "", Counter)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				v.Inc()
				_ = r.Dump()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, uint64(8000), v.Load())
}

func TestCountingAllocatesNothing(t *testing.T) {
	v := NewRegistry().Set("s").Add("n", "", Counter)
	require.Zero(t, testing.AllocsPerRun(100, func() { v.Inc(); v.Add(2) }))
}
