package msgr

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The checker is on in this package's tests and knows msgr's order: taking
// a connection's lock under Messenger.mu, or its owner token under its
// shared part, panics.
func TestLockOrderChecked(t *testing.T) {
	c, _ := newScriptConn(t, false)
	m := c.msgr
	m.mu.Init(&messengerClass)

	m.mu.Lock()
	require.Panics(t, func() { c.mu.Lock() }, "Connection.mu under Messenger.mu")
	m.mu.Unlock()

	c.sh.mu.Lock()
	require.Panics(t, func() { c.mu.Lock() }, "the owner token under the shared part")
	c.sh.mu.Unlock()

	c.mu.Lock()
	c.sh.mu.Lock()
	m.mu.Lock() // in order
	m.mu.Unlock()
	c.sh.mu.Unlock()
	c.mu.Unlock()
}
