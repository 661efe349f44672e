package netstack

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/asyncmsgr/asyncmsgr/config"
)

// ErrUnavailable is wrapped by a Factory's error when its transport cannot
// run on this machine (no RDMA device, no cgo, memlock too low...). New falls
// back to posix on it when the configuration allows.
var ErrUnavailable = errors.New("netstack: transport unavailable")

// FallbackTransport is the stack New falls back to.
const FallbackTransport = "posix"

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a transport selectable by name (ms_async_transport_type).
// Transports call it from init. It panics when f is nil or name is already
// registered, like database/sql.Register.
func Register(name string, f Factory) {
	if f == nil {
		panic("netstack: Register factory is nil for " + name)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("netstack: Register called twice for transport " + name)
	}
	registry[name] = f
}

// RegisterNew is Register for a transport's constructor, which returns its
// own stack type (a failed one returns a nil Stack, not a typed nil).
func RegisterNew[S Stack](name string, newStack func(*config.Config) (S, error)) {
	Register(name, func(cfg *config.Config) (Stack, error) {
		s, err := newStack(cfg)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}

// Names returns the registered transport names, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func lookup(name string) (Factory, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	f, ok := registry[name]
	return f, ok
}

// New builds the stack named by cfg.TransportType (config.Default() when cfg
// is nil). An unknown name is an error listing the registered ones. When the
// factory fails with an error wrapping ErrUnavailable and
// cfg.TransportFallback is set, New logs why (through cfg.Log(), level Warn) and
// returns the posix stack instead; otherwise it returns the error.
func New(cfg *config.Config) (Stack, error) {
	if cfg == nil {
		cfg = config.Default()
	}
	name := cfg.TransportType
	f, ok := lookup(name)
	if !ok {
		return nil, fmt.Errorf("netstack: unknown transport %q (registered: %s); %s", name, registeredList(), importHint(name))
	}
	s, err := f(cfg)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, ErrUnavailable) || !cfg.TransportFallback || name == FallbackTransport {
		return nil, fmt.Errorf("netstack: transport %q: %w", name, err)
	}
	fb, ok := lookup(FallbackTransport)
	if !ok {
		return nil, fmt.Errorf("netstack: transport %q: %w (fallback %q is not registered)", name, err, FallbackTransport)
	}
	cfg.Log().Warn("netstack: transport unavailable, falling back",
		"transport", name, "fallback", FallbackTransport, "reason", err.Error())
	s, ferr := fb(cfg)
	if ferr != nil {
		return nil, fmt.Errorf("netstack: transport %q: %w; fallback %q: %w", name, err, FallbackTransport, ferr)
	}
	return s, nil
}

// stackPackages names the package that registers each known transport, for
// the hint of an unknown-transport error.
var stackPackages = map[string]string{
	"posix": "github.com/asyncmsgr/asyncmsgr/posixfallback",
	"rdma":  "github.com/asyncmsgr/asyncmsgr/rdmastack",
}

func registeredList() string {
	if names := Names(); len(names) > 0 {
		return strings.Join(names, ", ")
	}
	return "none"
}

// importHint tells how to make name available: transports register
// themselves from their package's init, so a program must import it.
func importHint(name string) string {
	if pkg, ok := stackPackages[name]; ok {
		return fmt.Sprintf("import _ %q to register it", pkg)
	}
	return fmt.Sprintf("import the stack package that registers it (posix: _ %q, rdma: _ %q)",
		stackPackages["posix"], stackPackages["rdma"])
}
