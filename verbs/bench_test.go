//go:build linux && cgo

package verbs

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPollBatch measures one CQ.Poll crossing: on an empty CQ, and
// draining 32 ready completions in one call. Only the Poll calls are timed
// (by hand, since StopTimer/StartTimer read memstats, which is costly here).
func BenchmarkPollBatch(b *testing.B) {
	e := newEnv(b)
	dst := make([]WorkCompletion, 32)
	b.Run("empty", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.scq.Poll(dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("32ready", func(b *testing.B) {
		q := e.qp(b, QPInitAttr{MaxSendWR: 64})
		p := e.qp(b, QPInitAttr{})
		e.connect(b, q, p, nil)
		wrs := make([]WorkRequest, 32)
		for i := range wrs {
			wrs[i] = WorkRequest{ID: uint64(i), Opcode: OpRDMAWrite, Flags: SendSignaled,
				SG: []SGE{e.mr.SGE(0, 8)}, RemoteAddr: e.mr.Addr() + 4096, RKey: e.mr.RKey()}
		}
		var polled, calls int
		var spent time.Duration
		for b.Loop() {
			if _, err := q.PostSend(wrs); err != nil {
				b.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond) // let rxe complete the chain
			t0 := time.Now()
			for got := 0; got < len(wrs); {
				n, err := e.scq.Poll(dst[:len(wrs)-got])
				if err != nil {
					b.Fatal(err)
				}
				got += n
				calls++
			}
			spent += time.Since(t0)
			polled += len(wrs)
		}
		b.ReportMetric(float64(spent.Nanoseconds())/float64(calls), "ns/poll")
		b.ReportMetric(float64(spent.Nanoseconds())/float64(polled), "ns/WC")
		b.ReportMetric(float64(polled)/float64(calls), "WC/poll")
	})
}

// BenchmarkPostChainPerWR measures PostSend of a chain (one crossing, one
// rxe doorbell) and reports the cost per WR, for chains of 1 and 16 WRs:
// compare the two in one run. With rxe the doorbell syscall also runs the
// requester, so this includes the emulated device's send path.
func BenchmarkPostChainPerWR(b *testing.B) {
	e := newEnv(b)
	for _, chain := range []int{1, 16} {
		b.Run(fmt.Sprintf("chain=%d", chain), func(b *testing.B) {
			q := e.qp(b, QPInitAttr{MaxSendWR: 4 * chain})
			p := e.qp(b, QPInitAttr{})
			e.connect(b, q, p, nil)
			wrs := make([]WorkRequest, chain)
			for i := range wrs {
				wrs[i] = WorkRequest{ID: uint64(i), Opcode: OpRDMAWrite,
					SG: []SGE{e.mr.SGE(0, 8)}, RemoteAddr: e.mr.Addr() + 4096, RKey: e.mr.RKey()}
			}
			wrs[chain-1].Flags = SendSignaled // one completion per chain
			dst := make([]WorkCompletion, 4)
			b.ReportAllocs()
			var posted int
			var spent time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := q.PostSend(wrs); err != nil {
					b.Fatal(err)
				}
				spent += time.Since(t0)
				posted += chain
				for got := 0; got < 1; {
					n, err := e.scq.Poll(dst)
					if err != nil {
						b.Fatal(err)
					}
					if n > 0 && dst[0].Err() != nil {
						b.Fatal(dst[0].Err())
					}
					got += n
				}
			}
			b.ReportMetric(float64(spent.Nanoseconds())/float64(posted), "ns/WR")
		})
	}
}
