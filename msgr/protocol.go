package msgr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// This file is the msgr2.1 state machine (Ceph's ProtocolV2), run on the
// connection's owner goroutine with c.mu held.

const (
	authMethodNone     = 1 // CEPH_AUTH_NONE
	conModeCRC         = 1 // CEPH_CON_MODE_CRC
	authModeAuthorizer = 1
	authModeMon        = 10
	sigLen             = 32 // sha256 digest of AUTH_SIGNATURE
)

var zeroSig [sigLen]byte

// ------------------------------------------------------------------ reading

// readLocked reads what the socket has and handles every complete frame.
func (c *Connection) readLocked() {
	g := c.gen
	budget := maxReadBytes
	for i := 0; i < maxReadLoops && budget > 0; i++ {
		if c.rend == len(c.rbuf) {
			c.makeRoomLocked(0)
		}
		space := len(c.rbuf) - c.rend
		if c.bigFrames && !c.ownFrame && !c.havePre && space > prefetchBig {
			// Big messages are flowing: read little past the next preamble
			// so that the frame's body goes straight into its own buffer.
			space = prefetchBig
		}
		n, err := c.sock.Read(c.rbuf[c.rend : c.rend+space])
		if n > 0 {
			budget -= n
			c.rend += n
			c.readSinceTick = true
			c.stats.bytesRecv.Add(uint64(n))
			c.parseLocked()
			if c.gen != g || c.sock == nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, netstack.ErrWouldBlock) {
				return
			}
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("msgr: peer closed the connection in state %s: %w", c.state, io.EOF)
			} else {
				err = fmt.Errorf("msgr: read in state %s: %w", c.state, err)
			}
			c.faultLocked(err)
			return
		}
		if n < space {
			return // drained; readiness will tell us about more
		}
	}
	// Read budget used up with input maybe still pending: come back after
	// the centre's other work rather than rely on the FD staying readable
	// (readiness is only a hint; rdma's FD is an eventfd).
	center := c.center
	_ = center.DispatchExternal(func() {
		c.mu.Lock()
		if c.gen == g && c.sock != nil && c.center == center {
			c.readLocked()
			if c.gen == g && c.state == stReady && len(c.post) == 0 {
				c.writeReadyLocked()
			}
		}
		c.unlockAndDeliver()
	})
}

// makeRoomLocked ensures the read buffer can hold need more bytes beyond
// rend (0: at least some), compacting or growing it.
func (c *Connection) makeRoomLocked(need int) {
	pending := c.rend - c.rstart
	if need <= 0 {
		need = 1
	}
	if c.rstart > 0 && (c.rend+need > len(c.rbuf) || pending == 0) {
		copy(c.rbuf, c.rbuf[c.rstart:c.rend])
		c.rstart, c.rend = 0, pending
	}
	if c.rend+need > len(c.rbuf) {
		size := len(c.rbuf) * 2
		if size < pending+need {
			size = pending + need
		}
		nb := make([]byte, size)
		copy(nb, c.rbuf[c.rstart:c.rend])
		c.rbuf = nb
		c.rstart, c.rend = 0, pending
	}
}

// resetReadLocked forgets buffered input (new or dropped socket).
func (c *Connection) resetReadLocked() {
	if c.ownFrame {
		c.rbuf, c.normRBuf, c.ownFrame = c.normRBuf, nil, false
	}
	c.rstart, c.rend, c.havePre = 0, 0, false
	c.donateRBuf, c.rbufDonated = false, false
}

