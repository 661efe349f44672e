package lockorder

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	outer = &Class{Name: "outer", Level: 1, Nest: 2}
	inner = &Class{Name: "inner", Level: 2}
)

func TestOrder(t *testing.T) {
	requireSupported(t)
	Enable()
	var a, a2, a3, b, b2 Mutex
	a.Init(outer)
	a2.Init(outer)
	a3.Init(outer)
	b.Init(inner)
	b2.Init(inner)

	// in order, nesting within the class's limit
	a.Lock()
	a2.Lock()
	b.Lock()
	b.Unlock()
	a2.Unlock()
	a.Unlock()
	AssertNone("a call-out")

	b.Lock()
	require.PanicsWithValue(t, "lockorder: taking outer (level 1) while holding inner (level 2)", func() { a.Lock() })
	require.PanicsWithValue(t, "lockorder: taking inner (level 2) while holding inner (level 2)", func() { b2.Lock() })
	require.Panics(t, func() { AssertNone("a call-out") })
	b.Unlock()

	a.Lock()
	a2.Lock()
	require.Panics(t, func() { a3.Lock() }, "a third lock of a class that nests two")
	a2.Unlock()
	a.Unlock()

	// TryLock never waits: recorded, not checked
	b.Lock()
	require.True(t, a.TryLock())
	a.Unlock()
	b.Unlock()
	AssertNone("a call-out")
}

func requireSupported(t *testing.T) {
	t.Helper()
	if !supported {
		t.Skip("lockorder: no getg on this architecture; checking stays off")
	}
}

// Held locks are the calling goroutine's: a lock another goroutine holds is
// no order violation, and checking follows the goroutine, not the stack it
// happens to run on now (the stack moves when it grows).
func TestHeldPerGoroutine(t *testing.T) {
	requireSupported(t)
	Enable()
	var a, b Mutex
	a.Init(outer)
	b.Init(inner)

	b.Lock() // held here, not by the goroutine below
	done := make(chan any)
	go func() {
		defer func() { done <- recover() }()
		require.NotEqual(t, getg(), uintptr(0))
		a.Lock()
		a.Unlock()
		AssertNone("the other goroutine's call-out")
	}()
	require.Nil(t, <-done, "a lock another goroutine holds is not in the order")

	g := getg()
	require.Equal(t, g, deep(10000), "getg is the goroutine, wherever its stack is")
	require.PanicsWithValue(t, "lockorder: taking outer (level 1) while holding inner (level 2)", func() { a.Lock() },
		"after its stack grew, the goroutine still holds b")
	b.Unlock()

	// a sync.Mutex may be unlocked by another goroutine: the lock is
	// forgotten wherever it was recorded
	a.Lock()
	var wg sync.WaitGroup
	wg.Go(a.Unlock)
	wg.Wait()
	AssertNone("a call-out after a hand-over")
	b.Lock()
	b.Unlock()
}

// deep recurses n frames (growing the stack) and returns getg there.
func deep(n int) uintptr {
	var pad [64]byte
	if n == 0 {
		return getg() + uintptr(pad[0])
	}
	return deep(n-1) + uintptr(pad[n%64])
}
