package msgr

import "github.com/asyncmsgr/asyncmsgr/internal/lockorder"

type dqKind uint8

const (
	dqMessage dqKind = iota
	dqConnect
	dqAccept
	dqReset
	dqRemoteReset
)

type dqItem struct {
	kind dqKind
	m    *Message
	c    *Connection
	err  error
	rx   rxGrant // the throttles a message holds until dispatched (throttle.go)
}

// DispatchQueue hands received messages and connection events to the
// messenger's dispatchers on one goroutine. By default it is FIFO (arrival
// order, so per connection order is kept); with WithPriorityDispatch it is
// Ceph's PrioritizedQueue: highest priority first (connection events count
// as PrioHighest), connections served round-robin within a priority, FIFO
// per connection and priority. It never blocks the enqueuer: what bounds it
// is ms_dispatch_throttle_bytes (DispatchThrottle), which a message's bytes
// take before they are read off the socket and which they give back once
// its dispatcher returns.
type DispatchQueue struct {
	msgr    *Messenger
	thr     *Throttle // ms_dispatch_throttle_bytes; nil when unlimited
	mu      lockorder.Mutex
	q       []dqItem
	spare   []dqItem
	pq      *prioDispatch // non-nil in priority mode
	wake    chan struct{}
	stop    bool
	done    chan struct{}
	started bool
}

func newDispatchQueue(m *Messenger) *DispatchQueue {
	d := &DispatchQueue{msgr: m, wake: make(chan struct{}, 1), done: make(chan struct{})}
	d.mu.Init(&dqClass)
	if n := m.cfg.DispatchThrottleBytes; n > 0 {
		d.thr = NewThrottle("msgr_dispatch_throttler-"+m.name.String(), int64(n))
		if m.perf != nil {
			d.thr.RegisterPerf(m.perf.reg)
		}
	}
	return d
}

func (d *DispatchQueue) start() {
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return
	}
	d.started = true
	d.mu.Unlock()
	go d.run()
}

// enqueue queues an item; it never blocks.
func (d *DispatchQueue) enqueue(it dqItem) {
	d.mu.Lock()
	if d.stop {
		d.mu.Unlock()
		it.rx.put()
		return
	}
	if d.pq != nil {
		d.pq.push(it)
	} else {
		d.q = append(d.q, it)
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Len is the number of queued items.
func (d *DispatchQueue) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pq != nil {
		return d.pq.n
	}
	return len(d.q)
}

func (d *DispatchQueue) run() {
	defer close(d.done)
	if d.pq != nil {
		d.runPrio()
		return
	}
	for {
		d.mu.Lock()
		for len(d.q) == 0 && !d.stop {
			d.mu.Unlock()
			<-d.wake
			d.mu.Lock()
		}
		if d.stop {
			for i := range d.q {
				d.q[i].rx.put()
			}
			d.q = nil
			d.mu.Unlock()
			return
		}
		batch := d.q
		d.q = d.spare[:0]
		d.mu.Unlock()
		for i := range batch {
			d.deliver(&batch[i])
			batch[i] = dqItem{}
		}
		d.mu.Lock()
		d.spare = batch[:0]
		d.mu.Unlock()
	}
}

func (d *DispatchQueue) deliver(it *dqItem) {
	lockorder.AssertNone("a dispatcher callback")
	ds := d.msgr.dispatchers()
	switch it.kind {
	case dqMessage:
		defer it.rx.put()
		for _, x := range ds {
			if x.MsDispatch(it.m) {
				return
			}
		}
	case dqConnect:
		for _, x := range ds {
			x.MsHandleConnect(it.c)
		}
	case dqAccept:
		for _, x := range ds {
			x.MsHandleAccept(it.c)
		}
	case dqReset:
		for _, x := range ds {
			if x.MsHandleReset(it.c, it.err) {
				return
			}
		}
	case dqRemoteReset:
		for _, x := range ds {
			x.MsHandleRemoteReset(it.c)
		}
	default:
		d.deliverOptional(it, ds) // events.go
	}
}

// shutdown stops the goroutine (dropping what is queued) and waits for it.
func (d *DispatchQueue) shutdown() {
	d.mu.Lock()
	d.stop = true
	started := d.started
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	if started {
		<-d.done
	}
}

func (d *DispatchQueue) runPrio() {
	for {
		d.mu.Lock()
		for d.pq.n == 0 && !d.stop {
			d.mu.Unlock()
			<-d.wake
			d.mu.Lock()
		}
		if d.stop {
			for d.pq.n > 0 {
				it := d.pq.pop()
				it.rx.put()
			}
			d.mu.Unlock()
			return
		}
		it := d.pq.pop()
		d.mu.Unlock()
		d.deliver(&it)
	}
}

func (it *dqItem) prio() uint16 {
	if it.kind == dqMessage {
		return it.m.prio()
	}
	return PrioHighest
}

// prioDispatch is the priority mode of DispatchQueue (guarded by its mu).
type prioDispatch struct {
	levels []*prioLevel // descending priority
	n      int
}

type prioLevel struct {
	prio   uint16
	ring   []*connFIFO // connections with items, served round-robin
	next   int
	byConn map[*Connection]*connFIFO
}

type connFIFO struct {
	c     *Connection
	items []dqItem
	head  int
}

func (p *prioDispatch) push(it dqItem) {
	pr := it.prio()
	i := 0
	for ; i < len(p.levels) && p.levels[i].prio > pr; i++ {
	}
	if i == len(p.levels) || p.levels[i].prio != pr {
		l := &prioLevel{prio: pr, byConn: map[*Connection]*connFIFO{}}
		p.levels = append(p.levels, nil)
		copy(p.levels[i+1:], p.levels[i:])
		p.levels[i] = l
	}
	l := p.levels[i]
	f := l.byConn[it.c]
	if f == nil {
		f = &connFIFO{c: it.c}
		l.byConn[it.c] = f
		l.ring = append(l.ring, f)
	}
	f.items = append(f.items, it)
	p.n++
}

func (p *prioDispatch) pop() dqItem {
	for _, l := range p.levels {
		if len(l.ring) == 0 {
			continue
		}
		if l.next >= len(l.ring) {
			l.next = 0
		}
		f := l.ring[l.next]
		it := f.items[f.head]
		f.items[f.head] = dqItem{}
		f.head++
		p.n--
		if f.head == len(f.items) {
			// drained: leave the ring (the next connection moves into place)
			delete(l.byConn, f.c)
			l.ring = append(l.ring[:l.next], l.ring[l.next+1:]...)
		} else {
			l.next++
		}
		return it
	}
	return dqItem{}
}
