package msgr

// This file is the send-completion notification (Message.OnDone) and the
// hand-over of deliveries queued by a goroutine other than the centre's.

// doneLocked queues m's OnDone, if any, with err (c.mu held).
func (c *Connection) doneLocked(m *Message, err error) {
	if m.OnDone != nil {
		c.post = append(c.post, dqItem{kind: dqDone, m: m, c: c, err: err})
	}
}

// writtenIsDoneLocked reports whether m is finished once written (lossy,
// with OnDone): its data segment is then copied into the frame, so that the
// notification can follow the encoding instead of the socket's progress.
func (c *Connection) writtenIsDoneLocked(m *Message) bool {
	return c.policy.Lossy && m.OnDone != nil
}

// unlockQueueing releases c.mu on a goroutine other than the centre's
// (a direct send, MarkDown), handing what was queued for delivery meanwhile
// to the DispatchQueue; fast dispatch and writes stay the centre's.
func (c *Connection) unlockQueueing() {
	if len(c.post) == 0 {
		c.mu.Unlock() // the common case: nothing queued, nothing allocated
		return
	}
	items := c.post
	c.post = nil
	c.mu.Unlock()
	for i := range items {
		c.msgr.dq.enqueue(items[i])
		items[i] = dqItem{}
	}
}
