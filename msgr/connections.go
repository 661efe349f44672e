package msgr

// This file is the messenger's connections: Connect and its lookups
// (the session registries a reconnect or a race consults), the registry of
// live connections, and marking them down.

func (m *Messenger) track(c *Connection) bool {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return false
	}
	m.all[c] = struct{}{}
	m.mu.Unlock()
	m.perfTracked(c) // takes c.sh.mu: not under m.mu (lockorder.go)
	return true
}

// unregister forgets a closed connection.
func (m *Messenger) unregister(c *Connection) {
	m.perfRetired(c)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.all, c)
	if m.conns[c.target] == c {
		delete(m.conns, c.target)
	}
	for k, v := range m.peers {
		if v == c {
			delete(m.peers, k)
		}
	}
}

func (m *Messenger) lookupPeer(k peerID) *Connection {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peers[k]
}

// lookupSession is the session with peer k that a SESSION_RECONNECT may
// resume: one it dialled to us, else ours to its address (the peer
// reconnects a session we dialled when it has messages for us; its cookie
// tells whether it is that session).
func (m *Messenger) lookupSession(k peerID) *Connection {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.peers[k]; c != nil {
		return c
	}
	return m.dialTargetLocked(k.ap)
}

// Connect returns the connection to addr, creating it (and starting its
// handshake) if needed (Ceph's connect_to). The peer type is learnt from its
// HELLO and selects the policy.
func (m *Messenger) Connect(addr string) (*Connection, error) { return m.ConnectTo(0, addr) }

// ConnectTo is Connect for a peer of a known entity type (0: any); the
// type's policy applies and a peer announcing another type is refused.
func (m *Messenger) ConnectTo(peerType uint8, addr string) (*Connection, error) {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return nil, ErrShutdown
	}
	if !m.started {
		m.mu.Unlock()
		return nil, ErrNotStarted
	}
	if c := m.conns[addr]; c != nil {
		m.mu.Unlock()
		return c, nil
	}
	if c := m.acceptedFromLocked(addr); c != nil {
		m.mu.Unlock()
		return c, nil
	}
	w := m.stack.PickWorker()
	c := newConnection(m, true, w)
	c.target = addr
	c.peerType = peerType
	if p, ok := m.policies[peerType]; ok && peerType != 0 {
		c.policy = p
	} else {
		c.policy = m.defaultPolicy
	}
	m.conns[addr] = c
	m.all[c] = struct{}{}
	// Read before c is visible: once m.mu is let go, a racing accepted
	// session may take c over and move it to its own centre (race.go), and
	// c.center then belongs to c.mu. The dial below checks stNone under c.mu.
	center := c.center
	m.mu.Unlock()
	m.perfTracked(c)
	// the dial starts from the connection's centre (its timers live there)
	if err := center.DispatchExternal(func() {
		c.mu.Lock()
		if c.state == stNone {
			c.startConnectLocked()
		}
		c.unlockAndDeliver()
	}); err != nil {
		c.markDown(ErrShutdown)
		return nil, ErrShutdown
	}
	return c, nil
}

// SendMessage sends msg to addr, connecting first if needed. A message the
// connection would refuse (Connection.SendMessage) is refused before any
// connection is made.
func (m *Messenger) SendMessage(msg *Message, addr string) error {
	if err := m.checkMessage(msg); err != nil {
		return err
	}
	c, err := m.Connect(addr)
	if err != nil {
		return err
	}
	return c.SendMessage(msg)
}

// MarkDown closes the outgoing connection to addr, if any.
func (m *Messenger) MarkDown(addr string) {
	m.mu.Lock()
	c := m.conns[addr]
	m.mu.Unlock()
	if c != nil {
		c.MarkDown()
	}
}

// MarkDownAll closes every connection.
func (m *Messenger) MarkDownAll() {
	m.mu.Lock()
	cs := make([]*Connection, 0, len(m.all))
	for c := range m.all {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	for _, c := range cs {
		c.MarkDown()
	}
}

// Connections returns a snapshot of the live connections.
func (m *Messenger) Connections() []*Connection {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := make([]*Connection, 0, len(m.all))
	for c := range m.all {
		cs = append(cs, c)
	}
	return cs
}
