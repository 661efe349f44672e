//go:build linux && cgo

package cshim

/*
#include <stdlib.h>
#include <string.h>
#include "shim.h"
*/
import "C"
import (
	"syscall"
	"unsafe"
)

// CreateEventChannel calls rdma_create_event_channel and sets its fd non-blocking.
func CreateEventChannel() (uintptr, int, error) {
	ch, err := C.rdma_create_event_channel()
	if ch == nil {
		return 0, -1, nilErr(err, syscall.ENODEV)
	}
	return nonblockChannel(unsafe.Pointer(ch), ch.fd, func() { C.rdma_destroy_event_channel(ch) })
}

// DestroyEventChannel calls rdma_destroy_event_channel.
func DestroyEventChannel(ch uintptr) {
	C.rdma_destroy_event_channel((*C.struct_rdma_event_channel)(ptr(ch)))
}

func idp(h uintptr) *C.struct_rdma_cm_id { return (*C.struct_rdma_cm_id)(ptr(h)) }

// CreateID calls rdma_create_id with port space ps (e.g. RDMA_PS_TCP).
func CreateID(ch uintptr, ps int) (uintptr, error) {
	var id *C.struct_rdma_cm_id
	rc, err := C.rdma_create_id((*C.struct_rdma_event_channel)(ptr(ch)), &id, nil, uint32(ps))
	if rc != 0 {
		return 0, ibvErr(rc, err)
	}
	return handle(unsafe.Pointer(id)), nil
}

// DestroyID calls rdma_destroy_id.
func DestroyID(id uintptr) error {
	rc, err := C.rdma_destroy_id(idp(id))
	return ibvErr(rc, err)
}

// IDVerbs is id->verbs (0 until the id is bound to a device).
func IDVerbs(id uintptr) uintptr { return handle(unsafe.Pointer(idp(id).verbs)) }

// IDPort is id->port_num.
func IDPort(id uintptr) int { return int(idp(id).port_num) }

// BindAddr calls rdma_bind_addr; family is AF_INET or AF_INET6, ip is 4 or 16 bytes.
func BindAddr(id uintptr, family int, ip [16]byte, port int) error {
	return rcErr(C.shim_cm_bind(idp(id), C.int(family), (*C.uint8_t)(unsafe.Pointer(&ip[0])), C.int(port)))
}

// ResolveAddr calls rdma_resolve_addr; sfamily 0 means no source address.
func ResolveAddr(id uintptr, sfamily int, sip [16]byte, sport int, dfamily int, dip [16]byte, dport int, timeoutMS int) error {
	return rcErr(C.shim_cm_resolve_addr(idp(id), C.int(sfamily), (*C.uint8_t)(unsafe.Pointer(&sip[0])), C.int(sport),
		C.int(dfamily), (*C.uint8_t)(unsafe.Pointer(&dip[0])), C.int(dport), C.int(timeoutMS)))
}

// LocalAddr calls rdma_get_local_addr.
func LocalAddr(id uintptr) (family int, ip [16]byte, port int, err error) {
	var fam, prt C.int
	err = rcErr(C.shim_cm_local_addr(idp(id), (*C.uint8_t)(unsafe.Pointer(&ip[0])), &fam, &prt))
	return int(fam), ip, int(prt), err
}

// ResolveRoute calls rdma_resolve_route.
func ResolveRoute(id uintptr, timeoutMS int) error {
	rc, err := C.rdma_resolve_route(idp(id), C.int(timeoutMS))
	return ibvErr(rc, err)
}

// Listen calls rdma_listen.
func Listen(id uintptr, backlog int) error {
	rc, err := C.rdma_listen(idp(id), C.int(backlog))
	return ibvErr(rc, err)
}

func (p *ConnParam) c() (C.struct_shim_conn_param, error) {
	var c C.struct_shim_conn_param
	if len(p.PrivateData) > len(c.private_data) {
		return c, syscall.EINVAL
	}
	c.responder_resources = C.uint8_t(p.ResponderResources)
	c.initiator_depth = C.uint8_t(p.InitiatorDepth)
	c.flow_control = C.uint8_t(p.FlowControl)
	c.retry_count = C.uint8_t(p.RetryCount)
	c.rnr_retry_count = C.uint8_t(p.RNRRetry)
	c.private_data_len = C.uint8_t(len(p.PrivateData))
	for i, b := range p.PrivateData {
		c.private_data[i] = C.uint8_t(b)
	}
	return c, nil
}

// Connect calls rdma_connect.
func Connect(id uintptr, p *ConnParam) error {
	c, err := p.c()
	if err != nil {
		return err
	}
	return rcErr(C.shim_cm_connect(idp(id), &c))
}

// Accept calls rdma_accept.
func Accept(id uintptr, p *ConnParam) error {
	c, err := p.c()
	if err != nil {
		return err
	}
	return rcErr(C.shim_cm_accept(idp(id), &c))
}

// Reject calls rdma_reject.
func Reject(id uintptr, data []byte) error {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = C.CBytes(data)
		defer C.free(p)
	}
	rc, err := C.rdma_reject(idp(id), p, C.uint8_t(len(data)))
	return ibvErr(rc, err)
}

// Disconnect calls rdma_disconnect.
func Disconnect(id uintptr) error {
	rc, err := C.rdma_disconnect(idp(id))
	return ibvErr(rc, err)
}

// MigrateID calls rdma_migrate_id.
func MigrateID(id, ch uintptr) error {
	rc, err := C.rdma_migrate_id(idp(id), (*C.struct_rdma_event_channel)(ptr(ch)))
	return ibvErr(rc, err)
}

// RDMACreateQP calls rdma_create_qp on id with the given PD and init attributes.
func RDMACreateQP(id, pd uintptr, in *QPInit) (qp uintptr, qpn uint32, err error) {
	c := in.c()
	if err := rcErr(C.shim_rdma_create_qp(idp(id), (*C.struct_ibv_pd)(ptr(pd)), &c)); err != nil {
		return 0, 0, err
	}
	in.readCaps(&c)
	q := idp(id).qp
	return handle(unsafe.Pointer(q)), uint32(q.qp_num), nil
}

// RDMADestroyQP calls rdma_destroy_qp.
func RDMADestroyQP(id uintptr) { C.rdma_destroy_qp(idp(id)) }

// GetCMEvent calls rdma_get_cm_event; EAGAIN when none is ready.
func GetCMEvent(ch uintptr) (CMEvent, error) {
	var e C.struct_shim_cm_event
	if err := rcErr(C.shim_cm_get_event((*C.struct_rdma_event_channel)(ptr(ch)), &e)); err != nil {
		return CMEvent{}, err
	}
	ev := CMEvent{Event: uintptr(e.event), ID: uintptr(e.id), ListenID: uintptr(e.listen_id),
		Verbs: uintptr(e.verbs), Type: int(e._type), Status: int(e.status), PrivateDataLen: int(e.private_data_len)}
	for i := 0; i < ev.PrivateDataLen; i++ {
		ev.PrivateData[i] = byte(e.private_data[i])
	}
	return ev, nil
}

// AckCMEvent calls rdma_ack_cm_event.
func AckCMEvent(ev uintptr) error {
	rc, err := C.rdma_ack_cm_event((*C.struct_rdma_cm_event)(ptr(ev)))
	return ibvErr(rc, err)
}
