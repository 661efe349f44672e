// Package leakcheck owns the tests' check that a refused or faulted peer
// left nothing behind in the messengers it talked to: no connection (their
// Connections list and msgr_active_connections counters), no RDMA queue
// pair (the stack's active_queue_pair counter, when the stack has one) and
// no goroutine beyond those there before it came. It is test support: it
// must not be imported by product code.
package leakcheck

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// Baseline is what was running before the peer came.
type Baseline struct {
	goroutines int
	counts     []Count // per messenger, in Take's order
}

// Take records the goroutine count and what each messenger holds now.
func Take(t testing.TB, ms ...*msgr.Messenger) Baseline {
	t.Helper()
	b := Baseline{goroutines: runtime.NumGoroutine()}
	for _, m := range ms {
		c, err := Counts(m)
		if err != nil {
			t.Fatalf("leakcheck: %v", err)
		}
		b.counts = append(b.counts, c)
	}
	return b
}

// Settled waits (up to limit) until every messenger of Take, in the same
// order, holds no more connections and queue pairs than at Take, and the
// process runs no more goroutines than at Take; it fails the test naming
// what is left.
func (b Baseline) Settled(t testing.TB, limit time.Duration, ms ...*msgr.Messenger) {
	t.Helper()
	if len(ms) != len(b.counts) {
		t.Fatalf("leakcheck: Settled with %d messengers, Take had %d", len(ms), len(b.counts))
	}
	var left []string
	testenv.WaitFor(t, limit, "no leaked connection, queue pair or goroutine", func() bool {
		left = left[:0]
		for i, m := range ms {
			c, err := Counts(m)
			if err != nil {
				left = append(left, err.Error())
				continue
			}
			was := b.counts[i]
			if c.Conns > was.Conns || c.Active > was.Active {
				left = append(left, fmt.Sprintf("%v: %d connections (%d active), %d (%d) before", m.Name(), c.Conns, c.Active, was.Conns, was.Active))
			}
			if c.QPs > was.QPs {
				left = append(left, fmt.Sprintf("%v: %d queue pairs, %d before", m.Name(), c.QPs, was.QPs))
			}
		}
		if n := runtime.NumGoroutine(); n > b.goroutines {
			left = append(left, fmt.Sprintf("%d goroutines, %d before", n, b.goroutines))
		}
		return len(left) == 0
	}, func() string {
		s := strings.Join(left, "; ")
		if strings.Contains(s, "goroutines") {
			s += "\n" + goroutineProfile()
		}
		return s
	})
}

// goroutineProfile is the running goroutines grouped by stack, each with
// its count (the goroutine profile at debug=1): a leak shows as the stack
// whose count grew. It names no goroutine (no ids, unlike a full dump), so
// nothing can key on which goroutine it is.
func goroutineProfile() string {
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		return "goroutine profile: " + err.Error()
	}
	return b.String()
}

// Count is what one messenger holds.
type Count struct {
	Conns  int    // len(Connections())
	Active uint64 // msgr_active_connections over its workers
	QPs    uint64 // active_queue_pair of its rdma stack (0 on posix)
}

// Counts reads m's connections and its counters (PerfDump).
func Counts(m *msgr.Messenger) (Count, error) {
	c := Count{Conns: len(m.Connections())}
	var dump map[string]map[string]json.RawMessage
	if err := json.Unmarshal(m.PerfDump(), &dump); err != nil {
		return c, fmt.Errorf("%v: perf dump: %w", m.Name(), err)
	}
	for set, vals := range dump {
		for name, raw := range vals {
			var dst *uint64
			switch {
			case strings.HasPrefix(set, "AsyncMessenger::Worker-") && name == "msgr_active_connections":
				dst = &c.Active
			case set == "AsyncMessenger::RDMADispatcher" && name == "active_queue_pair":
				dst = &c.QPs
			default:
				continue
			}
			var v uint64
			if err := json.Unmarshal(raw, &v); err != nil {
				return c, fmt.Errorf("%v: perf dump %s %s: %w", m.Name(), set, name, err)
			}
			*dst += v
		}
	}
	return c, nil
}
