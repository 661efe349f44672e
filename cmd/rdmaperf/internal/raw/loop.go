package raw

import (
	"fmt"
	"runtime"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/clock"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// latLoop is send_lat's and write_lat's -n run with the whole ping-pong in
// C (verbs.LatLoop): each crossing runs iteration after iteration until the
// run ends or its time bound (goRuntime.loopTicks) passes, so that the Go
// runtime meets the loop once per bound and never between a message and its
// reply. Between crossings the loop checks the peer and the stall clock and
// yields as goRuntime says; the post stamps are converted at the end.
func (r *res) latLoop(size int, posted []int64) (int, error) {
	p := r.p
	c := verbs.LatLoopConfig{
		Client: !p.IsServer(), Iters: p.Iters, CQ: r.scq, StampTSC: clock.TSC(),
		CQMod: max(1, min(p.CQMod, p.TxDepth)),
		Send:  verbs.WorkRequest{Flags: r.baseFlags(size), SG: r.sge[:1]},
	}
	r.sge[0] = r.mr.SGE(0, size)
	if p.Verb == "write" {
		// perftest's write_lat signals every write and polls its
		// completion before the next.
		c.Write, c.CQMod = true, 1
		c.Send.Opcode = verbs.OpRDMAWrite
		c.Send.RemoteAddr, c.Send.RKey = r.remote.VAddr+uint64(r.half), r.remote.RKey
		c.Mark, c.MarkOff = r.mr, size-1
		c.Watch, c.WatchOff = r.mr, r.half+size-1
	} else {
		c.Send.Opcode = verbs.OpSend
		r.rsge[0] = r.mr.SGE(r.half, max(size, 1))
		c.Recv = verbs.RecvRequest{SG: r.rsge[:1]}
		c.RxBatch, c.RxPosted = len(r.rwr), min(p.RxDepth, p.Iters)
	}
	ll, err := r.qp.NewLatLoop(c)
	if err != nil {
		return 0, err
	}
	defer ll.Close()
	// Let the goroutines this run started (the peer watch) run and park
	// now, not during the first crossing, where a non-empty run queue
	// would make sysmon retake the P.
	runtime.Gosched()
	w := waiter{oob: r.oob}
	var st verbs.LatStatus
	for !st.Done {
		if st, err = ll.Run(r.rt.loopTicks); err != nil {
			return st.Sends, fmt.Errorf("rdmaperf: %w", err)
		}
		if r.hooks.Progress != nil {
			r.hooks.Progress.Store(int64(st.Sends))
		}
		r.rt.posted()
		if st.Progress {
			w.reset()
		} else if err := w.check(); err != nil {
			return st.Sends, err
		}
	}
	for i, s := range ll.Stamps()[:st.Sends] {
		posted[i] = clock.FromStamp(s)
	}
	return st.Sends, nil
}
