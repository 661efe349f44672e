package msgr

// This file is the server side of the handshake: AUTH_REQUEST, CLIENT_IDENT
// and SESSION_RECONNECT, and moving a reconnected socket into its existing
// session (Ceph's reuse_connection).

import (
	"errors"
	"fmt"

	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// parseAuthNonePayload decodes the AUTH_REQUEST payload (server side): the
// same layout for auth none and cephx (cephx.ParseInitialRequest).
func parseAuthNonePayload(b []byte) (mode byte, typ uint32, id string, gid uint64, err error) {
	mode, name, gid, err := cephx.ParseInitialRequest(b)
	if err != nil {
		return 0, 0, "", 0, fmt.Errorf("%w: %v", errShortPayload, err)
	}
	return mode, name.Type, name.ID, gid, nil
}

var errShortPayload = errors.New("msgr: short auth payload")

func (c *Connection) handleClientIdentLocked(b []byte) {
	var ci msgr2.ClientIdent
	if !c.decodeLocked(&ci, b, "CLIENT_IDENT") {
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
		// (it must have restarted): the old session is reset. One we are
		// dialling ourselves races with our dial (race.go).
		races := racesWith(c.policy)
		for {
			old, raced := c.msgr.claimPeer(key, c, races)
			if raced == nil {
				if old != nil && old != c {
					old.remoteReset()
				}
				break
			}
			if c.resolveRaceLocked(&ci, key, raced) {
				return
			}
			races = false
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
	if !c.decodeLocked(&r, b, "SESSION_RECONNECT") {
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
	e := c.msgr.lookupSession(peerKey(r.Addrs[0]))
	if e == nil || e == c {
		reply(msgr2.TagSessionReset, (&msgr2.SessionReset{Full: true}).Marshal(c.cbuf[:0]))
		return
	}
	e.mu.Lock()
	// refuse answers the reconnect with tag and payload (marshalled from
	// e's state while e.mu is held) instead of joining e
	refuse := func(tag msgr2.Tag, payload []byte) {
		e.mu.Unlock()
		reply(tag, payload)
	}
	switch {
	case e.state == stClosed:
		refuse(msgr2.TagSessionReset, (&msgr2.SessionReset{Full: true}).Marshal(c.cbuf[:0]))
		return
	case e.state == stReplacing:
		refuse(msgr2.TagSessionRetryGlobal, (&msgr2.SessionRetryGlobal{GlobalSeq: e.peerGlobalSeq}).Marshal(c.cbuf[:0]))
		return
	case e.clientCookie != r.ClientCookie:
		refuse(msgr2.TagSessionReset, (&msgr2.SessionReset{Full: e.policy.ResetCheck}).Marshal(c.cbuf[:0]))
		return
	case e.serverCookie == 0:
		refuse(msgr2.TagSessionReset, (&msgr2.SessionReset{Full: false}).Marshal(c.cbuf[:0]))
		return
	case e.peerGlobalSeq > r.GlobalSeq:
		refuse(msgr2.TagSessionRetryGlobal, (&msgr2.SessionRetryGlobal{GlobalSeq: e.peerGlobalSeq}).Marshal(c.cbuf[:0]))
		return
	case e.connectSeq > r.ConnectSeq:
		refuse(msgr2.TagSessionRetry, (&msgr2.SessionRetry{ConnectSeq: e.connectSeq}).Marshal(c.cbuf[:0]))
		return
	case e.connectSeq == r.ConnectSeq && c.reconnectRaceLostLocked(e, r.Addrs[0]):
		// Both ends reconnect the session at once (both faulted, neither
		// is a server): the lower address's reconnect wins, as for a
		// connection race; ours is under way (kicked out of its back-off).
		e.kickDialLocked()
		e.mu.Unlock()
		c.sendWaitLocked()
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
	c.injectInternalDelay()
	sock, w := c.sock, c.worker
	leftover := c.pendingWriteLocked()
	// The socket's authentication goes with it: its session key and, in
	// secure mode, the record state both ends are in.
	auth := c.auth
	_ = c.center.DeleteFileEvent(c.fd, netstack.EventReadable|netstack.EventWritable)
	c.sock = nil
	c.closeLocked(fmt.Errorf("msgr: socket handed to the existing session: %w", ErrMarkedDown), false)

	oldSock, oldFd, oldCenter := e.sock, e.fd, e.center
	e.sock = nil
	e.outgoing = false // the server side of the peer's socket now
	e.dropDialRefLocked()
	e.gen++
	e.ackArmed = false
	e.setStateLocked(stReplacing)
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
		e.sh.mu.Lock()
		e.sh.center = e.center
		e.sh.mu.Unlock()
		e.stats.reconnects.Add(1)
		e.auth = auth
		if e.attachAdoptedLocked(sock, leftover) {
			finish()
		}
		if e.delay != nil {
			e.armDelayedLocked() // on this centre now (releaseDelayed)
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

// reconnectRaceLostLocked reports (c.mu and e.mu held) whether a
// SESSION_RECONNECT from peer with e's connect_seq loses to e's own
// reconnect: e dials (not a server policy) and our address is the lower
// (Ceph's handle_reconnect: "reconnect race detected").
func (c *Connection) reconnectRaceLostLocked(e *Connection, peer msgr2.EntityAddr) bool {
	mine := c.msgr.myAddrs()
	return e.redialsLocked() && len(mine) > 0 && addrLess(mine[0].Addr, peer.Addr)
}

// attachAdoptedLocked installs a socket whose handshake another connection
// did (owner goroutine of the new centre); false if it faulted at once.
func (c *Connection) attachAdoptedLocked(sock netstack.ConnectedSocket, leftover []byte) bool {
	g, ok := c.installSocketLocked(sock, leftover)
	if !ok {
		return false
	}
	if c.tick > 0 {
		c.armTickLocked(g)
	}
	return true
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
