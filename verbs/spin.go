package verbs

// SpinWait describes the wait of a spin step: QP.PostSpin and CQ.PollSpin
// busy-poll inside the shim (one cgo crossing) until it is satisfied or its
// budget is spent, then return to Go. It is the building block of perftest-
// style ping-pong loops, where a post and a poll are otherwise two crossings
// on the critical path.
type SpinWait struct {
	// CQ is polled; required.
	CQ *CQ
	// CQ2, when non-nil and not CQ, is polled too, alternately with CQ
	// (a QP whose send and receive completions go to different CQs).
	CQ2 *CQ
	// Sends and Recvs: the wait needs at least this many send-queue and
	// receive completions (WCOpcode.IsRecv) among the ones this call polls.
	Sends, Recvs int
	// Watch, when non-nil, adds a condition: the byte at WatchOff of the
	// registered range must equal WatchWant (an RDMA WRITE's last byte, as
	// perftest's write_lat polls it). The byte is read with acquire order.
	Watch     *MR
	WatchOff  int
	WatchWant byte
	// SendAfter posts the send chain only once the wait is met, in the
	// same crossing right after it, instead of before it: a ping-pong
	// reply leaves without a return to Go in between (perftest's order:
	// wait for the peer, then post). When the result is not Done nothing
	// was sent; call again with the same chain. Just before the post the
	// shim stores MarkVal at MarkOff of Mark (when Mark is non-nil: the
	// byte perftest's write_lat sets in the outgoing message) and reads
	// the clock into SpinResult.Stamp.
	SendAfter bool
	Mark      *MR
	MarkOff   int
	MarkVal   byte
	// StampTSC makes Stamp the CPU's time-stamp counter (RDTSC, x86 only;
	// cheap where clock_gettime traps into a hypervisor); otherwise it is
	// CLOCK_MONOTONIC nanoseconds.
	StampTSC bool
	// Spins is the budget: the call returns after this many polling rounds
	// that found nothing new (at least one round is made). It bounds the
	// time a goroutine spends in C; the caller loops, checking its own
	// deadlines between calls.
	Spins int
}

// SpinResult is what one spin step did.
type SpinResult struct {
	// N completions were written to dst[:N]; Sends and Recvs of them are
	// send-queue and receive completions. A completion with an error
	// status ends the step at once (it is among the N).
	N, Sends, Recvs int
	// Watched: the watched byte showed WatchWant.
	Watched bool
	// Done: the wait was satisfied. When false (budget spent, dst full, or
	// a failed completion), call again with what is still missing.
	Done bool
	// Rounds is the number of polling rounds the step made.
	Rounds int
	// Sent: the send chain was posted (always when it was not empty and
	// the step did not fail, except with SendAfter when not Done).
	Sent bool
	// Stamp is the clock read just before a SendAfter post (see StampTSC).
	Stamp uint64
}
