package msgr

// This file is authentication as the messenger sees it: which method and
// connection mode a connection offers or accepts (from the auth_* and
// ms_*_mode options), the keys (ours, and the keyring a server verifies
// clients against), and a connection's pre-auth state: the bytes exchanged
// before AUTH_SIGNATURE (which it signs), the cephx exchange, and the
// secure-mode session once AUTH_DONE is through. The wire work is in
// msgr/cephx and msgr/msgr2.

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

// ticketValidity is how long the session keys this messenger issues are
// valid (Ceph's auth_service_ticket_ttl default, one hour).
const ticketValidity = time.Hour

// connectionSecretLen is what a secure session gets, as Ceph's monitors
// give it (the AES-GCM key and two nonces use the first 40 bytes).
const connectionSecretLen = 64

// errnos of AUTH_BAD_METHOD results, negated on the wire as Ceph does.
const (
	eacces = 13
	einval = 22
)

var randRead = crand.Read

// ErrAuthRefused is matched by the error of a connection whose peer failed
// authentication (wrong key, unknown entity, a method we do not allow, a
// bad signature) or that refused ours.
var ErrAuthRefused = errors.New("msgr: authentication refused")

// authConfig is the messenger's authentication setup, fixed at New.
type authConfig struct {
	entity string // our name as cephx knows it: "client.admin", "osd.3"
	key    *cephx.Key
	keyErr error // why there is no key (cephx then unavailable as a client)
	// keyring is what a server verifies cephx clients against (nil: none
	// found, so it cannot accept cephx).
	keyring    cephx.Keyring
	keyringErr error
	refused    atomic.Uint64 // peers refused by this messenger
	// tickets are the service tickets of our last cephx session with a
	// monitor, by service id, for global id ticketGID (auth_authorizer.go).
	tmu       sync.Mutex
	tickets   map[uint32]cephx.Ticket
	ticketGID uint64
}

// noAuth is the setup of a Messenger built without New (internal tests):
// no key, no keyring.
var noAuth = &authConfig{keyErr: errors.New("no key configured"), keyringErr: errors.New("no keyring configured")}

func (m *Messenger) authCfg() *authConfig {
	if m.auth == nil {
		return noAuth
	}
	return m.auth
}

func newAuthConfig(cfg *config.Config, name EntityName, id string) *authConfig {
	a := &authConfig{entity: cephx.Name{Type: uint32(name.Type), ID: id}.String()}
	if k, err := cephx.LoadKey(cfg.Key, cfg.Keyfile, cfg.Keyring, cfg.Cluster, a.entity); err == nil {
		a.key = &k
	} else {
		a.keyErr = err
	}
	a.keyring, a.keyringErr = loadKeyring(cfg, a.entity)
	return a
}

// loadKeyring parses the first keyring of the search list that exists.
func loadKeyring(cfg *config.Config, entity string) (cephx.Keyring, error) {
	paths := cephx.ExpandKeyringPaths(cfg.Keyring, cfg.Cluster, entity)
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		kr, err := cephx.ParseKeyring(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return kr, nil
	}
	return nil, fmt.Errorf("no keyring in %v", paths)
}

// mustList parses a list the config has validated already.
func mustList(f func(string) ([]uint32, error), s string) []uint32 {
	l, err := f(s)
	if err != nil {
		return nil
	}
	return l
}

// clientMethodsLocked is what an outgoing connection may use, by
// preference: auth_client_required for a client, auth_cluster_required
// for a daemon.
func (c *Connection) clientMethodsLocked() []uint32 {
	cfg := c.msgr.cfg
	if c.msgr.name.Type == EntityTypeClient {
		return mustList(config.Methods, cfg.AuthClientRequired)
	}
	return mustList(config.Methods, cfg.AuthClusterRequired)
}

// clientModesLocked is the modes an outgoing connection offers.
func (c *Connection) clientModesLocked() []uint32 {
	cfg := c.msgr.cfg
	switch {
	case c.peerType == EntityTypeMon:
		return mustList(config.Modes, cfg.MonClientMode)
	case c.msgr.name.Type == EntityTypeClient:
		return mustList(config.Modes, cfg.ClientMode)
	}
	return mustList(config.Modes, cfg.ClusterMode)
}

