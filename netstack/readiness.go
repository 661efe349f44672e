package netstack

// ReadinessMasker is optionally implemented by a ConnectedSocket whose FD does
// not follow socket readiness semantics. Adapters that wait for a socket to
// become readable or writable (netstack/netconn) register the masks it returns
// instead of EventReadable (to wait before Read) and EventWritable (to wait
// before Send). For example the rdma stack's FD is an eventfd that turns
// readable when data arrives or TX space frees, so it returns
// (EventReadable, EventReadable).
//
// Readiness is always a hint: after a wake-up the caller retries the
// non-blocking operation and waits again on ErrWouldBlock. Waiters never
// drain the FD, so it must be level-consistent: readable while Read could
// make progress (data, EOF or an error pending) or while Send could make
// progress after it last returned ErrWouldBlock, and not readable otherwise
// (an always-readable FD makes waiters spin). An eventfd-backed socket keeps
// the counter in step with that state after every Read, Send and completion,
// rather than draining it inside Read or Send: draining on one direction
// would swallow the other direction's wake-up.
type ReadinessMasker interface {
	ReadinessMasks() (read, write EventMask)
}

// ReadinessMasks returns the masks to wait on before Read and Send on s:
// s's own when it implements ReadinessMasker, else (EventReadable,
// EventWritable).
func ReadinessMasks(s ConnectedSocket) (read, write EventMask) {
	if m, ok := s.(ReadinessMasker); ok {
		return m.ReadinessMasks()
	}
	return EventReadable, EventWritable
}

// AnyGoroutineSender is optionally implemented by a ConnectedSocket whose
// Send may be called from any goroutine, not only from its worker's event
// centre, as long as calls to Send never overlap (the caller serialises
// them, as it does on the centre). Its Send must not touch the centre (no
// file or time events), so a messenger may write a message straight from
// the sending goroutine when the connection is idle and fall back to the
// centre only when Send would block or fails. Sockets that do not implement
// it, or return false, are only sent on from their centre.
type AnyGoroutineSender interface {
	SendFromAnyGoroutine() bool
}

// SendsFromAnyGoroutine reports whether s implements AnyGoroutineSender and
// allows it.
func SendsFromAnyGoroutine(s ConnectedSocket) bool {
	a, ok := s.(AnyGoroutineSender)
	return ok && a.SendFromAnyGoroutine()
}