// parseLocked handles every complete banner/frame in the read buffer.
func (c *Connection) parseLocked() {
	g := c.gen
	for c.gen == g && c.sock != nil {
		avail := c.rend - c.rstart
		if c.state == stBanner {
			if avail < msgr2.BannerLen {
				break
			}
			b := c.rbuf[c.rstart : c.rstart+msgr2.BannerLen]
			c.rstart += msgr2.BannerLen
			c.handleBannerLocked(b)
			continue
		}
		if !c.havePre {
			if avail < msgr2.PreambleLen {
				break
			}
			p, err := msgr2.ParsePreamble(c.rbuf[c.rstart:c.rstart+msgr2.PreambleLen], c.msgr.cfg.MaxFrameSegment)
			if err != nil {
				c.faultLocked(fmt.Errorf("msgr: bad frame preamble in state %s: %w", c.state, err))
				return
			}
			c.pre = p
			c.havePre = true
			if total := msgr2.PreambleLen + p.RestLen(); p.Tag == msgr2.TagMessage &&
				total >= ownFrameMin && avail < total && !c.ownFrame {
				// A big message is read straight into a buffer of its own,
				// which then becomes the message's storage: no compaction
				// of the shared buffer, no copy out.
				nb := make([]byte, total)
				n := copy(nb, c.rbuf[c.rstart:c.rend])
				c.normRBuf = c.rbuf
				c.rbuf, c.rstart, c.rend = nb, 0, n
				c.ownFrame = true
				avail = n
			}
		}
		total := msgr2.PreambleLen + c.pre.RestLen()
		if avail < total {
			if c.rstart+total > len(c.rbuf) {
				c.makeRoomLocked(total - avail)
			}
			break
		}
		rest := c.rbuf[c.rstart+msgr2.PreambleLen : c.rstart+total]
		segs, err := msgr2.ParseFrameRest(&c.pre, rest)
		c.havePre = false
		c.rstart += total
		if err != nil {
			c.faultLocked(fmt.Errorf("msgr: bad %s frame in state %s: %w", c.pre.Tag, c.state, err))
			return
		}
		// A message whose frame sits in a buffer of its own (see above, or
		// a one-off big buffer) takes that buffer; reading continues in the
		// normal one.
		c.donateRBuf = c.ownFrame || (len(c.rbuf) > maxKeepRBuf && c.pre.Tag == msgr2.TagMessage)
		c.bigFrames = total >= ownFrameMin
		c.handleFrameLocked(c.pre.Tag, segs)
		switch {
		case c.ownFrame:
			// the own buffer held exactly this frame
			c.rbuf, c.normRBuf, c.rstart, c.rend = c.normRBuf, nil, 0, 0
			c.ownFrame = false
		case c.donateRBuf && c.rbufDonated:
			rest := c.rbuf[c.rstart:c.rend]
			nb := make([]byte, max(defaultRBuf, len(rest)))
			c.rend = copy(nb, rest)
			c.rbuf, c.rstart = nb, 0
		}
		c.donateRBuf, c.rbufDonated = false, false
	}
	if c.rstart == c.rend && !c.ownFrame {
		c.rstart, c.rend = 0, 0
		if cap(c.rbuf) > maxKeepRBuf && c.sock != nil {
			c.rbuf = make([]byte, defaultRBuf)
		}
	}
}

func (c *Connection) protoErr(format string, args ...any) {
	c.faultLocked(fmt.Errorf("msgr: "+format, args...))
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
	c.state = stHello
	hello := msgr2.Hello{EntityType: c.msgr.name.Type, PeerAddr: c.peerSockAddrLocked()}
	c.appendFrameLocked(msgr2.TagHello, hello.Marshal(c.cbuf[:0]))
	c.flushLocked(false)
}

// peerSockAddrLocked is the peer's address as this side sees it (HELLO).
func (c *Connection) peerSockAddrLocked() msgr2.EntityAddr {
	return msgr2.EntityAddr{Type: msgr2.AddrTypeMsgr2, Addr: addrPortOf(c.sock.RemoteAddr())}
}

