package msgr

// This file is cephx Phase III as the messenger does it: a client keeps the
// service tickets a monitor gave it and opens sessions with other services
// (an OSD, a MGR) with an authorizer made from the ticket for that service
// type, answering the service's challenge; a monitor-like messenger issues
// tickets for the services whose secret its keyring holds; and a service
// verifies authorizers made from tickets for it. A service's secret is the
// key of the entity "<type>." in the keyring (secret_id
// cephx.GeneralSecretID), as Ceph's "mon." key is the monitors'; rotating
// secrets are not kept.

import (
	"fmt"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/asyncmsgr/asyncmsgr/msgr/internal/denc"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

// serviceIDs are the services a monitor issues tickets for, by want_keys
// bit (CEPH_ENTITY_TYPE_*, the same numbers as our entity types).
var serviceIDs = []uint32{cephx.ServiceMon, cephx.ServiceMDS, cephx.ServiceOSD, cephx.ServiceMgr}

// serviceEntity is the keyring entity holding a service's general secret.
func serviceEntity(service uint32) string { return cephx.Name{Type: service}.String() }

// keepTickets stores the service tickets of a cephx session, replacing
// those of an earlier one: tickets are valid for the global id they were
// issued to.
func (a *authConfig) keepTickets(gid uint64, tickets map[uint32]cephx.Ticket) {
	if len(tickets) == 0 {
		return
	}
	a.tmu.Lock()
	defer a.tmu.Unlock()
	a.tickets, a.ticketGID = tickets, gid
}

// ticket is the service ticket for service and the global id it is for.
func (a *authConfig) ticket(service uint32) (cephx.Ticket, uint64, bool) {
	a.tmu.Lock()
	defer a.tmu.Unlock()
	t, ok := a.tickets[service]
	return t, a.ticketGID, ok
}

// ServiceTickets reports the service types this messenger holds a cephx
// ticket for (from its last session with a monitor).
func (m *Messenger) ServiceTickets() []uint8 {
	a := m.authCfg()
	a.tmu.Lock()
	defer a.tmu.Unlock()
	var out []uint8
	for _, s := range serviceIDs {
		if _, ok := a.tickets[s]; ok {
			out = append(out, uint8(s))
		}
	}
	return out
}

// authorizerRequestLocked is the AUTH_REQUEST payload toward a service we
// hold a ticket for: an authorizer. It reports false toward a monitor or
// without a ticket (then the client runs the monitor exchange, which an
// asyncmsgr server answers).
func (c *Connection) authorizerRequestLocked() ([]byte, bool) {
	if c.peerType == EntityTypeMon || c.peerType == 0 {
		return nil, false
	}
	t, gid, ok := c.msgr.authCfg().ticket(uint32(c.peerType))
	if !ok {
		return nil, false
	}
	a, p, err := cephx.NewAuthorizer(gid, t)
	if err != nil {
		return nil, false
	}
	c.auth.authz = a
	return p, true
}

// serviceTicketsLocked issues the tickets a client that proved its key as
// c.auth.peerName asked for (want_keys) and our keyring has a service
// secret for.
func (c *Connection) serviceTicketsLocked(want uint32) ([]cephx.Ticket, error) {
	kr := c.msgr.authCfg().keyring
	if want == 0 {
		want = cephx.DefaultWantKeys
	}
	now := time.Now()
	var out []cephx.Ticket
	for _, s := range serviceIDs {
		if want&s == 0 {
			continue
		}
		e, ok := kr[serviceEntity(s)]
		if !ok {
			continue
		}
		who := cephx.AuthTicket{Name: c.auth.peerName, GlobalID: c.globalID, Created: now, Expires: now.Add(ticketValidity)}
		if caps, ok := kr[c.auth.peerName.String()].Caps[msgr2.EntityTypeName(uint8(s))]; ok {
			who.Caps = denc.AppendBlob(nil, []byte(caps))
			who.AllowAll = caps == "allow *"
		}
		t, err := cephx.NewServiceTicket(s, e.Key.Secret, cephx.GeneralSecretID, who, ticketValidity)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// serviceSecretLocked is ParseAuthorizer's look-up: our own service
// type's general secret.
func (c *Connection) serviceSecretLocked(service uint32, secretID uint64) ([]byte, error) {
	if service != uint32(c.msgr.name.Type) {
		return nil, fmt.Errorf("cephx: authorizer for %s, this is %s", serviceEntity(service), c.msgr.name)
	}
	if secretID != cephx.GeneralSecretID {
		return nil, fmt.Errorf("cephx: ticket sealed with rotating secret %d, which this messenger does not keep", secretID)
	}
	e, ok := c.msgr.authCfg().keyring[serviceEntity(service)]
	if !ok {
		return nil, fmt.Errorf("cephx: no %s secret in the keyring", serviceEntity(service))
	}
	return e.Key.Secret, nil
}

// handleAuthorizerLocked is a service's side of an authorizer: the first
// one (AUTH_REQUEST) is answered with a challenge, the second
// (AUTH_REQUEST_MORE) must answer it; then AUTH_DONE carries the reply and,
// in secure mode, the connection secret. Failures are refused as bad
// credentials.
func (c *Connection) handleAuthorizerLocked(payload []byte, more bool) {
	a := c.msgr.authCfg()
	if a.keyring == nil {
		c.refuseLocked(config.AuthCephX, -eacces, fmt.Sprintf("cephx: this messenger has no keyring (%v)", a.keyringErr))
		return
	}
	au, err := cephx.ParseAuthorizer(payload, time.Now(), c.serviceSecretLocked)
	if err != nil {
		c.refuseLocked(config.AuthCephX, -eacces, fmt.Sprintf("cephx authorizer: %v", err))
		return
	}
	c.auth.peerName = au.Ticket.Name
	if !more {
		ch, p, err := cephx.AuthorizerChallenge(au.SessionKey.Secret)
		if err != nil {
			c.faultLocked(err)
			return
		}
		c.auth.challenge, c.auth.authzServer = ch, true
		reply := msgr2.AuthReplyMore{AuthPayload: p}
		c.appendFrameLocked(msgr2.TagAuthReplyMore, reply.Marshal(c.cbuf[:0]))
		c.flushLocked(false)
		return
	}
	if !au.HaveChallenge || au.ChallengePlus != c.auth.challenge+1 {
		c.refuseLocked(config.AuthCephX, -eacces, fmt.Sprintf("cephx authorizer of %s: our challenge not answered", au.Ticket.Name))
		return
	}
	secret, err := c.connectionSecretLocked()
	if err != nil {
		c.faultLocked(err)
		return
	}
	reply, err := cephx.AuthorizerReply(au.SessionKey.Secret, au.Nonce, secret)
	if err != nil {
		c.faultLocked(err)
		return
	}
	c.globalID = au.GlobalID
	c.auth.key, c.auth.secret = au.SessionKey.Secret, secret
	c.sendAuthDoneLocked(reply)
}
