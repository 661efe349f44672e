package verbs

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"syscall"
	"weak"

	"github.com/asyncmsgr/asyncmsgr/verbs/cshim"
)

// Supported reports whether this build can use RDMA devices (cgo on Linux).
const Supported = cshim.Supported

var wcStatusNames, eventNames, cmEventNames [32]string

func init() {
	for i := range wcStatusNames {
		wcStatusNames[i] = cshim.WCStatusStr(i)
		eventNames[i] = cshim.EventTypeStr(i)
		cmEventNames[i] = cshim.CMEventStr(i)
	}
}

// String is ibv_wc_status_str.
func (s WCStatus) String() string {
	return nameOf(wcStatusNames[:], s, "WCStatus")
}

// String is ibv_event_type_str.
func (t EventType) String() string {
	return nameOf(eventNames[:], t, "EventType")
}

// String is rdma_event_str.
func (t CMEventType) String() string {
	return nameOf(cmEventNames[:], t, "CMEventType")
}

// ReadCounters returns the shim's crossing counters.
func ReadCounters() Counters {
	c := cshim.ReadCounters()
	return Counters{c.PostSendCalls, c.PostSendWRs, c.PostRecvCalls, c.PostRecvWRs, c.PollCalls, c.PollWCs}
}

// Devices lists the RDMA devices of this machine (empty when there are none).
func Devices() ([]Device, error) {
	l, err := cshim.ListDevices()
	if err != nil {
		if errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.ENODEV) {
			return nil, nil
		}
		return nil, opErr("ibv_get_device_list", err)
	}
	out := make([]Device, len(l))
	for i, d := range l {
		out[i] = Device{Name: d.Name, NodeGUID: d.NodeGUID, NodeType: d.NodeType, Transport: d.TransportType}
	}
	return out, nil
}

// Open opens the named device, or the first device when name is "". It fails
// with ErrNoDevice (ENODEV) when there is no such device. The device's
// async-event fd is made non-blocking.
func Open(name string) (*Context, error) {
	op := "ibv_open_device"
	if name != "" {
		op += " " + name
	}
	h, err := cshim.OpenDevice(name)
	if err != nil {
		if errors.Is(err, syscall.ENOSYS) {
			err = syscall.ENODEV
		}
		return nil, opErr(op, err)
	}
	fd := cshim.AsyncFD(h)
	if err := cshim.SetNonblock(fd); err != nil {
		_ = cshim.CloseDevice(h)
		return nil, opErr("fcntl async fd", err)
	}
	c := newContext(h, true)
	c.n, _ = newNode(op)
	arm(c.n, c, func() error { return cshim.CloseDevice(h) })
	return c, nil
}

func newContext(h uintptr, owned bool) *Context {
	return &Context{
		h: h, owned: owned, name: cshim.DeviceName(h), asyncFD: cshim.AsyncFD(h),
		qps: map[uintptr]weak.Pointer[QP]{}, cqs: map[uintptr]weak.Pointer[CQ]{},
		srqs: map[uintptr]weak.Pointer[SRQ]{},
	}
}

var (
	cmCtxMu sync.Mutex
	cmCtxs  = map[uintptr]*Context{}
)

// cmContext wraps a context owned by librdmacm (one wrapper per device).
func cmContext(h uintptr) *Context {
	cmCtxMu.Lock()
	defer cmCtxMu.Unlock()
	if c := cmCtxs[h]; c != nil {
		return c
	}
	c := newContext(h, false)
	c.n, _ = newNode("rdma_cm context")
	cmCtxs[h] = c
	if err := cshim.SetNonblock(c.asyncFD); err != nil {
		c.asyncFD = -1
	}
	return c
}

// QueryDevice returns the device attributes.
func (c *Context) QueryDevice() (DeviceAttr, error) {
	if err := c.usable("ibv_query_device"); err != nil {
		return DeviceAttr{}, err
	}
	a, err := cshim.QueryDevice(c.h)
	if err != nil {
		return DeviceAttr{}, opErr("ibv_query_device", err)
	}
	return DeviceAttr{
		FWVer: a.FWVer, NodeGUID: a.NodeGUID, SysImageGUID: a.SysImageGUID, MaxMRSize: a.MaxMRSize,
		VendorID: a.VendorID, VendorPartID: a.VendorPartID, HWVer: a.HWVer,
		MaxQP: a.MaxQP, MaxQPWR: a.MaxQPWR, MaxSGE: a.MaxSGE, MaxCQ: a.MaxCQ, MaxCQE: a.MaxCQE,
		MaxMR: a.MaxMR, MaxPD: a.MaxPD, MaxQPRdAtom: a.MaxQPRdAtom,
		MaxSRQ: a.MaxSRQ, MaxSRQWR: a.MaxSRQWR, MaxSRQSGE: a.MaxSRQSGE, PhysPortCnt: a.PhysPortCnt,
	}, nil
}