// appendFrameLocked appends a one-segment control frame to the write buffer.
func (c *Connection) appendFrameLocked(tag msgr2.Tag, payload []byte) {
	if len(c.wext) > 0 || c.wtailN > 0 {
		// A data segment sent by reference is still pending: copy it (and
		// its epilogue) into the buffer so that the frame goes after it.
		c.wbuf = append(c.wbuf, c.wext...)
		c.wbuf = append(c.wbuf, c.wtail[:c.wtailN]...)
		c.wext, c.wtailN = nil, 0
	}
	c.wbuf = msgr2.AppendFrame(c.wbuf, tag, payload)
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
	case msgr2.TagHello:
		if c.state == stHello {
			c.handleHelloLocked(segs[0])
			return
		}
	case msgr2.TagAuthRequest:
		if c.state == stAuth && !c.outgoing {
			c.handleAuthRequestLocked(segs[0])
			return
		}
	case msgr2.TagAuthBadMethod:
		if c.state == stAuth && c.outgoing {
			var b msgr2.AuthBadMethod
			if err := b.Unmarshal(segs[0]); err != nil {
				c.faultLocked(fmt.Errorf("msgr: bad AUTH_BAD_METHOD: %w", err))
				return
			}
			c.protoErr("peer rejected auth method %d (result %d): allowed methods %v, modes %v",
				b.Method, b.Result, b.AllowedMethods, b.AllowedModes)
			return
		}
	case msgr2.TagAuthDone:
		if c.state == stAuth && c.outgoing {
			c.handleAuthDoneLocked(segs[0])
			return
		}
	case msgr2.TagAuthSignature:
		if c.state == stAuthSign {
			c.handleAuthSignatureLocked(segs[0])
			return
		}
	case msgr2.TagClientIdent:
		if c.state == stSession && !c.outgoing {
			c.handleClientIdentLocked(segs[0])
			return
		}
	case msgr2.TagSessionReconnect:
		if c.state == stSession && !c.outgoing {
			c.handleReconnectLocked(segs[0])
			return
		}
	case msgr2.TagServerIdent:
		if c.state == stSession && c.outgoing {
			c.handleServerIdentLocked(segs[0])
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

// ---------------------------------------------------------------- handshake

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
		c.state = stAuth
		req := msgr2.AuthRequest{Method: authMethodNone, PreferredModes: []uint32{conModeCRC},
			AuthPayload: c.authPayloadLocked()}
		c.appendFrameLocked(msgr2.TagAuthRequest, req.Marshal(c.cbuf[:0]))
		c.flushLocked(false)
		return
	}
	c.peerType = h.EntityType
	c.policy = c.msgr.policyFor(h.EntityType)
	c.state = stAuth
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

// parseAuthNonePayload decodes the payload above (server side).
func parseAuthNonePayload(b []byte) (mode byte, typ uint32, id string, gid uint64, err error) {
	if len(b) < 9 {
		return 0, 0, "", 0, errShortPayload
	}
	mode = b[0]
	typ = binary.LittleEndian.Uint32(b[1:])
	n := binary.LittleEndian.Uint32(b[5:])
	if uint64(len(b)-9) < uint64(n)+8 {
		return 0, 0, "", 0, errShortPayload
	}
	id = string(b[9 : 9+n])
	gid = binary.LittleEndian.Uint64(b[9+n:])
	return mode, typ, id, gid, nil
}

func (c *Connection) handleAuthRequestLocked(b []byte) {
	var r msgr2.AuthRequest
	if err := r.Unmarshal(b); err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad AUTH_REQUEST: %w", err))
		return
	}
	crc := false
	for _, m := range r.PreferredModes {
		if m == conModeCRC {
			crc = true
		}
	}
	if r.Method != authMethodNone || !crc {
		bad := msgr2.AuthBadMethod{Method: r.Method, Result: -eopnotsupp,
			AllowedMethods: []uint32{authMethodNone}, AllowedModes: []uint32{conModeCRC}}
		c.appendFrameLocked(msgr2.TagAuthBadMethod, bad.Marshal(c.cbuf[:0]))
		c.flushLocked(false)
		return
	}
	_, _, _, gid, err := parseAuthNonePayload(r.AuthPayload)
	if err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad auth-none payload (%d bytes): %w", len(r.AuthPayload), err))
		return
	}
	if gid == 0 {
		gid = c.msgr.assignGlobalID()
	}
	c.globalID = gid
	done := msgr2.AuthDone{GlobalID: gid, ConMode: conModeCRC}
	c.appendFrameLocked(msgr2.TagAuthDone, done.Marshal(c.cbuf[:0]))
	c.appendFrameLocked(msgr2.TagAuthSignature, zeroSig[:])
	c.state = stAuthSign
	c.flushLocked(false)
}

func (c *Connection) handleAuthDoneLocked(b []byte) {
	var d msgr2.AuthDone
	if err := d.Unmarshal(b); err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad AUTH_DONE: %w", err))
		return
	}
	if d.ConMode != conModeCRC {
		c.protoErr("peer chose connection mode %d, only crc (1) is supported", d.ConMode)
		return
	}
	c.globalID = d.GlobalID
	c.msgr.learnGlobalID(d.GlobalID)
	c.appendFrameLocked(msgr2.TagAuthSignature, zeroSig[:])
	c.state = stAuthSign
	c.flushLocked(false)
}

