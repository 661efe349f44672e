package netstack

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/config"
)

// fakeStack is a Stack built by test factories.
type fakeStack struct {
	*WorkerSet
	name string
}

func (s *fakeStack) Name() string { return s.name }

type fakeWorker struct{ *BaseWorker }

func (fakeWorker) Listen(string, SocketOptions) (ServerSocket, error) { return nil, errors.New("fake") }
func (fakeWorker) Connect(string, SocketOptions) (ConnectedSocket, error) {
	return nil, errors.New("fake")
}

func newFake(t testing.TB, name string, n int) *fakeStack {
	ws := make([]Worker, n)
	for i := range ws {
		bw, err := NewBaseWorker(name, i)
		require.NoError(t, err)
		ws[i] = fakeWorker{bw}
	}
	return &fakeStack{WorkerSet: NewWorkerSet(ws), name: name}
}

// unregister removes test transports so the test can run with -count > 1.
func unregister(names ...string) {
	registryMu.Lock()
	defer registryMu.Unlock()
	for _, n := range names {
		delete(registry, n)
	}
}

func TestRegistry(t *testing.T) {
	t.Cleanup(func() { unregister(FallbackTransport, "test-ok", "test-unavail", "test-broken") })
	// The fake "posix" stands in for posixfallback, which this package
	// cannot import.
	Register(FallbackTransport, func(cfg *config.Config) (Stack, error) { return newFake(t, FallbackTransport, 1), nil })
	Register("test-ok", func(cfg *config.Config) (Stack, error) { return newFake(t, "test-ok", 1), nil })
	Register("test-unavail", func(cfg *config.Config) (Stack, error) {
		return nil, fmt.Errorf("no device rxe0: %w", ErrUnavailable)
	})
	Register("test-broken", func(cfg *config.Config) (Stack, error) { return nil, errors.New("bad option") })
	require.Subset(t, Names(), []string{FallbackTransport, "test-ok", "test-unavail", "test-broken"})

	tests := []struct {
		name      string
		transport string
		fallback  bool
		wantStack string
		wantErr   []string // substrings of the error
		wantIs    error
		wantLog   bool
	}{
		{name: "selected", transport: "test-ok", wantStack: "test-ok"},
		{name: "unknown lists registered", transport: "carrier-pigeon",
			wantErr: []string{`unknown transport "carrier-pigeon"`, "posix", "test-ok", "test-unavail", "import the stack package"}},
		{name: "unavailable without fallback", transport: "test-unavail",
			wantErr: []string{"no device rxe0"}, wantIs: ErrUnavailable},
		{name: "unavailable with fallback", transport: "test-unavail", fallback: true,
			wantStack: FallbackTransport, wantLog: true},
		{name: "other errors never fall back", transport: "test-broken", fallback: true,
			wantErr: []string{"bad option"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			cfg := config.Default()
			cfg.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
			cfg.TransportType = tc.transport
			cfg.TransportFallback = tc.fallback
			s, err := New(cfg)
			if tc.wantErr != nil {
				require.Error(t, err)
				require.Nil(t, s)
				for _, sub := range tc.wantErr {
					require.Contains(t, err.Error(), sub)
				}
				if tc.wantIs != nil {
					require.ErrorIs(t, err, tc.wantIs)
				}
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.wantStack, s.Name())
				require.NoError(t, s.Stop())
			}
			if tc.wantLog {
				require.Contains(t, logBuf.String(), "level=WARN")
				require.Contains(t, logBuf.String(), "falling back")
				require.Contains(t, logBuf.String(), "test-unavail")
				require.Contains(t, logBuf.String(), "no device rxe0")
			} else {
				require.Empty(t, logBuf.String())
			}
		})
	}

	t.Run("nil config selects posix", func(t *testing.T) {
		s, err := New(nil)
		require.NoError(t, err)
		require.Equal(t, FallbackTransport, s.Name())
		require.NoError(t, s.Stop())
	})
	t.Run("fallback not registered", func(t *testing.T) {
		unregister(FallbackTransport)
		cfg := config.Default()
		cfg.TransportType = "test-unavail"
		cfg.TransportFallback = true
		_, err := New(cfg)
		require.ErrorIs(t, err, ErrUnavailable)
		require.Contains(t, err.Error(), "not registered")
	})
	t.Run("unknown names the import", func(t *testing.T) {
		unregister(FallbackTransport, "test-ok", "test-unavail", "test-broken")
		for transport, pkg := range map[string]string{
			"posix": "github.com/asyncmsgr/asyncmsgr/posixfallback",
			"rdma":  "github.com/asyncmsgr/asyncmsgr/rdmastack",
		} {
			cfg := config.Default()
			cfg.TransportType = transport
			_, err := New(cfg)
			require.Error(t, err)
			require.Contains(t, err.Error(), "(registered: none)")
			require.Contains(t, err.Error(), `import _ "`+pkg+`"`)
			require.NotContains(t, err.Error(), "\n")
		}
		Register("test-ok", func(cfg *config.Config) (Stack, error) { return newFake(t, "test-ok", 1), nil })
	})
	t.Run("duplicate panics", func(t *testing.T) {
		require.Panics(t, func() { Register("test-ok", func(*config.Config) (Stack, error) { return nil, nil }) })
		require.Panics(t, func() { Register("test-nil", nil) })
	})
}

func TestWorkerSet(t *testing.T) {
	s := newFake(t, "ws", 3)
	require.NoError(t, s.Stop()) // before Start: fine
	require.ErrorIs(t, s.Start(), ErrStackStopped)

	s = newFake(t, "ws", 3)
	stopped := 0
	s.OnStop(func() error { stopped++; return nil })
	require.NoError(t, s.Start())
	require.ErrorIs(t, s.Start(), ErrAlreadyStarted)
	require.Len(t, s.Workers(), 3)

	ws := s.Workers()
	require.Equal(t, 0, s.PickWorker().ID()) // tie: lowest id
	ws[0].(fakeWorker).AddLoad(2)
	ws[1].(fakeWorker).AddLoad(1)
	require.Equal(t, 2, s.PickWorker().ID())
	ws[2].(fakeWorker).AddLoad(3)
	require.Equal(t, 1, s.PickWorker().ID())
	ws[0].(fakeWorker).AddLoad(-2)
	require.Equal(t, 0, s.PickWorker().ID())
	require.Equal(t, 0, ws[0].Load())

	require.False(t, s.Stopped())
	require.NoError(t, s.Stop())
	require.NoError(t, s.Stop())
	require.True(t, s.Stopped())
	require.Equal(t, 1, stopped)
	require.ErrorIs(t, ws[1].Center().DispatchExternal(func() {}), ErrStackStopped)

	require.Panics(t, func() { NewWorkerSet(nil) })
	require.Panics(t, func() { NewWorkerSet([]Worker{ws[1]}) })
}