// serverMethodsLocked is what an accepted connection's peer may use:
// auth_service_required for clients, auth_cluster_required for daemons.
func (c *Connection) serverMethodsLocked() []uint32 {
	cfg := c.msgr.cfg
	if c.peerType == EntityTypeClient {
		return mustList(config.Methods, cfg.AuthServiceRequired)
	}
	return mustList(config.Methods, cfg.AuthClusterRequired)
}

// serverModesLocked is the modes an accepted connection allows.
func (c *Connection) serverModesLocked() []uint32 {
	cfg := c.msgr.cfg
	mon := c.msgr.name.Type == EntityTypeMon
	switch {
	case c.peerType == EntityTypeClient && mon:
		return mustList(config.Modes, cfg.MonServiceMode)
	case c.peerType == EntityTypeClient:
		return mustList(config.Modes, cfg.ServiceMode)
	case mon:
		return mustList(config.Modes, cfg.MonClusterMode)
	}
	return mustList(config.Modes, cfg.ClusterMode)
}

func contains(l []uint32, v uint32) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// authState is one socket's authentication, owned by the centre; it starts
// afresh with every socket (a reconnecting session authenticates again).
type authState struct {
	recording bool   // rx/tx are kept for AUTH_SIGNATURE
	rx, tx    []byte // bytes received and sent while recording
	method    uint32
	mode      uint32
	tried     []uint32 // methods the peer refused (client side)
	mon       *cephx.MonClient
	authz     *cephx.Authorizer // toward a service we hold a ticket for
	key       []byte            // the session key (empty: auth none)
	sec       *msgr2.Secure
	// server side
	challenge uint64
	peerName  cephx.Name
	peerKey   cephx.Key
	secret    []byte // the connection secret we issue
	// authzServer: the peer showed an authorizer, which we challenged
	authzServer bool
	// unsupported is why we refused the method or mode the peer offered
	// last; a peer that leaves then is counted as refused.
	unsupported string
}

func (a *authState) recordRx(b []byte) {
	if a.recording {
		a.rx = append(a.rx, b...)
	}
}

func (a *authState) recordTx(b []byte) {
	if a.recording {
		a.tx = append(a.tx, b...)
	}
}

// refuseLocked answers with Ceph's AUTH_BAD_METHOD (the result and what we
// allow). A method or mode we do not allow (-EOPNOTSUPP) leaves the
// connection open for the client to try another, as Ceph's server does;
// failed credentials are counted, logged once and the connection closed.
func (c *Connection) refuseLocked(method uint32, result int32, reason string) {
	bad := msgr2.AuthBadMethod{Method: method, Result: result,
		AllowedMethods: c.serverMethodsLocked(), AllowedModes: c.serverModesLocked()}
	c.appendFrameLocked(msgr2.TagAuthBadMethod, bad.Marshal(c.cbuf[:0]))
	c.flushLocked(false)
	if result == -eopnotsupp {
		c.auth = authState{recording: c.auth.recording, rx: c.auth.rx, tx: c.auth.tx, unsupported: reason}
		return
	}
	c.msgr.authCfg().refused.Add(1)
	c.msgr.cfg.Log().Warn("msgr: refused peer", "peer", c.peerAddrString(), "reason", reason)
	c.faultLocked(fmt.Errorf("%w: peer %s: %s", ErrAuthRefused, c.peerAddrString(), reason))
}

// noteUnsupportedLocked counts and logs, once, a peer that leaves after
// we refused the auth method or mode it offered (nothing it has is allowed
// here, e.g. auth none against cephx-only): the connection faults.
func (c *Connection) noteUnsupportedLocked() {
	if c.outgoing || c.auth.unsupported == "" {
		return
	}
	reason := c.auth.unsupported + ", and the peer gave up"
	c.auth.unsupported = ""
	c.msgr.authCfg().refused.Add(1)
	c.msgr.cfg.Log().Warn("msgr: refused peer", "peer", c.peerAddrString(), "reason", reason)
}

func (c *Connection) peerAddrString() string {
	if c.sock == nil {
		return "?"
	}
	return c.sock.RemoteAddr().String()
}

// ------------------------------------------------------------- client side