func (c *Connection) handleAuthSignatureLocked(b []byte) {
	// With auth none the session key is empty and the pre-auth signature is
	// an all-zero sha256 digest.
	if len(b) != sigLen || [sigLen]byte(b) != zeroSig {
		c.protoErr("pre-auth signature mismatch (%d bytes, want %d zero bytes for auth none)", len(b), sigLen)
		return
	}
	c.state = stSession
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
	c.state = stSession
	c.flushLocked(false)
}

func (c *Connection) sendReconnectLocked() {
	r := msgr2.SessionReconnect{Addrs: c.myAddrsLocked(), ClientCookie: c.clientCookie,
		ServerCookie: c.serverCookie, GlobalSeq: c.globalSeq, ConnectSeq: c.connectSeq, MsgSeq: c.inSeq}
	c.appendFrameLocked(msgr2.TagSessionReconnect, r.Marshal(c.cbuf[:0]))
	c.state = stSession
	c.flushLocked(false)
}

func (c *Connection) handleServerIdentLocked(b []byte) {
	var s msgr2.ServerIdent
	if err := s.Unmarshal(b); err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad SERVER_IDENT: %w", err))
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

func (c *Connection) handleClientIdentLocked(b []byte) {
	var ci msgr2.ClientIdent
	if err := ci.Unmarshal(b); err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad CLIENT_IDENT: %w", err))
		return
	}
	if len(ci.Addrs) == 0 || ci.Addrs[0] == (msgr2.EntityAddr{}) {
		c.protoErr("CLIENT_IDENT without a client address")
		return
	}
	c.peerAddrs = ci.Addrs
	c.peerName = EntityName{Type: c.peerType, Num: ci.GID}
	c.clientCookie = ci.Cookie
	sup, req := c.featuresLocked()
	if missing := req &^ ci.SupportedFeatures; missing != 0 {
		mf := msgr2.IdentMissingFeatures{Features: missing}
		c.appendFrameLocked(msgr2.TagIdentMissingFeatures, mf.Marshal(c.cbuf[:0]))
		c.flushLocked(false)
		return
	}
	c.peerFeatures = ci.SupportedFeatures & sup
	c.peerGlobalSeq = ci.GlobalSeq
	if !c.policy.Lossy {
		key := peerKey(ci.Addrs[0])
		if e := c.msgr.lookupPeer(key); e != nil && e != c {
			e.mu.Lock()
			if e.state != stClosed && e.state != stReplacing && e.clientCookie == ci.Cookie {
				// Same client session, which never got our SERVER_IDENT:
				// continue establishing it on this socket, keeping what
				// the session has queued (Ceph: "continuing session
				// establishment").
				e.peerGlobalSeq = ci.GlobalSeq
				e.peerFeatures = c.peerFeatures
				e.peerAddrs = ci.Addrs
				c.handOverLocked(e, func() {
					e.requeueSentLocked()
					e.sendServerIdentLocked(false)
				})
				return
			}
			e.mu.Unlock()
		}
		// A lossless peer that comes with a new session replaces the old one
		// (it must have restarted): the old session is reset.
		if old := c.msgr.registerPeer(key, c); old != nil && old != c {
			old.remoteReset()
		}
	}
	c.sendServerIdentLocked(true)
}

// sendServerIdentLocked answers CLIENT_IDENT; fresh is false when an
// existing session continues (its queued messages keep their sequence
// numbers; the peer starts from in_seq 0 either way).
func (c *Connection) sendServerIdentLocked(fresh bool) {
	c.inSeq = 0
	if fresh {
		c.outSeq = 0
	}
	if !c.policy.Lossy {
		c.serverCookie = c.msgr.randCookie()
	}
	var flags uint64
	if c.policy.Lossy {
		flags |= lossyFlag
	}
	sup, req := c.featuresLocked()
	s := msgr2.ServerIdent{Addrs: c.myAddrsLocked(), GID: c.msgr.name.Num,
		GlobalSeq: c.msgr.nextGlobalSeq(0), SupportedFeatures: sup, RequiredFeatures: req,
		Flags: flags, Cookie: c.serverCookie}
	c.appendFrameLocked(msgr2.TagServerIdent, s.Marshal(c.cbuf[:0]))
	c.readyLocked(dqAccept)
}

