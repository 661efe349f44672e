package msgr

// This file resolves connection races between lossless peers as Ceph's
// ProtocolV2 does (handle_existing_connection): when both ends dial each
// other at the same moment, the session the lower address dialled wins.
// The accepting side whose own dial loses hands the accepted socket to its
// dialling Connection, which becomes that session's server side; the side
// whose dial wins answers the loser's CLIENT_IDENT with WAIT. Either way
// each messenger keeps one Connection to the peer, the one its Connect
// returned, and the messages queued on it are sent on the winning session.

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

// errRaceLost closes an accepted connection whose peer's dial lost a
// connection race (the peer was told to WAIT).
var errRaceLost = fmt.Errorf("msgr: connection race lost to our own dial: %w", ErrMarkedDown)

// racesWith reports whether sessions under policy p take part in connection
// races: lossless peers, both of which dial (not a server, not lossy).
func racesWith(p Policy) bool { return !p.Lossy && !p.Server }

// dialTargetLocked is the outgoing connection that dials ap (m.mu held).
func (m *Messenger) dialTargetLocked(ap netip.AddrPort) *Connection {
	if c := m.conns[ap.String()]; c != nil {
		return c
	}
	for t, c := range m.conns {
		if p, err := netip.ParseAddrPort(t); err == nil && netip.AddrPortFrom(p.Addr().Unmap(), p.Port()) == ap {
			return c
		}
	}
	return nil
}

// acceptedFromLocked is the lossless peer session a peer bound at addr
// dialled to us (m.mu held), which Connect returns instead of dialling
// it a second time (Ceph's lookup_conn by the peer's address).
func (m *Messenger) acceptedFromLocked(addr string) *Connection {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	for k, c := range m.peers {
		if k.ap == ap && c.racing {
			return c
		}
	}
	return nil
}

// claimPeer registers accepted session c under key, unless we are dialling
// the same peer ourselves: then it returns that dial (raced) to resolve the
// race with, and registers nothing. Done under one m.mu with Connect's
// lookup, so that either Connect finds c or c finds Connect's dial.
func (m *Messenger) claimPeer(key peerID, c *Connection, races bool) (old, raced *Connection) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if races {
		if d := m.dialTargetLocked(key.ap); d != nil && d != c {
			return nil, d
		}
	}
	old = m.peers[key]
	m.peers[key] = c
	c.racing = races
	return old, nil
}

// registerRaced registers d, our dial that takes over the peer's session,
// as that accepted session.
func (m *Messenger) registerRaced(key peerID, d *Connection) {
	m.mu.Lock()
	m.peers[key] = d
	d.racing = true
	m.mu.Unlock()
}

// resolveRaceLocked handles a CLIENT_IDENT (c accepted, c.mu held, fields
// from ci already on c) from a peer we are dialling ourselves (d); false
// when d is not in a race (closed, or its session is established) and the
// CLIENT_IDENT is handled as if d did not exist.
func (c *Connection) resolveRaceLocked(ci *msgr2.ClientIdent, key peerID, d *Connection) bool {
	c.injectInternalDelay()
	d.mu.Lock()
	mine := c.msgr.myAddrs()
	if d.state == stClosed || len(mine) == 0 || mine[0].Addr == key.ap {
		d.mu.Unlock()
		return false
	}
	oursWins := addrLess(mine[0].Addr, key.ap)
	switch d.state {
	case stReady:
		// Our dial's session is up: a CLIENT_IDENT from the same peer
		// instance (its nonce) is its losing dial, late; anything else is
		// a new session, as if d did not race.
		if !oursWins || len(d.peerAddrs) == 0 || d.peerAddrs[0].Nonce != key.nonce {
			d.mu.Unlock()
			return false
		}
		d.mu.Unlock()
		c.sendWaitLocked()
		return true
	case stReplacing:
		// already taking over another of the peer's sockets
		d.mu.Unlock()
		c.sendWaitLocked()
		return true
	}
	if oursWins {
		// Our dial wins: the peer waits for it. Make sure it is under way.
		d.kickDialLocked()
		d.mu.Unlock()
		c.sendWaitLocked()
		return true
	}
	// The peer's dial wins: d becomes its session's server side on this
	// socket, keeping what the application queued on it.
	c.msgr.log.Log(context.Background(), LevelMs1, "msgr: connection race won by the peer's dial, taking its session", "conn", c, "dial", d.target)
	d.dropDialRefLocked()
	d.outgoing = false
	d.initiated.Store(false)
	d.peerType, d.policy = c.peerType, c.policy
	d.peerAddrs, d.peerName, d.peerFeatures = c.peerAddrs, c.peerName, c.peerFeatures
	d.peerGlobalSeq, d.clientCookie = ci.GlobalSeq, ci.Cookie
	d.connectSeq, d.backoff = 0, 0
	c.msgr.registerRaced(key, d)
	c.handOverLocked(d, func() {
		d.requeueSentLocked()
		d.sendServerIdentLocked(true)
	})
	return true
}

// kickDialLocked starts d's dial now if it is waiting (back-off or standby):
// the peer has something to send us (Ceph: existing->send_keepalive()).
func (d *Connection) kickDialLocked() {
	if d.state != stBackoff && d.state != stStandby {
		return
	}
	g := d.gen
	_ = d.center.DispatchExternal(func() {
		d.mu.Lock()
		switch {
		case d.gen != g:
		case d.state == stBackoff:
			d.startConnectLocked()
		case d.state == stStandby:
			d.redialFromStandbyLocked()
		}
		d.unlockAndDeliver()
	})
}

// sendWaitLocked answers a losing CLIENT_IDENT with WAIT and closes the
// accepted connection quietly (it never was a session).
func (c *Connection) sendWaitLocked() {
	c.appendFrameLocked(msgr2.TagWait, nil)
	c.flushLocked(false)
	c.closeLocked(errRaceLost, false)
}

// addrLess orders msgr2 addresses as Ceph's entity_addr_t comparison does
// for the race: by IP, then port.
func addrLess(a, b netip.AddrPort) bool {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c < 0
	}
	return a.Port() < b.Port()
}
