package msgr

import "sync"

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
}

// DispatchQueue hands received messages and connection events to the
// messenger's dispatchers on one goroutine, in arrival order (so per
// connection order is kept). It never blocks the enqueuer.
type DispatchQueue struct {
	msgr    *Messenger
	mu      sync.Mutex
	q       []dqItem
	spare   []dqItem
	wake    chan struct{}
	stop    bool
	done    chan struct{}
	started bool
}

func newDispatchQueue(m *Messenger) *DispatchQueue {
	return &DispatchQueue{msgr: m, wake: make(chan struct{}, 1), done: make(chan struct{})}
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
		return
	}
	d.q = append(d.q, it)
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
	return len(d.q)
}

func (d *DispatchQueue) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		for len(d.q) == 0 && !d.stop {
			d.mu.Unlock()
			<-d.wake
			d.mu.Lock()
		}
		if d.stop {
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
	ds := d.msgr.dispatchers()
	switch it.kind {
	case dqMessage:
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
