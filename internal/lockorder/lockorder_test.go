package lockorder

import (
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	outer = &Class{Name: "outer", Level: 1, Nest: 2}
	inner = &Class{Name: "inner", Level: 2}
)

func TestOrder(t *testing.T) {
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
