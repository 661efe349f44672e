//go:build linux && cgo

package verbs

import (
	"testing"
	"time"
)

// BenchmarkPollBatch measures one CQ.Poll crossing: on an empty CQ, and
// draining 32 ready completions in one call.
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
		b.ReportAllocs()
		polled, calls := 0, 0
		for b.Loop() {
			b.StopTimer()
			if _, err := q.PostSend(wrs); err != nil {
				b.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond) // let rxe complete the chain
			b.StartTimer()
			for got := 0; got < len(wrs); {
				n, err := e.scq.Poll(dst[:len(wrs)-got])
				if err != nil {
					b.Fatal(err)
				}
				got += n
				calls++
			}
			polled += len(wrs)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(polled), "ns/WC")
		b.ReportMetric(float64(polled)/float64(calls), "WC/poll")
	})
}

// BenchmarkPostChainPerWR measures PostSend of a 16-WR chain (one crossing,
// one doorbell) and reports the cost per WR.
func BenchmarkPostChainPerWR(b *testing.B) {
	e := newEnv(b)
	const chain = 16
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
	posted := 0
	for b.Loop() {
		if _, err := q.PostSend(wrs); err != nil {
			b.Fatal(err)
		}
		posted += chain
		b.StopTimer()
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
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(posted), "ns/WR")
}
