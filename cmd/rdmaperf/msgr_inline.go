package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/clock"
	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/perf"
	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// pinger is msgr_lat's run-to-completion client (--msgr_loop=inline, the
// default): the pong's fast dispatch, on the worker goroutine that decoded
// it, records the time and sends the next ping, as the server's responder
// answers from its own fast dispatch. A round trip then runs on one
// goroutine per side, as perftest's loop runs on one thread, and measures
// the messenger rather than the Go scheduler's wake-up of a waiting
// goroutine (--msgr_loop=app measures that: the test loop sends and waits
// for each pong on a channel). The worker goroutine owns everything but n
// (read by the test loop) and done.
type pinger struct {
	conn     *msgr.Connection
	payload  []byte
	posted   []int64 // send times; nil in duration mode
	iters    int     // pongs to wait for (iterations mode)
	deadline int64   // clock time after which no ping is sent (duration mode)
	n        atomic.Int64
	err      error // set before done is closed
	done     chan struct{}
	progress *atomic.Int64
}

func newPinger(p *perf.Params, conn *msgr.Connection, size int, progress *atomic.Int64) *pinger {
	pg := &pinger{conn: conn, payload: make([]byte, size), iters: p.Iters, done: make(chan struct{}), progress: progress}
	if p.Duration == 0 {
		pg.posted = make([]int64, p.Iters)
	} else {
		pg.iters = int(^uint(0) >> 1)
	}
	return pg
}

// post records ping i's post time (iterations mode) and sends it, its
// number in the payload's first 8 bytes.
func (pg *pinger) post(i int) error {
	now := clock.Now()
	if pg.posted != nil {
		pg.posted[i] = now
	}
	if len(pg.payload) >= 8 {
		binary.LittleEndian.PutUint64(pg.payload, uint64(i))
	}
	return pg.conn.SendMessage(&msgr.Message{Type: msgPing, Tid: uint64(i), Data: pg.payload})
}

// send posts ping i from the inline loop (the test loop for the first,
// then the worker); an error ends the run.
func (pg *pinger) send(i int) {
	if err := pg.post(i); err != nil {
		pg.finish(err)
	}
}

// stats is the size's row after n pongs since start: the rate in duration
// mode, else the latencies from the post times.
func (pg *pinger) stats(p *perf.Params, size, n int, start int64) perf.LatResult {
	if pg.posted == nil {
		return perf.LatDurationStats(p.Test, size, n, clock.Now()-start, 2)
	}
	return perf.LatStats(p.Test, size, pg.posted, 2, nil)
}

// pong handles pong tid on the worker goroutine: the next ping, or the end.
func (pg *pinger) pong(tid uint64) {
	n := pg.n.Add(1)
	switch {
	case tid != uint64(n-1):
		pg.finish(fmt.Errorf("rdmaperf: pong %d arrived where %d was expected", tid, n-1))
	case int(n) >= pg.iters || (pg.posted == nil && clock.Now() >= pg.deadline):
		pg.finish(nil)
	default:
		if pg.progress != nil && n%256 == 0 {
			pg.progress.Store(n)
		}
		pg.send(int(n))
	}
}

func (pg *pinger) finish(err error) {
	pg.err = err
	close(pg.done)
}

// pingPongInline runs one size's ping-pong with rp handing pongs to a
// pinger; the test loop only watches that pongs keep coming.
func pingPongInline(ctx context.Context, p *perf.Params, conn *msgr.Connection, rp *replies, size int, progress *atomic.Int64) (perf.LatResult, int, error) {
	pg := newPinger(p, conn, size, progress)
	rp.inline.Store(pg)
	defer rp.inline.Store(nil)
	watch := time.NewTicker(msgrWait)
	defer watch.Stop()
	start := clock.Now()
	pg.deadline = start + int64(p.Duration)*1e9
	pg.send(0)
	seen := int64(-1)
	for {
		select {
		case <-pg.done:
			n := int(pg.n.Load())
			if pg.err != nil {
				return perf.LatResult{}, n, pg.err
			}
			return pg.stats(p, size, n, start), n, nil
		case err := <-rp.resets:
			return perf.LatResult{}, int(pg.n.Load()), resetError(err)
		case <-watch.C:
			if n := pg.n.Load(); n != seen {
				seen = n
				continue
			}
			return perf.LatResult{}, int(seen), errNoReply
		case <-ctx.Done():
			return perf.LatResult{}, int(pg.n.Load()), errStopped
		}
	}
}