// handleReconnectLocked is the server side of SESSION_RECONNECT: find the
// session and move this socket into it (Ceph's reuse_connection).
func (c *Connection) handleReconnectLocked(b []byte) {
	var r msgr2.SessionReconnect
	if err := r.Unmarshal(b); err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad SESSION_RECONNECT: %w", err))
		return
	}
	reply := func(tag msgr2.Tag, payload []byte) {
		c.appendFrameLocked(tag, payload)
		c.flushLocked(false)
	}
	if len(r.Addrs) == 0 {
		c.protoErr("SESSION_RECONNECT without a client address")
		return
	}
	e := c.msgr.lookupPeer(peerKey(r.Addrs[0]))
	if e == nil || e == c {
		rs := msgr2.SessionReset{Full: true}
		reply(msgr2.TagSessionReset, rs.Marshal(c.cbuf[:0]))
		return
	}
	e.mu.Lock()
	switch {
	case e.state == stClosed:
		e.mu.Unlock()
		rs := msgr2.SessionReset{Full: true}
		reply(msgr2.TagSessionReset, rs.Marshal(c.cbuf[:0]))
		return
	case e.state == stReplacing:
		gs := e.peerGlobalSeq
		e.mu.Unlock()
		rg := msgr2.SessionRetryGlobal{GlobalSeq: gs}
		reply(msgr2.TagSessionRetryGlobal, rg.Marshal(c.cbuf[:0]))
		return
	case e.clientCookie != r.ClientCookie:
		full := e.policy.ResetCheck
		e.mu.Unlock()
		rs := msgr2.SessionReset{Full: full}
		reply(msgr2.TagSessionReset, rs.Marshal(c.cbuf[:0]))
		return
	case e.serverCookie == 0:
		e.mu.Unlock()
		rs := msgr2.SessionReset{Full: false}
		reply(msgr2.TagSessionReset, rs.Marshal(c.cbuf[:0]))
		return
	case e.peerGlobalSeq > r.GlobalSeq:
		gs := e.peerGlobalSeq
		e.mu.Unlock()
		rg := msgr2.SessionRetryGlobal{GlobalSeq: gs}
		reply(msgr2.TagSessionRetryGlobal, rg.Marshal(c.cbuf[:0]))
		return
	case e.connectSeq > r.ConnectSeq:
		cs := e.connectSeq
		e.mu.Unlock()
		rt := msgr2.SessionRetry{ConnectSeq: cs}
		reply(msgr2.TagSessionRetry, rt.Marshal(c.cbuf[:0]))
		return
	}
	e.connectSeq = r.ConnectSeq
	e.peerGlobalSeq = r.GlobalSeq
	msgSeq := r.MsgSeq
	c.handOverLocked(e, func() {
		e.requeueSentLocked()
		e.discardRequeuedUpToLocked(msgSeq)
		ok := msgr2.SessionReconnectOK{MsgSeq: e.inSeq}
		e.appendFrameLocked(msgr2.TagSessionReconnectOK, ok.Marshal(e.cbuf[:0]))
		e.readyLocked(dqAccept)
	})
}

// handOverLocked moves c's socket (c's centre goroutine; c.mu and e.mu
// held, e.mu released here) into the existing session e, which leaves its
// old socket and centre and, on the socket's centre, runs finish with e.mu
// held to answer the peer (Ceph's reuse_connection). c is closed silently.
func (c *Connection) handOverLocked(e *Connection, finish func()) {
	sock, w := c.sock, c.worker
	leftover := c.pendingWriteLocked()
	_ = c.center.DeleteFileEvent(c.fd, netstack.EventReadable|netstack.EventWritable)
	c.sock = nil
	c.closeLocked(fmt.Errorf("msgr: socket handed to the existing session: %w", ErrMarkedDown), false)

	oldSock, oldFd, oldCenter := e.sock, e.fd, e.center
	e.sock = nil
	e.gen++
	e.ackArmed = false
	e.state = stReplacing
	g := e.gen
	e.mu.Unlock()

	adopt := func() {
		e.mu.Lock()
		if e.gen != g || e.state != stReplacing {
			e.mu.Unlock()
			_ = sock.Close()
			return
		}
		e.worker, e.center = w, w.Center()
		e.stats.reconnects.Add(1)
		if e.attachAdoptedLocked(sock, leftover) {
			finish()
		}
		e.unlockAndDeliver()
	}
	detach := func() {
		if oldSock != nil {
			_ = oldCenter.DeleteFileEvent(oldFd, netstack.EventReadable|netstack.EventWritable)
			_ = oldSock.Close()
		}
		if err := w.Center().DispatchExternal(adopt); err != nil {
			_ = sock.Close()
		}
	}
	if err := oldCenter.DispatchExternal(detach); err != nil {
		if oldSock != nil {
			_ = oldSock.Close()
		}
		_ = sock.Close()
	}
}

