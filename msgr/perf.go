package msgr

// This file is the messenger's counters that outlive a connection (Ceph's
// AsyncMessenger::Worker-N perf counters), the stack's counters beside them,
// and the optional admin socket that serves them as a Ceph daemon's does.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/asyncmsgr/asyncmsgr/netstack"
	"github.com/asyncmsgr/asyncmsgr/perfcounters"
	"github.com/asyncmsgr/asyncmsgr/perfcounters/adminsock"
)

// PerfRegistrar is implemented by stacks with counters of their own (the
// rdma stack's AsyncMessenger::RDMADispatcher set): the messenger registers
// them beside its own.
type PerfRegistrar interface {
	RegisterPerf(reg *perfcounters.Registry)
}

// perfState holds what closed connections counted, per worker, so that the
// counters outlive them; live connections are read at dump time.
type perfState struct {
	reg  *perfcounters.Registry
	mu   sync.Mutex // guards retired and created
	gone map[netstack.Worker]*ConnStats
	made map[netstack.Worker]uint64
	asok *adminsock.Server
}

func (m *Messenger) initPerf() {
	p := &perfState{reg: perfcounters.NewRegistry(), gone: map[netstack.Worker]*ConnStats{}, made: map[netstack.Worker]uint64{}}
	m.perf = p
	for i, w := range m.stack.Workers() {
		w := w
		set := p.reg.Set("AsyncMessenger::Worker-" + strconv.Itoa(i))
		sum := func(f func(s *ConnStats) uint64) func() uint64 {
			return func() uint64 { return m.workerTotal(w, f) }
		}
		set.Func("msgr_recv_messages", "Network received messages", perfcounters.Counter, sum(func(s *ConnStats) uint64 { return s.MsgsRecv }))
		set.Func("msgr_send_messages", "Network sent messages", perfcounters.Counter, sum(func(s *ConnStats) uint64 { return s.MsgsSent }))
		set.Func("msgr_recv_bytes", "Network received bytes", perfcounters.Counter, sum(func(s *ConnStats) uint64 { return s.BytesRecv }))
		set.Func("msgr_send_bytes", "Network sent bytes", perfcounters.Counter, sum(func(s *ConnStats) uint64 { return s.BytesSent }))
		set.Func("msgr_created_connections", "Created connection number", perfcounters.Counter, func() uint64 {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.made[w]
		})
		set.Func("msgr_active_connections", "Active connection number", perfcounters.Gauge, func() uint64 {
			n := uint64(0)
			for _, c := range m.Connections() {
				if c.workerNow() == w {
					n++
				}
			}
			return n
		})
	}
	set := p.reg.Set("AsyncMessenger")
	set.Func("msgr_auth_refused", "Peers refused for failed authentication", perfcounters.Counter, m.AuthRefusals)
	set.Func("msgr_reconnects", "Reconnect attempts of lossless sessions", perfcounters.Counter, func() uint64 {
		return m.total(func(s *ConnStats) uint64 { return s.Reconnects })
	})
	set.Func("msgr_faults", "Connection faults", perfcounters.Counter, func() uint64 {
		return m.total(func(s *ConnStats) uint64 { return s.Faults })
	})
	if r, ok := m.stack.(PerfRegistrar); ok {
		r.RegisterPerf(p.reg)
	}
}

// workerNow is the worker driving c now (it changes when a reconnecting
// socket is adopted by its session).
func (c *Connection) workerNow() netstack.Worker {
	c.sh.mu.Lock()
	defer c.sh.mu.Unlock()
	for _, w := range c.msgr.stack.Workers() {
		if w.Center() == c.sh.center {
			return w
		}
	}
	return nil
}

func (m *Messenger) workerTotal(w netstack.Worker, f func(s *ConnStats) uint64) uint64 {
	p := m.perf
	p.mu.Lock()
	n := uint64(0)
	if g := p.gone[w]; g != nil {
		n = f(g)
	}
	p.mu.Unlock()
	for _, c := range m.Connections() {
		if c.workerNow() == w {
			s := c.Stats()
			n += f(&s)
		}
	}
	return n
}

func (m *Messenger) total(f func(s *ConnStats) uint64) uint64 {
	n := uint64(0)
	for _, w := range m.stack.Workers() {
		n += m.workerTotal(w, f)
	}
	return n
}

// perfTracked counts a connection made on w.
func (m *Messenger) perfTracked(c *Connection) {
	if m.perf == nil {
		return
	}
	w := c.workerNow()
	m.perf.mu.Lock()
	m.perf.made[w]++
	m.perf.mu.Unlock()
}

// perfRetired keeps what a closing connection counted.
func (m *Messenger) perfRetired(c *Connection) {
	if m.perf == nil {
		return
	}
	w, s := c.workerNow(), c.Stats()
	p := m.perf
	p.mu.Lock()
	g := p.gone[w]
	if g == nil {
		g = &ConnStats{}
		p.gone[w] = g
	}
	g.MsgsSent += s.MsgsSent
	g.MsgsRecv += s.MsgsRecv
	g.BytesSent += s.BytesSent
	g.BytesRecv += s.BytesRecv
	g.Reconnects += s.Reconnects
	g.Faults += s.Faults
	p.mu.Unlock()
}

// PerfCounters is the messenger's counter registry (its own and its
// stack's), for perfcounters/promcollector or a caller's own export.
func (m *Messenger) PerfCounters() *perfcounters.Registry { return m.perf.reg }

// PerfDump is Ceph's `perf dump` of the messenger and its stack (JSON).
func (m *Messenger) PerfDump() []byte { return m.perf.reg.Dump() }

// adminSocketPath expands the admin_socket option as Ceph does
// ($run_dir, $cluster, $name, $pid).
func (m *Messenger) adminSocketPath() string {
	p := m.cfg.AdminSocket
	r := strings.NewReplacer("$run_dir", m.cfg.RunDir, "$cluster", m.cfg.Cluster,
		"$name", m.authCfg().entity, "$pid", strconv.Itoa(os.Getpid()))
	return r.Replace(p)
}

// startAdminSocket serves the counters at admin_socket, if set.
func (m *Messenger) startAdminSocket() error {
	if m.cfg.AdminSocket == "" {
		return nil
	}
	s, err := adminsock.Listen(m.adminSocketPath(), m.perf.reg, m.cfg.Log())
	if err != nil {
		return fmt.Errorf("msgr: admin_socket: %w", err)
	}
	m.perf.asok = s
	return nil
}

func (m *Messenger) stopAdminSocket() {
	if m.perf != nil && m.perf.asok != nil {
		_ = m.perf.asok.Close()
	}
}
