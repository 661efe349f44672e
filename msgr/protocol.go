package msgr

// This file is the msgr2.1 state machine (Ceph's ProtocolV2): which frame
// is valid in which state, and the handshake steps both sides share (banner,
// HELLO, AUTH_SIGNATURE). It runs on the connection's owner goroutine with
// c.mu held; the client and server steps are in handshake_client.go and
// handshake_server.go, the ready session in stream.go, frame I/O in frames.go.

import (
	"fmt"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

const (
	authModeAuthorizer = 1
	authModeMon        = 10
	sigLen             = 32 // sha256 digest of AUTH_SIGNATURE
)

var zeroSig [sigLen]byte

func (c *Connection) protoErr(format string, args ...any) {
	c.faultLocked(fmt.Errorf("msgr: "+format, args...))
}

// frameSide is which side of a connection a handshake frame is valid on.
type frameSide int

const (
	eitherSide frameSide = iota
	clientSide           // the connection's dialler (outgoing)
	serverSide           // the accepted side
)

func (s frameSide) is(outgoing bool) bool {
	return s == eitherSide || (s == clientSide) == outgoing
}

// handshakeFrame is where a handshake frame is valid (a state, a side) and
// the handler that takes its payload.
type handshakeFrame struct {
	state  connState
	side   frameSide
	handle func(c *Connection, b []byte)
}

// handshakeFrames are the handshake's frames a handler of their own takes.
// It is filled by init: the handlers reach handleFrameLocked again.
var handshakeFrames map[msgr2.Tag]handshakeFrame

func init() {
	handshakeFrames = map[msgr2.Tag]handshakeFrame{
		msgr2.TagHello:            {stHello, eitherSide, (*Connection).handleHelloLocked},
		msgr2.TagAuthRequest:      {stAuth, serverSide, (*Connection).handleAuthRequestLocked},
		msgr2.TagAuthBadMethod:    {stAuth, clientSide, (*Connection).handleAuthBadMethodLocked},
		msgr2.TagAuthReplyMore:    {stAuth, clientSide, (*Connection).handleAuthReplyMoreLocked},
		msgr2.TagAuthRequestMore:  {stAuth, serverSide, (*Connection).handleAuthRequestMoreLocked},
		msgr2.TagAuthDone:         {stAuth, clientSide, (*Connection).handleAuthDoneLocked},
		msgr2.TagAuthSignature:    {stAuthSign, eitherSide, (*Connection).handleAuthSignatureLocked},
		msgr2.TagClientIdent:      {stSession, serverSide, (*Connection).handleClientIdentLocked},
		msgr2.TagSessionReconnect: {stSession, serverSide, (*Connection).handleReconnectLocked},
		msgr2.TagServerIdent:      {stSession, clientSide, (*Connection).handleServerIdentLocked},
	}
}

func (c *Connection) handleFrameLocked(tag msgr2.Tag, segs [4][]byte) {
	switch tag {
	case msgr2.TagMessage:
		if c.state != stReady {
			break
		}
		c.handleMessageLocked(segs)
		return
	case msgr2.TagAck:
		if c.state != stReady {
			break
		}
		var a msgr2.Ack
		if err := a.Unmarshal(segs[0]); err != nil {
			c.faultLocked(fmt.Errorf("msgr: bad ACK: %w", err))
			return
		}
		c.handleAckLocked(a.Seq)
		return
	case msgr2.TagKeepalive2:
		if c.state != stReady {
			break
		}
		var k msgr2.Keepalive2
		if err := k.Unmarshal(segs[0]); err != nil {
			c.faultLocked(fmt.Errorf("msgr: bad KEEPALIVE2: %w", err))
			return
		}
		c.kaRecv++
		ack := msgr2.Keepalive2Ack{Timestamp: k.Timestamp}
		c.appendFrameLocked(msgr2.TagKeepalive2Ack, ack.Marshal(c.cbuf[:0]))
		return
	case msgr2.TagKeepalive2Ack:
		if c.state != stReady {
			break
		}
		var k msgr2.Keepalive2Ack
		if err := k.Unmarshal(segs[0]); err != nil {
			c.faultLocked(fmt.Errorf("msgr: bad KEEPALIVE2_ACK: %w", err))
			return
		}
		c.lastKeepaliveAck = k.Timestamp
		c.stats.kaAcks.Add(1)
		return
	default:
		if h, ok := handshakeFrames[tag]; ok && c.state == h.state && h.side.is(c.outgoing) {
			h.handle(c, segs[0])
			return
		}
	case msgr2.TagSessionReconnectOK:
		if c.state == stSession && c.outgoing {
			var r msgr2.SessionReconnectOK
			if err := r.Unmarshal(segs[0]); err != nil {
				c.faultLocked(fmt.Errorf("msgr: bad SESSION_RECONNECT_OK: %w", err))
				return
			}
			c.discardRequeuedUpToLocked(r.MsgSeq)
			c.backoff = 0
			c.readyLocked(dqConnect)
			return
		}
	case msgr2.TagSessionReset:
		if c.state == stSession && c.outgoing {
			var r msgr2.SessionReset
			if err := r.Unmarshal(segs[0]); err != nil {
				c.faultLocked(fmt.Errorf("msgr: bad SESSION_RESET: %w", err))
				return
			}
			if r.Full {
				c.resetSessionLocked()
			} else {
				c.serverCookie, c.connectSeq, c.inSeq = 0, 0, 0
			}
			c.sendClientIdentLocked()
			return
		}
	case msgr2.TagSessionRetry:
		if c.state == stSession && c.outgoing {
			var r msgr2.SessionRetry
			if err := r.Unmarshal(segs[0]); err != nil {
				c.faultLocked(fmt.Errorf("msgr: bad SESSION_RETRY: %w", err))
				return
			}
			c.connectSeq = r.ConnectSeq + 1
			c.sendReconnectLocked()
			return
		}
	case msgr2.TagSessionRetryGlobal:
		if c.state == stSession && c.outgoing {
			var r msgr2.SessionRetryGlobal
			if err := r.Unmarshal(segs[0]); err != nil {
				c.faultLocked(fmt.Errorf("msgr: bad SESSION_RETRY_GLOBAL: %w", err))
				return
			}
			c.globalSeq = c.msgr.nextGlobalSeq(r.GlobalSeq)
			c.sendReconnectLocked()
			return
		}
	case msgr2.TagIdentMissingFeatures:
		if c.state == stSession && c.outgoing {
			var r msgr2.IdentMissingFeatures
			_ = r.Unmarshal(segs[0])
			c.protoErr("peer requires features %#x we do not support", r.Features)
			return
		}
	case msgr2.TagWait:
		if c.state == stSession && c.outgoing {
			c.backoff = c.msgr.cfg.MaxBackoff / 2 // doubled to max by fault
			c.protoErr("peer asked us to WAIT (connection race)")
			return
		}
	}
	c.protoErr("unexpected %s frame in state %s", tag, c.state)
}

func (c *Connection) handleBannerLocked(b []byte) {
	supported, required, err := msgr2.ParseBanner(b)
	if err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad banner: %w", err))
		return
	}
	if supported&msgr2.FeatureRevision1 == 0 {
		c.protoErr("peer does not support msgr2.1 (supported features %#x)", supported)
		return
	}
	if required&^msgr2.FeatureRevision1 != 0 {
		c.protoErr("peer requires msgr2 features %#x we do not support", required&^msgr2.FeatureRevision1)
		return
	}
	c.setStateLocked(stHello)
	hello := msgr2.Hello{EntityType: c.msgr.name.Type, PeerAddr: c.peerSockAddrLocked()}
	c.appendFrameLocked(msgr2.TagHello, hello.Marshal(c.cbuf[:0]))
	c.flushLocked(false)
}