// sendAuthRequestLocked sends AUTH_REQUEST with the first method of ours
// that the peer has not refused and that we can do (cephx needs a key).
func (c *Connection) sendAuthRequestLocked() {
	var why []string
	for _, m := range c.clientMethodsLocked() {
		if contains(c.auth.tried, m) {
			continue
		}
		req := msgr2.AuthRequest{Method: m, PreferredModes: c.clientModesLocked()}
		switch m {
		case config.AuthNone:
			req.PreferredModes = []uint32{config.ModeCRC}
			req.AuthPayload = c.authPayloadLocked()
		case config.AuthCephX:
			if p, ok := c.authorizerRequestLocked(); ok {
				req.AuthPayload = p
				break
			}
			a := c.msgr.authCfg()
			if a.key == nil {
				why = append(why, fmt.Sprintf("cephx: %v", a.keyErr))
				continue
			}
			c.auth.mon = &cephx.MonClient{Name: cephx.Name{Type: uint32(c.msgr.name.Type), ID: c.msgr.authID},
				Secret: *a.key, GlobalID: c.msgr.globalID()}
			req.AuthPayload = c.auth.mon.InitialRequest()
		}
		c.auth.method = m
		c.appendFrameLocked(msgr2.TagAuthRequest, req.Marshal(c.cbuf[:0]))
		c.flushLocked(false)
		return
	}
	c.faultLocked(fmt.Errorf("%w: no auth method left to try with %s (refused by the peer: %v; %v)",
		ErrAuthRefused, c.peerAddrString(), c.auth.tried, why))
}

// handleAuthBadMethodLocked retries with another method the peer allows, as
// Ceph's client does, or gives up.
func (c *Connection) handleAuthBadMethodLocked(b []byte) {
	var bm msgr2.AuthBadMethod
	if !c.decodeLocked(&bm, b, "AUTH_BAD_METHOD") {
		return
	}
	c.auth.tried = append(c.auth.tried, bm.Method)
	if bm.Result != -eopnotsupp {
		// our credentials were rejected: trying others would be guessing
		c.faultLocked(fmt.Errorf("%w: peer %s rejected our %s credentials (auth method %d, result %d)",
			ErrAuthRefused, c.peerAddrString(), c.msgr.authCfg().entity, bm.Method, bm.Result))
		return
	}
	for _, m := range c.clientMethodsLocked() {
		if !contains(c.auth.tried, m) && contains(bm.AllowedMethods, m) {
			c.msgr.cfg.Log().Info("msgr: peer refused auth method, retrying", "peer", c.peerAddrString(),
				"method", bm.Method, "result", bm.Result, "next", m)
			c.sendAuthRequestLocked()
			return
		}
	}
	c.faultLocked(fmt.Errorf("%w: peer %s rejected auth method %d (result %d); it allows methods %v, modes %v",
		ErrAuthRefused, c.peerAddrString(), bm.Method, bm.Result, bm.AllowedMethods, bm.AllowedModes))
}

func (c *Connection) handleAuthReplyMoreLocked(b []byte) {
	var r msgr2.AuthReplyMore
	if !c.decodeLocked(&r, b, "AUTH_REPLY_MORE") {
		return
	}
	var more []byte
	var err error
	switch {
	case c.auth.authz != nil:
		more, err = c.auth.authz.HandleChallenge(r.AuthPayload)
	case c.auth.mon != nil:
		more, err = c.auth.mon.HandleReplyMore(r.AuthPayload)
	default:
		c.protoErr("AUTH_REPLY_MORE for auth method %d", c.auth.method)
		return
	}
	if err != nil {
		c.faultLocked(fmt.Errorf("msgr: cephx with %s: %w", c.peerAddrString(), err))
		return
	}
	req := msgr2.AuthRequestMore{AuthPayload: more}
	c.appendFrameLocked(msgr2.TagAuthRequestMore, req.Marshal(c.cbuf[:0]))
	c.flushLocked(false)
}

