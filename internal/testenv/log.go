package testenv

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Logger is a slog logger (all levels) writing to t's log, for
// msgr.WithLogger and config.Config.Logger in tests. Lines arriving after
// the test's cleanups started are dropped (t.Log would panic).
func Logger(t testing.TB) *slog.Logger {
	w := &tbWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug - 8}))
}

type tbWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
