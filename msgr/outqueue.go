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
type outQueue struct {
	buckets []*prioQueue
	n       int
}

func (q *outQueue) len() int { return q.n }

func (q *outQueue) push(m *Message) {
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
			return m
		}
	}
	return nil
}

// clear drops every queued message and returns how many there were.
func (q *outQueue) clear() int {
	n := q.n
	for _, b := range q.buckets {
		clear(b.msgs)
		b.msgs = b.msgs[:0]
		b.head = 0
	}
	q.n = 0
	return n
}
