package msgr

import "github.com/asyncmsgr/asyncmsgr/internal/msgrhook"

// The hooks tests reach through internal/msgrhook, out of the public API.
func init() {
	msgrhook.FaultConn = func(c any) { c.(*Connection).faultForTest() }
}

// faultForTest shuts the socket down on the connection's centre, if the
// socket it saw is still the connection's by then.
func (c *Connection) faultForTest() {
	c.mu.Lock()
	sock, g, center := c.sock, c.gen, c.center
	c.mu.Unlock()
	if sock == nil {
		return
	}
	_ = center.DispatchExternal(func() {
		c.mu.Lock()
		if c.gen == g && c.sock != nil {
			_ = c.sock.Shutdown()
		}
		c.mu.Unlock()
	})
}
