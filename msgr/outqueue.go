package msgr

// prioQueue is a FIFO of messages of one priority.
type prioQueue struct {
	prio uint16
	head int
	msgs []*Message
}

// outQueue is Ceph's out_q: one FIFO per priority, highest priority first.
// Buckets are kept sorted by descending priority; there are few distinct
// priorities in practice, so a slice beats a map. Empty buckets are kept
// (and reused) so steady-state queueing does not allocate.
//
// It also counts the payload bytes queued, for SendMessageContext: a
// sender waiting for room gets a channel (spaceWait) that the first pop or
// clear bringing the queue under its bound closes.
type outQueue struct {
	buckets []*prioQueue
	n       int
	bytes   int
	bound   int           // bytes a waiter waits to fall under
	space   chan struct{} // closed when bytes < bound; nil: nobody waits
}

func (q *outQueue) len() int { return q.n }

// spaceWait returns a channel closed once fewer than bound bytes are
// queued.
func (q *outQueue) spaceWait(bound int) <-chan struct{} {
	if q.space == nil || bound < q.bound {
		q.wakeSpace()
		q.space, q.bound = make(chan struct{}), bound
	}
	return q.space
}

func (q *outQueue) wakeSpace() {
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
}

func (q *outQueue) push(m *Message) {
	q.bytes += m.payloadLen()
	p := m.prio()
	i := 0
	for ; i < len(q.buckets); i++ {
		b := q.buckets[i]
		if b.prio == p {
			b.msgs = append(b.msgs, m)
			q.n++
			return
		}
		if b.prio < p {
			break
		}
	}
	b := &prioQueue{prio: p, msgs: []*Message{m}}
	q.buckets = append(q.buckets, nil)
	copy(q.buckets[i+1:], q.buckets[i:])
	q.buckets[i] = b
	q.n++
}

// pop removes the oldest message of the highest priority, or returns nil.
func (q *outQueue) pop() *Message {
	if q.n == 0 {
		return nil
	}
	for _, b := range q.buckets {
		if b.head < len(b.msgs) {
			m := b.msgs[b.head]
			b.msgs[b.head] = nil
			b.head++
			if b.head == len(b.msgs) {
				b.head = 0
				b.msgs = b.msgs[:0]
			} else if b.head > 1024 && b.head*2 > len(b.msgs) {
				n := copy(b.msgs, b.msgs[b.head:])
				clear(b.msgs[n:])
				b.msgs = b.msgs[:n]
				b.head = 0
			}
			q.n--
			q.bytes -= m.payloadLen()
			if q.space != nil && q.bytes < q.bound {
				q.wakeSpace()
			}
			return m
		}
	}
	return nil
}

// clear drops every queued message, passing each to drop (when non-nil),
// and returns how many there were.
func (q *outQueue) clear(drop func(*Message)) int {
	n := q.n
	for _, b := range q.buckets {
		if drop != nil {
			for _, m := range b.msgs[b.head:] {
				drop(m)
			}
		}
		clear(b.msgs)
		b.msgs = b.msgs[:0]
		b.head = 0
	}
	q.n, q.bytes = 0, 0
	q.wakeSpace()
	return n
}