// QueryPort returns the attributes of port (1-based).
func (c *Context) QueryPort(port int) (PortAttr, error) {
	op := fmt.Sprintf("ibv_query_port %d", port)
	if err := c.usable(op); err != nil {
		return PortAttr{}, err
	}
	a, err := cshim.QueryPort(c.h, port)
	if err != nil {
		return PortAttr{}, opErr(op, err)
	}
	return PortAttr{
		State: PortState(a.State), MaxMTU: MTU(a.MaxMTU), ActiveMTU: MTU(a.ActiveMTU),
		GIDTblLen: a.GIDTblLen, MaxMsgSz: a.MaxMsgSz, LID: a.LID, LinkLayer: LinkLayer(a.LinkLayer),
	}, nil
}

// PortActive returns nil when port is ACTIVE and ErrPortDown (ENETDOWN) otherwise.
func (c *Context) PortActive(port int) error {
	a, err := c.QueryPort(port)
	if err != nil {
		return err
	}
	if a.State != PortActive && a.State != PortActiveDefer {
		return kindErr(fmt.Sprintf("%s port %d", c.name, port), syscall.ENETDOWN, ErrPortDown, "state "+a.State.String())
	}
	return nil
}

// GIDs returns the valid GID table entries of port, sorted by index, with
// their type (IB, RoCE v1/v2) and network device. It uses
// ibv_query_gid_table and falls back to sysfs
// (/sys/class/infiniband/DEV/ports/N/gid_attrs) when the library or kernel
// lacks it.
func (c *Context) GIDs(port int) ([]GIDEntry, error) {
	pa, err := c.QueryPort(port)
	if err != nil {
		return nil, err
	}
	da, err := c.QueryDevice()
	if err != nil {
		return nil, err
	}
	max := pa.GIDTblLen * da.PhysPortCnt
	if max <= 0 {
		max = pa.GIDTblLen
	}
	tbl, err := cshim.QueryGIDTable(c.h, max)
	if err != nil {
		if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
			return gidsFromSysfs(sysfsRoot, c.name, port, pa.GIDTblLen)
		}
		return nil, opErr("ibv_query_gid_table", err)
	}
	var out []GIDEntry
	for _, e := range tbl {
		if int(e.Port) != port {
			continue
		}
		g := GIDEntry{Index: int(e.Index), Port: port, GID: GID(e.GID), Type: GIDType(e.Type), NetdevIndex: int(e.NdevIfindex)}
		if g.NetdevIndex > 0 {
			if ifc, err := net.InterfaceByIndex(g.NetdevIndex); err == nil {
				g.Netdev = ifc.Name
			}
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// PickGID returns the GID entry to use on port: the entry at index when
// index >= 0, otherwise (index -1) the first RoCE v2 IPv4-mapped GID, else the
// first RoCE v2 GID, else index 0.
func (c *Context) PickGID(port, index int) (GIDEntry, error) {
	gids, err := c.GIDs(port)
	if err != nil {
		return GIDEntry{}, err
	}
	g, ok := pickGID(gids, index)
	if !ok {
		return GIDEntry{}, kindErr(fmt.Sprintf("pick GID %s port %d index %d", c.name, port, index), syscall.ENOENT, nil, "no such valid GID")
	}
	return g, nil
}

// GetAsyncEvent returns the next async event (already acknowledged). When
// none is pending it returns an error with Timeout() true wrapping EAGAIN.
func (c *Context) GetAsyncEvent() (AsyncEvent, error) {
	if err := c.usable("ibv_get_async_event"); err != nil {
		return AsyncEvent{}, err
	}
	e, err := cshim.GetAsyncEvent(c.h)
	if err != nil {
		return AsyncEvent{}, opErr("ibv_get_async_event", err)
	}
	ev := AsyncEvent{Type: EventType(e.Type), Port: e.Port, QPNum: e.QPNum}
	c.regMu.Lock()
	if e.QP != 0 {
		ev.QP = c.qps[e.QP].Value()
	}
	if e.CQ != 0 {
		ev.CQ = c.cqs[e.CQ].Value()
	}
	if e.SRQ != 0 {
		ev.SRQ = c.srqs[e.SRQ].Value()
	}
	c.regMu.Unlock()
	return ev, nil
}

func register[T any](c *Context, m map[uintptr]weak.Pointer[T], h uintptr, v *T) {
	c.regMu.Lock()
	m[h] = weak.Make(v)
	c.regMu.Unlock()
}

func unregister[T any](c *Context, m map[uintptr]weak.Pointer[T], h uintptr) {
	c.regMu.Lock()
	delete(m, h)
	c.regMu.Unlock()
}
