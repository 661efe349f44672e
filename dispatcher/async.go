package dispatcher

import (
	"errors"
	"fmt"
	"net"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// errPortDown is reported to every connection when the port goes down.
var errPortDown = fmt.Errorf("dispatcher: port error event: %w", errors.Join(verbs.ErrPortDown, net.ErrClosed))

func (d *Dispatcher) handleAsync() {
	for {
		ev, err := d.ctx.GetAsyncEvent()
		if err != nil {
			return
		}
		d.C.AsyncEvents.Add(1)
		switch ev.Type {
		case verbs.EventQPFatal, verbs.EventQPReqErr, verbs.EventQPAccessErr, verbs.EventPathMigErr:
			d.mu.Lock()
			e := d.byQPN[ev.QPNum]
			d.mu.Unlock()
			if e != nil {
				if c := d.liveConn(e); c != nil {
					c.OnFault(fmt.Errorf("rdma: async event %s on QP %d: %w", ev.Type, ev.QPNum, net.ErrClosed))
				}
			}
		case verbs.EventPortErr, verbs.EventDeviceFatal:
			d.log.Warn("dispatcher: faulting every connection", "event", ev.Type.String(), "port", ev.Port)
			for _, c := range d.liveConns() {
				c.OnFault(errPortDown)
			}
		case verbs.EventPortActive:
			d.log.Info("dispatcher: port active", "device", d.ctx.Name(), "port", ev.Port)
		case verbs.EventSRQLimit:
			d.refillSRQ()
			if d.srq != nil {
				_ = d.srq.ArmLimit(d.srq.MaxWR() / 8)
			}
		case verbs.EventLastWQEReached:
			// The QP left the SRQ; its reaping waits for the beacon anyway.
		default:
			d.log.Debug("dispatcher: async event", "event", ev.Type.String())
		}
	}
}
