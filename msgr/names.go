package msgr

import "github.com/asyncmsgr/asyncmsgr/msgr/msgr2"

// The names a messenger user needs, re-exported from the wire codec so that
// an application names itself and its peers without importing msgr2. Each is
// defined once, in msgr2; these are aliases, not copies.

// EntityName is a messenger's or peer's name (Ceph's entity_name_t: a type
// and a number, as in osd.3 or client.4123).
type EntityName = msgr2.EntityName

// Entity types (CEPH_ENTITY_TYPE_*).
const (
	EntityTypeMon    = msgr2.EntityTypeMon
	EntityTypeMDS    = msgr2.EntityTypeMDS
	EntityTypeOSD    = msgr2.EntityTypeOSD
	EntityTypeClient = msgr2.EntityTypeClient
	EntityTypeMgr    = msgr2.EntityTypeMgr
	EntityTypeAuth   = msgr2.EntityTypeAuth
	EntityTypeAny    = msgr2.EntityTypeAny
)

// Message priorities (CEPH_MSG_PRIO_*). Higher is sent first.
const (
	PrioLow     = msgr2.PrioLow
	PrioDefault = msgr2.PrioDefault
	PrioHigh    = msgr2.PrioHigh
	PrioHighest = msgr2.PrioHighest
)
