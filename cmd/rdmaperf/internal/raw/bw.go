package raw

import (
	"errors"
	"fmt"
	"math"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/clock"
	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/perf"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// bwClient: perftest's run_iter_bw, with the WRs the window allows posted
// as one chain (one ibv_post_send) and completions polled up to 64 at a time.
// With -D the run ends at the deadline after a padding of WRs up to the next
// signaled one, so that every posted WR is accounted for.
func (r *res) bwClient(size int) (perf.BWResult, int, error) {
	p := r.p
	duration := p.Duration > 0
	iters := p.Iters
	noPeak := p.NoPeakBW()
	posted, completed := p.BWStamps()
	cqMod := max(1, min(p.CQMod, p.TxDepth))
	op := verbs.OpSend
	if p.Verb == "write" {
		op = verbs.OpRDMAWrite
	}
	sge := r.mr.SGE(0, size)
	base := r.baseFlags(size)
	for i := range r.swr {
		r.swr[i].Opcode = op
		r.swr[i].RemoteAddr = r.remote.VAddr + uint64(r.half)
		r.swr[i].RKey = r.remote.RKey
		r.sge[i] = sge
	}
	w := waiter{oob: r.oob}
	start := clock.Now()
	var deadline int64
	if duration {
		deadline = start + int64(p.Duration)*1e9
		iters = math.MaxInt
	}
	posted[0] = start
	scnt, ccnt := 0, 0
	for scnt < iters || ccnt < iters {
		if duration && iters == math.MaxInt && clock.Now() >= deadline {
			iters = scnt + (cqMod-scnt%cqMod)%cqMod
			continue
		}
		if n := min(p.TxDepth-(scnt-ccnt), iters-scnt); n > 0 {
			now := clock.Now()
			for k := range n {
				idx := scnt + k
				f := base
				if idx%cqMod == cqMod-1 || idx == iters-1 {
					f |= verbs.SendSignaled
				}
				r.swr[k].Flags = f
				if !noPeak {
					posted[idx] = now
				}
			}
			for k := 0; k < n; k += r.rt.postList {
				if _, err := r.qp.PostSend(r.swr[k:min(n, k+r.rt.postList)]); err != nil {
					return perf.BWResult{}, scnt, err
				}
			}
			scnt += n
			r.progressN(scnt)
			// With one P a yield wakes nobody and keeps sysmon from
			// preempting the loop (and taking its P in a crossing).
			r.rt.posted()
		}
		if ccnt >= scnt {
			continue
		}
		got, err := r.scq.Poll(r.wcs)
		if err != nil {
			return perf.BWResult{}, scnt, err
		}
		if got == 0 {
			if err := w.spin(); err != nil {
				return perf.BWResult{}, scnt, err
			}
			continue
		}
		w.reset()
		now := clock.Now()
		for i := range got {
			if r.wcs[i].Status != verbs.WCSuccess {
				return perf.BWResult{}, scnt, fmt.Errorf("rdmaperf: completion with error: %w", r.wcs[i].Err())
			}
			ccnt += cqMod
			if !noPeak {
				if ccnt > iters {
					completed[iters-1] = now
				} else {
					completed[ccnt-1] = now
				}
			}
		}
	}
	end := clock.Now()
	if noPeak {
		completed[0] = end
	}
	return perf.BWStats(p.Test, size, scnt, posted, completed, cqMod, noPeak, p.ReportGbits), scnt, nil
}

func (r *res) progressN(n int) {
	if r.hooks.Progress != nil {
		r.hooks.Progress.Store(int64(n))
	}
}

// bwServer: perftest's run_iter_bw_server for send_bw: receive completions
// in batches, repost receives in batches, time from the first receive.
func (r *res) bwServer(size int) (perf.BWResult, int, error) {
	p := r.p
	duration := p.Duration > 0
	iters := p.Iters
	w := waiter{oob: r.oob, stopOnDone: duration}
	rxBatch := len(r.rwr)
	rposted := min(p.RxDepth, iters)
	if duration {
		rposted = p.RxDepth
	}
	consumed, rcnt := 0, 0
	var start int64
	for duration || rcnt < iters {
		got, err := r.rcq.Poll(r.wcs)
		if err != nil {
			return perf.BWResult{}, rcnt, err
		}
		if got == 0 {
			if err := w.spin(); err != nil {
				if duration && errors.Is(err, errPeerGone) {
					rcnt += r.drain(r.rcq)
					break
				}
				return perf.BWResult{}, rcnt, err
			}
			continue
		}
		w.reset()
		if start == 0 {
			start = clock.Now()
		}
		for i := range got {
			if r.wcs[i].Status != verbs.WCSuccess {
				return perf.BWResult{}, rcnt, fmt.Errorf("rdmaperf: receive completion with error: %w", r.wcs[i].Err())
			}
		}
		rcnt += got
		consumed += got
		if consumed >= rxBatch && (duration || rposted < iters) {
			k := consumed
			if !duration {
				k = min(k, iters-rposted)
			}
			if err := r.postRecvs(size, k); err != nil {
				return perf.BWResult{}, rcnt, err
			}
			rposted += k
			consumed -= k
		}
		r.progressN(rcnt)
		r.rt.posted()
	}
	end := clock.Now()
	return perf.BWStats(p.Test, size, rcnt, []int64{start}, []int64{end}, 1, true, p.ReportGbits), rcnt, nil
}

// drain counts the completions still queued on cq.
func (r *res) drain(cq *verbs.CQ) int {
	total := 0
	for {
		n, err := cq.Poll(r.wcs)
		if err != nil || n == 0 {
			return total
		}
		total += n
	}
}