// clientAuthDoneLocked finishes the client's side of AUTH_DONE: the cephx
// session key and, in secure mode, the secure session; it reports false
// after a fault.
func (c *Connection) clientAuthDoneLocked(d *msgr2.AuthDone) bool {
	if !contains(c.clientModesLocked(), d.ConMode) && !(c.auth.method == config.AuthNone && d.ConMode == config.ModeCRC) {
		c.protoErr("peer chose connection mode %d, which we did not offer", d.ConMode)
		return false
	}
	c.auth.mode = d.ConMode
	switch {
	case c.auth.method != config.AuthCephX:
	case c.auth.authz != nil:
		secret, err := c.auth.authz.HandleReply(d.AuthPayload)
		if err != nil {
			c.faultLocked(fmt.Errorf("%w: cephx authorizer reply from %s: %v", ErrAuthRefused, c.peerAddrString(), err))
			return false
		}
		c.auth.key, c.auth.secret = c.auth.authz.SessionKey(), secret
	default:
		s, err := c.auth.mon.HandleDone(d.GlobalID, d.AuthPayload)
		if err != nil {
			c.faultLocked(fmt.Errorf("%w: cephx AUTH_DONE from %s: %v", ErrAuthRefused, c.peerAddrString(), err))
			return false
		}
		c.auth.key = s.Auth.SessionKey.Secret
		c.auth.secret = s.ConnectionSecret
		c.msgr.authCfg().keepTickets(d.GlobalID, s.Services)
	}
	return c.startSecureLocked(false)
}

// ------------------------------------------------------------- server side

// handleAuthRequestLocked answers AUTH_REQUEST: auth none at once, cephx
// with a server challenge; anything we do not allow is refused.
func (c *Connection) handleAuthRequestLocked(b []byte) {
	var r msgr2.AuthRequest
	if !c.decodeLocked(&r, b, "AUTH_REQUEST") {
		return
	}
	if !contains(c.serverMethodsLocked(), r.Method) {
		c.refuseLocked(r.Method, -eopnotsupp, fmt.Sprintf("auth method %d not allowed", r.Method))
		return
	}
	mode := uint32(0)
	allowed := c.serverModesLocked()
	if r.Method == config.AuthNone {
		allowed = []uint32{config.ModeCRC}
	}
	for _, m := range r.PreferredModes {
		if contains(allowed, m) {
			mode = m
			break
		}
	}
	if mode == 0 {
		c.refuseLocked(r.Method, -eopnotsupp, fmt.Sprintf("no allowed connection mode in %v", r.PreferredModes))
		return
	}
	c.auth.method, c.auth.mode, c.auth.unsupported = r.Method, mode, ""
	if r.Method == config.AuthCephX && len(r.AuthPayload) > 0 && r.AuthPayload[0] == cephx.AuthModeAuthorizer {
		c.handleAuthorizerLocked(r.AuthPayload, false)
		return
	}
	_, name, gid, err := cephx.ParseInitialRequest(r.AuthPayload)
	if err != nil {
		c.faultLocked(fmt.Errorf("msgr: bad auth payload (%d bytes): %w", len(r.AuthPayload), err))
		return
	}
	if gid == 0 {
		gid = c.msgr.assignGlobalID()
	}
	c.globalID = gid
	if r.Method == config.AuthNone {
		c.sendAuthDoneLocked(nil)
		return
	}
	a := c.msgr.authCfg()
	if a.keyring == nil {
		c.refuseLocked(r.Method, -eacces, fmt.Sprintf("cephx: this messenger has no keyring (%v)", a.keyringErr))
		return
	}
	k, err := a.keyring.Lookup(name.String())
	if err != nil {
		c.refuseLocked(r.Method, -eacces, fmt.Sprintf("cephx: unknown entity %s", name))
		return
	}
	c.auth.peerName, c.auth.peerKey = name, k
	ch, payload, err := cephx.ServerChallenge()
	if err != nil {
		c.faultLocked(err)
		return
	}
	c.auth.challenge = ch
	more := msgr2.AuthReplyMore{AuthPayload: payload}
	c.appendFrameLocked(msgr2.TagAuthReplyMore, more.Marshal(c.cbuf[:0]))
	c.flushLocked(false)
}