// peerSockAddrLocked is the peer's address as this side sees it (HELLO).
func (c *Connection) peerSockAddrLocked() msgr2.EntityAddr {
	return msgr2.EntityAddr{Type: msgr2.AddrTypeMsgr2, Addr: addrPortOf(c.sock.RemoteAddr())}
}

func (c *Connection) handleHelloLocked(b []byte) {
	var h msgr2.Hello
	if err := h.Unmarshal(b); err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad HELLO: %w", err))
		return
	}
	if c.outgoing {
		if c.peerType != 0 && c.peerType != h.EntityType {
			c.protoErr("peer is entity type %d, expected %d", h.EntityType, c.peerType)
			return
		}
		if c.peerType == 0 {
			c.peerType = h.EntityType
			c.policy = c.msgr.policyFor(h.EntityType)
		}
		c.setStateLocked(stAuth)
		c.sendAuthRequestLocked()
		return
	}
	c.peerType = h.EntityType
	c.policy = c.msgr.policyFor(h.EntityType)
	c.setStateLocked(stAuth)
}

func (c *Connection) handleAuthSignatureLocked(b []byte) {
	if !c.checkSignatureLocked(b) {
		return
	}
	c.setStateLocked(stSession)
	if !c.outgoing {
		return
	}
	if c.serverCookie == 0 {
		c.sendClientIdentLocked()
	} else {
		c.sendReconnectLocked()
	}
}

func (c *Connection) featuresLocked() (sup, req uint64) {
	sup = c.policy.FeaturesSupported
	if sup == 0 {
		sup = DefaultFeatures
	}
	return sup, c.policy.FeaturesRequired
}

func (c *Connection) myAddrsLocked() msgr2.AddrVec {
	if av := c.msgr.myAddrs(); len(av) > 0 {
		return av
	}
	// Not bound: identify, as an unbound Ceph client does, with an "any"
	// address: our socket's IP, port 0, and our nonce.
	local := addrPortOf(c.sock.LocalAddr())
	return msgr2.AddrVec{{Type: msgr2.AddrTypeAny, Nonce: c.msgr.nonce, Addr: netipPort0(local)}}
}