// attachAdoptedLocked installs a socket whose handshake another connection
// did (owner goroutine of the new centre); false if it faulted at once.
func (c *Connection) attachAdoptedLocked(sock netstack.ConnectedSocket, leftover []byte) bool {
	c.gen++
	c.ackArmed = false
	g := c.gen
	c.sock = sock
	c.sockDirect = netstack.SendsFromAnyGoroutine(sock)
	c.directErr = nil
	c.fd = sock.FD()
	c.wantWrite = false
	c.resetReadLocked()
	if c.rbuf == nil {
		c.rbuf = make([]byte, defaultRBuf)
	}
	c.resetWriteLocked()
	c.wbuf = append(c.wbuf, leftover...)
	c.idleFor, c.quietFor = 0, 0
	c.handler = c.handlerFor(g)
	if err := c.center.CreateFileEvent(c.fd, netstack.EventReadable, c.handler); err != nil {
		c.faultLocked(fmt.Errorf("msgr: register socket: %w", err))
		return false
	}
	if c.tick > 0 {
		c.center.CreateTimeEvent(c.tick, func() { c.onTick(g) })
	}
	return true
}

// resetSessionLocked forgets the session (peer reset it): queued messages
// are discarded and MsHandleRemoteReset reported.
func (c *Connection) resetSessionLocked() {
	c.discardQueuesLocked()
	c.outSeq, c.inSeq, c.ackLeft = 0, 0, 0
	c.clientCookie, c.serverCookie, c.connectSeq, c.peerGlobalSeq = 0, 0, 0, 0
	c.post = append(c.post, dqItem{kind: dqRemoteReset, c: c})
}

// remoteReset is called (any goroutine) on an old session whose peer came
// back with a new one: it is closed and MsHandleRemoteReset reported.
func (c *Connection) remoteReset() {
	c.mu.Lock()
	if c.state == stClosed {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.msgr.dq.enqueue(dqItem{kind: dqRemoteReset, c: c})
	c.markDown(fmt.Errorf("msgr: peer reset the session: %w", ErrMarkedDown))
}

func (c *Connection) readyLocked(kind dqKind) {
	c.state = stReady
	c.everReady = true
	c.post = append(c.post, dqItem{kind: kind, c: c})
	c.writeReadyLocked()
}

// ------------------------------------------------------------------ messages

func (c *Connection) handleMessageLocked(segs [4][]byte) {
	var h msgr2.MsgHeader2
	if err := h.Unmarshal(segs[0]); err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad message header: %w", err))
		return
	}
	if !c.policy.Lossy {
		c.handleAckLocked(h.AckSeq)
	}
	if h.Seq <= c.inSeq {
		c.stats.dups.Add(1)
		return
	}
	c.inSeq = h.Seq
	if !c.policy.Lossy {
		c.ackLeft++
	}
	fl, ml, dl := len(segs[1]), len(segs[2]), len(segs[3])
	var m *Message
	var buf []byte
	if n := fl + ml + dl; n > 0 && n <= smallPayload && !c.donateRBuf {
		// A small payload shares the Message's allocation.
		mb := new(messageWithPayload)
		m, buf = &mb.Message, mb.payload[:n:n]
	} else {
		m = new(Message)
	}
	*m = Message{Type: h.Type, Priority: h.Priority, Version: h.Version, Tid: h.Tid, Seq: h.Seq,
		Conn: c, RecvStamp: time.Now(), Peer: c.peerName}
	if c.donateRBuf {
		// the segments live in a read buffer allocated for this frame alone
		c.rbufDonated = true
		m.Front, m.Middle, m.Data = clip(segs[1]), clip(segs[2]), clip(segs[3])
	} else {
		if buf == nil && fl+ml+dl > 0 {
			buf = make([]byte, fl+ml+dl) // the message's own storage: one allocation
		}
		copy(buf, segs[1])
		copy(buf[fl:], segs[2])
		copy(buf[fl+ml:], segs[3])
		if fl > 0 {
			m.Front = buf[:fl:fl]
		}
		if ml > 0 {
			m.Middle = buf[fl : fl+ml : fl+ml]
		}
		if dl > 0 {
			m.Data = buf[fl+ml:]
		}
	}
	c.stats.msgsRecv.Add(1)
	c.post = append(c.post, dqItem{kind: dqMessage, m: m, c: c})
}