// handleAuthRequestMoreLocked verifies CephXAuthenticate and issues the
// session key and connection secret.
func (c *Connection) handleAuthRequestMoreLocked(b []byte) {
	var r msgr2.AuthRequestMore
	if !c.decodeLocked(&r, b, "AUTH_REQUEST_MORE") {
		return
	}
	if c.auth.authzServer {
		c.handleAuthorizerLocked(r.AuthPayload, true)
		return
	}
	if c.auth.method != config.AuthCephX || c.auth.challenge == 0 {
		c.protoErr("AUTH_REQUEST_MORE without a cephx challenge")
		return
	}
	au, err := cephx.ParseAuthenticate(r.AuthPayload)
	if err != nil {
		c.refuseLocked(c.auth.method, -einval, fmt.Sprintf("cephx: %v", err))
		return
	}
	ok, err := au.Verify(c.auth.peerKey.Secret, c.auth.challenge)
	if err != nil || !ok {
		c.refuseLocked(c.auth.method, -eacces, fmt.Sprintf("cephx: %s did not prove its key (wrong key)", c.auth.peerName))
		return
	}
	session, err := cephx.NewSessionKey()
	if err != nil {
		c.faultLocked(err)
		return
	}
	secret, err := c.connectionSecretLocked()
	if err != nil {
		c.faultLocked(err)
		return
	}
	services, err := c.serviceTicketsLocked(au.WantKeys)
	if err != nil {
		c.faultLocked(err)
		return
	}
	payload, err := cephx.AuthDonePayload(c.auth.peerKey.Secret, session, ticketValidity, 1, nil, secret, services)
	if err != nil {
		c.faultLocked(err)
		return
	}
	c.auth.key, c.auth.secret = session.Secret, secret
	c.sendAuthDoneLocked(payload)
}

// connectionSecretLocked is the connection secret a server issues: random
// bytes in secure mode, none in crc mode.
func (c *Connection) connectionSecretLocked() ([]byte, error) {
	if c.auth.mode != config.ModeSecure {
		return nil, nil
	}
	secret := make([]byte, connectionSecretLen)
	if _, err := randRead(secret); err != nil {
		return nil, err
	}
	return secret, nil
}

// sendAuthDoneLocked sends AUTH_DONE, then (secure from here on in secure
// mode) our AUTH_SIGNATURE over everything received so far.
func (c *Connection) sendAuthDoneLocked(payload []byte) {
	done := msgr2.AuthDone{GlobalID: c.globalID, ConMode: c.auth.mode, AuthPayload: payload}
	c.appendFrameLocked(msgr2.TagAuthDone, done.Marshal(c.cbuf[:0]))
	if !c.startSecureLocked(true) {
		return
	}
	c.flushLocked(false)
}

// ------------------------------------------------------------ both sides

// startSecureLocked ends the exchange on our side as Ceph's finish_auth
// does: secure mode starts (the signature frame is already a secure
// record), then AUTH_SIGNATURE goes out over the bytes received, and
// recording of what we receive stops (what we sent is kept to check the
// peer's signature).
func (c *Connection) startSecureLocked(server bool) bool {
	if c.auth.mode == config.ModeSecure {
		s, err := msgr2.NewSecure(c.auth.secret, server)
		if err != nil {
			c.faultLocked(fmt.Errorf("msgr: secure mode with %s: %w", c.peerAddrString(), err))
			return false
		}
		c.auth.sec = s
	}
	var sig [sigLen]byte
	if len(c.auth.key) > 0 {
		sig = cephx.Sign(c.auth.key, c.auth.rx)
	}
	c.auth.recording = false
	c.auth.rx = nil // tx stays: the peer's signature is checked against it
	c.appendFrameLocked(msgr2.TagAuthSignature, sig[:])
	c.setStateLocked(stAuthSign)
	return true
}

// checkSignatureLocked verifies the peer's AUTH_SIGNATURE: an HMAC of what
// we sent with the session key, all zeros with auth none.
func (c *Connection) checkSignatureLocked(b []byte) bool {
	if len(b) != sigLen {
		c.protoErr("pre-auth signature of %d bytes, want %d", len(b), sigLen)
		return false
	}
	if len(c.auth.key) == 0 {
		if [sigLen]byte(b) != zeroSig {
			c.protoErr("pre-auth signature mismatch (want %d zero bytes for auth none)", sigLen)
			return false
		}
		return true
	}
	if !cephx.VerifySignature(c.auth.key, c.auth.tx, b) {
		if !c.outgoing {
			c.msgr.authCfg().refused.Add(1)
			c.msgr.cfg.Log().Warn("msgr: refused peer", "peer", c.peerAddrString(), "reason", "bad AUTH_SIGNATURE")
		}
		c.faultLocked(fmt.Errorf("%w: AUTH_SIGNATURE from %s does not match what we sent", ErrAuthRefused, c.peerAddrString()))
		return false
	}
	c.auth.tx = nil
	return true
}

// AuthRefusals is how many peers this messenger has refused for failed
// authentication (wrong key, unknown entity, bad signature).
func (m *Messenger) AuthRefusals() uint64 { return m.authCfg().refused.Load() }
