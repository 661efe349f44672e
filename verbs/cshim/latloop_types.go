package cshim

// LatConfig is what a latency run in the shim does (struct shim_lat's
// inputs; see latloop.h).
type LatConfig struct {
	Write     bool // RDMA WRITE ping-pong (else SEND)
	Client    bool // this side sends first
	Iters     int
	CQMod     int    // signal every CQMod-th send and the last
	RxBatch   int    // SEND: repost receives this many at a time
	RxPosted  int    // SEND: receives posted before the run
	StampTSC  bool   // stamps are TSC ticks, else CLOCK_MONOTONIC ns
	MarkAddr  uint64 // WRITE: the outgoing message's last byte
	WatchAddr uint64 // WRITE: the incoming message's last byte
}

// LatState is where a latency run stands after a call.
type LatState struct {
	Sends, Recvs int  // sends posted, receives (or peer bytes) consumed
	Done         bool // the run is complete
	Progress     bool // the call saw a completion or the peer's byte
	TimedOut     bool // the time bound ended the call
	Rounds       int  // polling rounds of the call
	// Stage says what failed: 1 receive post, 2 send post, 3 poll, 4 a
	// completion with an error status (WCStatus, WCOpcode, WCVendorErr).
	Stage              int
	WCStatus, WCOpcode int
	WCVendorErr        uint32
}