// smallPayload is the largest payload (front+middle+data) received into the
// Message's own allocation (messageWithPayload) instead of a second one.
const smallPayload = 64

// messageWithPayload is a received Message with room for a small payload,
// so that such a message costs one allocation.
type messageWithPayload struct {
	Message
	payload [smallPayload]byte
}

// clip returns b with its capacity cut to its length (nil when empty).
func clip(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[:len(b):len(b)]
}

func (c *Connection) handleAckLocked(seq uint64) {
	if c.policy.Lossy {
		return
	}
	i := 0
	for i < len(c.sent) && c.sent[i].Seq <= seq {
		c.sent[i] = nil
		i++
	}
	if i == len(c.sent) {
		c.sent = c.sent[:0]
	} else if i > 0 {
		n := copy(c.sent, c.sent[i:])
		clear(c.sent[n:])
		c.sent = c.sent[:n]
	}
}

// ------------------------------------------------------------------ writing

func (c *Connection) moreQueuedLocked() bool {
	return c.state == stReady && (c.outQ.len() > 0 || len(c.resend) > 0)
}

// writeReadyLocked encodes queued frames in batches and sends them until the
// queue is empty or the socket is full.
func (c *Connection) writeReadyLocked() {
	for c.state == stReady && c.sock != nil {
		if c.wpos < c.wlenLocked() {
			if !c.flushLocked(c.moreQueuedLocked()) {
				return
			}
		}
		c.resetWriteLocked()
		if c.keepalive {
			c.keepalive = false
			k := msgr2.Keepalive2{Timestamp: time.Now()}
			c.appendFrameLocked(msgr2.TagKeepalive2, k.Marshal(c.cbuf[:0]))
			c.stats.kaSent.Add(1)
			c.wroteSinceTick = true
		}
		wrote := false
		for len(c.wbuf) < writeBatchMax {
			var m *Message
			if len(c.resend) > 0 {
				m = c.resend[0]
				c.resend[0] = nil
				c.resend = c.resend[1:]
			} else if m = c.outQ.pop(); m == nil {
				break
			}
			c.outSeq++
			m.Seq = c.outSeq
			h := msgr2.MsgHeader2{Seq: m.Seq, Tid: m.Tid, Type: m.Type, Priority: m.prio(),
				Version: m.Version, AckSeq: c.inSeq, CompatVersion: m.Version}
			big := len(m.Data) >= zeroCopyMin
			if big {
				// The data segment goes out by reference, after what is
				// batched so far; the batch ends with it.
				var tail []byte
				c.wbuf, tail = msgr2.AppendMessageFrameParts(c.wbuf, c.wtail[:0], &h, m.Front, m.Middle, m.Data)
				c.wext, c.wtailN = m.Data, len(tail)
			} else {
				c.wbuf = msgr2.AppendMessageFrame(c.wbuf, &h, m.Front, m.Middle, m.Data)
			}
			if !c.policy.Lossy {
				c.sent = append(c.sent, m)
			}
			c.stats.msgsSent.Add(1)
			wrote = true
			c.wroteSinceTick = true
			if big {
				break
			}
		}
		if wrote {
			c.ackLeft = 0
		} else if c.ackLeft > 0 {
			if !c.ackDue && !c.direct && c.ackLeft < ackBatch {
				// Delayed ack: a message sent soon carries it (AckSeq);
				// otherwise the ack timer sends a bare ACK.
				c.armAckTimerLocked()
			} else {
				c.ackLeft = 0
				c.cbuf = binary.LittleEndian.AppendUint64(c.cbuf[:0], c.inSeq) // ACK payload: le64 seq
				c.appendFrameLocked(msgr2.TagAck, c.cbuf)
			}
		}
		if c.wlenLocked() == 0 {
			return
		}
		if !c.flushLocked(c.moreQueuedLocked()) {
			return
		}
	}
}

