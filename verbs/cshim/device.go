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

// ListDevices returns the RDMA devices of this machine.
func ListDevices() ([]DeviceInfo, error) {
	var n C.int
	list, err := C.ibv_get_device_list(&n)
	if list == nil {
		return nil, nilErr(err, syscall.ENODEV)
	}
	defer C.ibv_free_device_list(list)
	devs := unsafe.Slice(list, int(n))
	out := make([]DeviceInfo, 0, len(devs))
	for _, d := range devs {
		out = append(out, DeviceInfo{
			Name:          C.GoString(C.ibv_get_device_name(d)),
			NodeGUID:      uint64(C.ibv_get_device_guid(d)),
			NodeType:      int(d.node_type),
			TransportType: int(d.transport_type),
		})
	}
	return out, nil
}

// OpenDevice opens the named device, or the first one when name is empty.
func OpenDevice(name string) (uintptr, error) {
	var cname *C.char
	if name != "" {
		cname = C.CString(name)
		defer C.free(unsafe.Pointer(cname))
	}
	ctx, err := C.shim_open_device(cname)
	if ctx == nil {
		return 0, nilErr(err, syscall.ENODEV)
	}
	return handle(unsafe.Pointer(ctx)), nil
}

func ctxp(h uintptr) *C.struct_ibv_context { return (*C.struct_ibv_context)(ptr(h)) }

// CloseDevice closes a context opened by OpenDevice.
func CloseDevice(ctx uintptr) error {
	rc, err := C.ibv_close_device(ctxp(ctx))
	return ibvErr(rc, err)
}

// DeviceName is the name of the device behind ctx.
func DeviceName(ctx uintptr) string {
	return C.GoString(C.ibv_get_device_name(ctxp(ctx).device))
}

// AsyncFD is the device's async-event file descriptor.
func AsyncFD(ctx uintptr) int { return int(ctxp(ctx).async_fd) }

// SetNonblock sets O_NONBLOCK on fd.
func SetNonblock(fd int) error { return rcErr(C.shim_set_nonblock(C.int(fd))) }

// QueryDevice calls ibv_query_device.
func QueryDevice(ctx uintptr) (DeviceAttr, error) {
	var a C.struct_shim_device_attr
	if err := rcErr(C.shim_query_device(ctxp(ctx), &a)); err != nil {
		return DeviceAttr{}, err
	}
	return DeviceAttr{
		FWVer:    C.GoString(&a.fw_ver[0]),
		NodeGUID: uint64(a.node_guid), SysImageGUID: uint64(a.sys_image_guid),
		MaxMRSize: uint64(a.max_mr_size),
		VendorID:  uint32(a.vendor_id), VendorPartID: uint32(a.vendor_part_id), HWVer: uint32(a.hw_ver),
		MaxQP: int(a.max_qp), MaxQPWR: int(a.max_qp_wr), MaxSGE: int(a.max_sge),
		MaxCQ: int(a.max_cq), MaxCQE: int(a.max_cqe), MaxMR: int(a.max_mr), MaxPD: int(a.max_pd),
		MaxQPRdAtom: int(a.max_qp_rd_atom), MaxSRQ: int(a.max_srq), MaxSRQWR: int(a.max_srq_wr),
		MaxSRQSGE: int(a.max_srq_sge), PhysPortCnt: int(a.phys_port_cnt),
	}, nil
}

// QueryPort calls ibv_query_port.
func QueryPort(ctx uintptr, port int) (PortAttr, error) {
	var a C.struct_shim_port_attr
	if err := rcErr(C.shim_query_port(ctxp(ctx), C.int(port), &a)); err != nil {
		return PortAttr{}, err
	}
	return PortAttr{
		State: int(a.state), MaxMTU: int(a.max_mtu), ActiveMTU: int(a.active_mtu),
		GIDTblLen: int(a.gid_tbl_len), MaxMsgSz: uint32(a.max_msg_sz), LID: uint16(a.lid),
		LinkLayer: uint8(a.link_layer), ActiveSpeed: uint8(a.active_speed),
		ActiveWidth: uint8(a.active_width), PhysState: uint8(a.phys_state),
	}, nil
}

// QueryGIDTable calls ibv_query_gid_table for up to max valid entries of all ports.
func QueryGIDTable(ctx uintptr, max int) ([]GIDEntry, error) {
	if max <= 0 {
		return nil, syscall.EINVAL
	}
	arr := (*C.struct_ibv_gid_entry)(C.calloc(C.size_t(max), C.sizeof_struct_ibv_gid_entry))
	if arr == nil {
		return nil, syscall.ENOMEM
	}
	defer C.free(unsafe.Pointer(arr))
	n := C.shim_query_gid_table(ctxp(ctx), arr, C.int(max))
	if n < 0 {
		return nil, syscall.Errno(-n)
	}
	src := unsafe.Slice(arr, int(n))
	out := make([]GIDEntry, len(src))
	for i, e := range src {
		copy(out[i].GID[:], C.GoBytes(unsafe.Pointer(&e.gid), 16))
		out[i].Index = uint32(e.gid_index)
		out[i].Port = uint32(e.port_num)
		out[i].Type = uint32(e.gid_type)
		out[i].NdevIfindex = uint32(e.ndev_ifindex)
	}
	return out, nil
}

// QueryGID calls ibv_query_gid.
func QueryGID(ctx uintptr, port, index int) ([16]byte, error) {
	var g [16]byte
	err := rcErr(C.shim_query_gid(ctxp(ctx), C.int(port), C.int(index), (*C.uint8_t)(unsafe.Pointer(&g[0]))))
	return g, err
}

// GetAsyncEvent gets and acks one async event; EAGAIN when none is ready.
func GetAsyncEvent(ctx uintptr) (AsyncEvent, error) {
	var e C.struct_shim_async_event
	if err := rcErr(C.shim_get_async_event(ctxp(ctx), &e)); err != nil {
		return AsyncEvent{}, err
	}
	return AsyncEvent{Type: int(e._type), Port: int(e.port), QPNum: uint32(e.qp_num),
		QP: uintptr(e.qp), CQ: uintptr(e.cq), SRQ: uintptr(e.srq)}, nil
}
