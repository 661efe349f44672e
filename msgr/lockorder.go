package msgr

import "github.com/asyncmsgr/asyncmsgr/internal/lockorder"

// Lock order. A goroutine takes msgr's locks only in this order:
//
//  1. Connection.mu, the owner token of a connection's centre-owned state;
//     two at most: an accepting connection's, then that of the existing
//     session it reconnects to, continues or replaces (handshake_server.go).
//  2. Connection.sh.mu, the connection's shared part (one at a time).
//  3. Messenger.mu.
//  4. dialGroup.mu.
//  5. DispatchQueue.mu.
//
// So Messenger.mu is never held while a connection's lock is taken, and
// no msgr lock is held while a dispatcher runs (fast dispatch, the
// DispatchQueue) or while a dial blocks. The event centre's own locks,
// which DispatchExternal takes, come after all of these. Tests enable
// internal/lockorder, which panics when a goroutine breaks this order.
var (
	connClass       = lockorder.Class{Name: "Connection.mu", Level: 1, Nest: 2}
	connSharedClass = lockorder.Class{Name: "Connection.sh.mu", Level: 2}
	messengerClass  = lockorder.Class{Name: "Messenger.mu", Level: 3}
	dialGroupClass  = lockorder.Class{Name: "dialGroup.mu", Level: 4}
	dqClass         = lockorder.Class{Name: "DispatchQueue.mu", Level: 5}
)