// wlenLocked is the length of the pending output: wbuf, wext, wtail.
func (c *Connection) wlenLocked() int { return len(c.wbuf) + len(c.wext) + c.wtailN }

// resetWriteLocked forgets the pending output (all sent, or socket gone).
func (c *Connection) resetWriteLocked() {
	c.wbuf, c.wpos = c.wbuf[:0], 0
	if cap(c.wbuf) > maxKeepWBuf {
		c.wbuf = nil
	}
	c.wext, c.wtailN = nil, 0
}

// pendingIovLocked returns the unsent part of the output as up to three
// buffers (in c.iov; the caller clears them after the send).
func (c *Connection) pendingIovLocked() [][]byte {
	if cap(c.iov) < 3 {
		c.iov = make([][]byte, 3)
	}
	iov := c.iov[:0]
	p := c.wpos
	for _, b := range [3][]byte{c.wbuf, c.wext, c.wtail[:c.wtailN]} {
		if p >= len(b) {
			p -= len(b)
			continue
		}
		iov = append(iov, b[p:])
		p = 0
	}
	return iov
}

// pendingWriteLocked copies the unsent part of the output.
func (c *Connection) pendingWriteLocked() []byte {
	var out []byte
	for _, b := range c.pendingIovLocked() {
		out = append(out, b...)
	}
	clear(c.iov[:cap(c.iov)])
	return out
}

// armAckTimerLocked makes sure a bare ACK goes out within ackDelay if no
// message carries the acknowledgement first (owner goroutine).
func (c *Connection) armAckTimerLocked() {
	if c.ackArmed {
		return
	}
	c.ackArmed = true
	g := c.gen
	c.center.CreateTimeEvent(ackDelay, func() {
		c.mu.Lock()
		if c.gen == g {
			c.sendDelayedAckLocked()
		}
		c.unlockAndDeliver()
	})
}

// sendDelayedAckLocked is the ack timer's work (owner goroutine): a bare
// ACK for what no message acknowledged meanwhile.
func (c *Connection) sendDelayedAckLocked() {
	c.ackArmed = false
	if c.state == stReady && c.ackLeft > 0 && c.sock != nil {
		c.ackDue = true
		c.writeReadyLocked()
		c.ackDue = false
	}
}

// flushLocked sends the write buffer; it reports whether everything went out
// (false: blocked, waiting for writability, or faulted).
func (c *Connection) flushLocked(more bool) bool {
	for c.wpos < c.wlenLocked() {
		if c.sock == nil {
			return false
		}
		iov := c.pendingIovLocked()
		n, err := c.sock.Send(iov, more)
		clear(iov)
		if n > 0 {
			c.wpos += n
			c.stats.bytesSent.Add(uint64(n))
		}
		if err != nil && !errors.Is(err, netstack.ErrWouldBlock) {
			if c.direct {
				// not the centre's goroutine: it faults the connection
				c.directErr = err
				c.directBlock = true
				return false
			}
			c.faultLocked(fmt.Errorf("msgr: send in state %s: %w", c.state, err))
			return false
		}
		if c.wpos < c.wlenLocked() && (err != nil || n == 0) {
			if c.direct {
				c.directBlock = true // the centre registers writability
				return false
			}
			if !c.wantWrite {
				// Wait for the socket's own send-space signal: an rdma
				// socket's eventfd is always writable and turns readable
				// when TX chunks return (netstack.ReadinessMasks), which
				// the readable registration every socket holds already
				// covers (the handler flushes while wantWrite).
				if _, wm := netstack.ReadinessMasks(c.sock); wm&^netstack.EventReadable != 0 {
					if err := c.center.CreateFileEvent(c.fd, wm&^netstack.EventReadable, c.handler); err != nil {
						c.faultLocked(fmt.Errorf("msgr: register writable: %w", err))
						return false
					}
				}
				c.wantWrite = true
			}
			return false
		}
	}
	c.resetWriteLocked()
	if c.wantWrite {
		_ = c.center.DeleteFileEvent(c.fd, netstack.EventWritable)
		c.wantWrite = false
	}
	return true
}
