// Package lockorder is a debug lock-order checker for tests. A Mutex is a
// sync.Mutex with a Class (a name and a level); once a test calls Enable,
// every Lock checks that the calling goroutine holds no lock of a higher
// level (nor, past a class's Nest, of the same one) and panics naming both
// when it does, so an order violation fails the test that takes the locks
// out of order instead of deadlocking some later, unlucky run. AssertNone
// checks that a goroutine holds none (before it calls out to user code).
//
// Disabled (always, outside tests) a Mutex costs one atomic load beside the
// sync.Mutex. Enabled, it keys held locks by goroutine: by the address of
// the runtime's descriptor of the calling goroutine (getg, two instructions
// of assembly on amd64 and arm64; elsewhere Enable leaves checking off).
// That is an identity only a checker may use: nothing may decide what to do
// by which goroutine it runs on, so this is a test aid, never on by default,
// and must not be used for anything but checking.
package lockorder

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Class is a kind of lock: locks are taken in increasing Level; Nest is how
// many locks of the class one goroutine may hold at once (taken in the
// order the owner documents; 0 means 1).
type Class struct {
	Name  string
	Level int
	Nest  int
}

// Mutex is a sync.Mutex checked against its class when checking is on.
// The zero value is an unchecked mutex; Init gives it a class.
type Mutex struct {
	mu    sync.Mutex
	class *Class
}

// Init sets m's class (before m is shared).
func (m *Mutex) Init(c *Class) { m.class = c }

var (
	enabled atomic.Bool
	regMu   sync.Mutex
	held    = map[uintptr][]*Mutex{} // by getg
)

// Enable turns checking on (tests only), forgetting what an earlier
// enabled period recorded. Where getg is not available it does nothing.
func Enable() {
	if !supported {
		return
	}
	regMu.Lock()
	clear(held)
	regMu.Unlock()
	enabled.Store(true)
}

// Disable turns checking off again (benchmarks in the same binary must not
// pay for it).
func Disable() { enabled.Store(false) }

// Enabled reports whether checking is on.
func Enabled() bool { return enabled.Load() }

// Lock locks m, after checking the order when checking is on.
func (m *Mutex) Lock() {
	if !enabled.Load() || m.class == nil {
		m.mu.Lock()
		return
	}
	g := getg()
	check(g, m)
	m.mu.Lock()
	record(g, m)
}

// TryLock is sync.Mutex.TryLock; it cannot deadlock, so only what it takes
// is recorded.
func (m *Mutex) TryLock() bool {
	if !m.mu.TryLock() {
		return false
	}
	if enabled.Load() && m.class != nil {
		record(getg(), m)
	}
	return true
}

// Unlock unlocks m.
func (m *Mutex) Unlock() {
	if enabled.Load() && m.class != nil {
		forget(getg(), m)
	}
	m.mu.Unlock()
}

// AssertNone panics when checking is on and the calling goroutine holds a
// checked lock; what names the call-out (e.g. "dispatcher callback").
func AssertNone(what string) {
	if !enabled.Load() {
		return
	}
	g := getg()
	regMu.Lock()
	hs := held[g]
	regMu.Unlock()
	if len(hs) > 0 {
		panic(fmt.Sprintf("lockorder: %s called with %s held", what, names(hs)))
	}
}

func check(g uintptr, m *Mutex) {
	regMu.Lock()
	hs := held[g]
	same := 0
	var bad *Mutex
	for _, h := range hs {
		switch {
		case h == m:
			bad = h
		case h.class.Level > m.class.Level:
			bad = h
		case h.class == m.class:
			same++
		}
	}
	regMu.Unlock()
	nest := max(m.class.Nest, 1)
	if bad != nil || same >= nest {
		panic(fmt.Sprintf("lockorder: taking %s (level %d) while holding %s", m.class.Name, m.class.Level, names(hs)))
	}
}

func record(g uintptr, m *Mutex) {
	regMu.Lock()
	held[g] = append(held[g], m)
	regMu.Unlock()
}

// forget drops m from g's held locks (or from whichever goroutine took it:
// a sync.Mutex may be unlocked by another goroutine).
func forget(g uintptr, m *Mutex) {
	regMu.Lock()
	defer regMu.Unlock()
	if drop(g, m) {
		return
	}
	for o := range held {
		if drop(o, m) {
			return
		}
	}
}

func drop(g uintptr, m *Mutex) bool {
	hs := held[g]
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i] == m {
			hs = append(hs[:i], hs[i+1:]...)
			if len(hs) == 0 {
				delete(held, g)
			} else {
				held[g] = hs
			}
			return true
		}
	}
	return false
}

func names(hs []*Mutex) string {
	if len(hs) == 0 {
		return "nothing"
	}
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = fmt.Sprintf("%s (level %d)", h.class.Name, h.class.Level)
	}
	return strings.Join(s, ", ")
}
