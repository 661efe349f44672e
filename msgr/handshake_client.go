package msgr

// This file is the client side of the handshake: auth-none request, AUTH_DONE,
// CLIENT_IDENT or SESSION_RECONNECT, and the server's answers to them.

import (
	"encoding/binary"
	"fmt"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

// decodeLocked decodes a handshake frame's payload into p, or faults the
// connection naming the frame (tag, as Ceph's names it) when it is malformed.
func (c *Connection) decodeLocked(p interface{ Unmarshal([]byte) error }, b []byte, tag string) bool {
	if err := p.Unmarshal(b); err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad %s: %w", tag, err))
		return false
	}
	return true
}

// authPayloadLocked is what Ceph's auth-none client sends: toward a monitor
// (MonConnection::get_auth_request) u8 AUTH_MODE_MON, EntityName, u64
// global_id; toward other daemons (AuthNoneAuthorizer) u8 struct_v=1
// (AUTH_MODE_AUTHORIZER), EntityName, u64 global_id. EntityName encodes as
// le32 type + le32 length + id string.
func (c *Connection) authPayloadLocked() []byte {
	mode := byte(authModeAuthorizer)
	if c.peerType == EntityTypeMon {
		mode = authModeMon
	}
	id := c.msgr.authID
	b := make([]byte, 0, 1+8+len(id)+8)
	b = append(b, mode)
	b = binary.LittleEndian.AppendUint32(b, uint32(c.msgr.name.Type))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(id)))
	b = append(b, id...)
	b = binary.LittleEndian.AppendUint64(b, c.msgr.globalID())
	return b
}

func (c *Connection) handleAuthDoneLocked(b []byte) {
	var d msgr2.AuthDone
	if !c.decodeLocked(&d, b, "AUTH_DONE") {
		return
	}
	c.globalID = d.GlobalID
	c.msgr.learnGlobalID(d.GlobalID)
	if !c.clientAuthDoneLocked(&d) {
		return
	}
	c.flushLocked(false)
}

func (c *Connection) targetAddrLocked() msgr2.EntityAddr {
	return msgr2.EntityAddr{Type: msgr2.AddrTypeMsgr2, Addr: addrPortOf(c.sock.RemoteAddr())}
}

func (c *Connection) sendClientIdentLocked() {
	if !c.policy.Lossy && c.clientCookie == 0 {
		c.clientCookie = c.msgr.randCookie()
	}
	var flags uint64
	if c.policy.Lossy {
		flags |= lossyFlag
	}
	sup, req := c.featuresLocked()
	id := msgr2.ClientIdent{Addrs: c.myAddrsLocked(), TargetAddr: c.targetAddrLocked(),
		GID: c.msgr.name.Num, GlobalSeq: c.globalSeq, SupportedFeatures: sup,
		RequiredFeatures: req, Flags: flags, Cookie: c.clientCookie}
	c.appendFrameLocked(msgr2.TagClientIdent, id.Marshal(c.cbuf[:0]))
	c.initiated.Store(true) // (also a session the peer dialled, reset by it)
	c.setStateLocked(stSession)
	c.flushLocked(false)
}

func (c *Connection) sendReconnectLocked() {
	r := msgr2.SessionReconnect{Addrs: c.myAddrsLocked(), ClientCookie: c.clientCookie,
		ServerCookie: c.serverCookie, GlobalSeq: c.globalSeq, ConnectSeq: c.connectSeq, MsgSeq: c.inSeq}
	c.appendFrameLocked(msgr2.TagSessionReconnect, r.Marshal(c.cbuf[:0]))
	c.setStateLocked(stSession)
	c.flushLocked(false)
}

func (c *Connection) handleServerIdentLocked(b []byte) {
	var s msgr2.ServerIdent
	if !c.decodeLocked(&s, b, "SERVER_IDENT") {
		return
	}
	target := addrPortOf(c.sock.RemoteAddr())
	found := false
	for _, a := range s.Addrs {
		if a.Addr.Port() == target.Port() {
			found = true
		}
	}
	if !found {
		c.protoErr("peer identifies as %v, which does not include %v", s.Addrs, target)
		return
	}
	c.serverCookie = s.Cookie
	c.peerAddrs = s.Addrs
	c.peerName = EntityName{Type: c.peerType, Num: s.GID}
	sup, _ := c.featuresLocked()
	c.peerFeatures = s.SupportedFeatures & sup
	c.peerGlobalSeq = s.GlobalSeq
	c.policy.Lossy = s.Flags&lossyFlag != 0
	c.backoff = 0
	c.readyLocked(dqConnect)
}

// resetSessionLocked forgets the session (peer reset it): queued messages,
// and received ones held back by ms_inject_delay_*, are discarded and
// MsHandleRemoteReset reported.
func (c *Connection) resetSessionLocked() {
	c.discardQueuesLocked()
	c.discardDelayedLocked()
	c.outSeq, c.inSeq, c.ackLeft = 0, 0, 0
	c.clientCookie, c.serverCookie, c.connectSeq, c.peerGlobalSeq = 0, 0, 0, 0
	c.post = append(c.post, dqItem{kind: dqRemoteReset, c: c})
}
