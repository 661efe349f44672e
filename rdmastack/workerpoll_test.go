package rdmastack

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/netstack"
)

// connectPair connects a socket of wc to ss and accepts it on ws; both are
// closed at the test's end.
func connectPair(t *testing.T, ss netstack.ServerSocket, ws, wc netstack.Worker) (sc, cc netstack.ConnectedSocket) {
	t.Helper()
	ccCh := make(chan netstack.ConnectedSocket, 1)
	go func() {
		c, err := wc.Connect(ss.Addr().String(), netstack.SocketOptions{})
		if err != nil {
			t.Error(err)
		}
		ccCh <- c
	}()
	sc = accept(t, ss, ws)
	t.Cleanup(func() { sc.Close() })
	cc = <-ccCh
	require.NotNil(t, cc)
	t.Cleanup(func() { cc.Close() })
	return sc, cc
}

// onCenter runs f on w's centre and waits for it.
func onCenter(t *testing.T, w netstack.Worker, f func()) {
	t.Helper()
	done := make(chan struct{})
	require.NoError(t, w.Center().DispatchExternal(func() { f(); close(done) }))
	<-done
}

// pinger answers every byte read on s with one byte, from s's read handler
// on its worker's centre until stop bytes were read (then it signals done;
// stop 0: it answers every byte); atMark (if set) runs once mark bytes were
// read.
func pinger(t *testing.T, w netstack.Worker, s netstack.ConnectedSocket, mark, stop int, atMark func(), done chan<- struct{}) {
	t.Helper()
	buf := make([]byte, 64)
	one := [][]byte{[]byte("p")}
	got := 0
	onCenter(t, w, func() {
		require.NoError(t, w.Center().CreateFileEvent(s.FD(), netstack.EventReadable, func(int, netstack.EventMask) {
			for {
				n, err := s.Read(buf)
				for range n {
					if got++; got == mark && atMark != nil {
						atMark()
					}
					if got == stop && done != nil {
						close(done)
					}
					if stop == 0 || got < stop {
						if _, err := s.Send(one, false); err != nil {
							t.Errorf("send: %v", err)
						}
					}
				}
				if n == 0 || err != nil {
					if err != nil && !errors.Is(err, netstack.ErrWouldBlock) {
						// closed at the test's end (EOF, ErrClosed)
						_ = w.Center().DeleteFileEvent(s.FD(), netstack.EventReadable)
					}
					return
				}
			}
		}))
	})
}

// TestWorkerModeRunToCompletion: in worker mode a ping-pong's receive
// completion reaches the socket's read handler, and the reply its post, on
// the worker's centre alone: the dispatcher goroutine is never woken per
// message, the handler runs inline after the poll and no eventfd is written
// (a Read that drains the socket leaves readiness as it was). In dispatcher mode the
// same exchange wakes the dispatcher and writes an eventfd per message.
func TestWorkerModeRunToCompletion(t *testing.T) {
	for _, mode := range []string{PollingWorker, PollingDispatcher} {
		t.Run(mode, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.RDMAPollingMode = mode
			srv, cli := startStack(t, cfg), startStack(t, cfg)
			ws, wc := srv.PickWorker(), cli.PickWorker()
			ss, err := ws.Listen("127.0.0.1:0", netstack.SocketOptions{})
			require.NoError(t, err)
			defer ss.Abort()
			sc, cc := connectPair(t, ss, ws, wc)

			// Warm up (the handshake's first data, connection state), then
			// count over the measured round trips.
			const warm, rounds = 10, 200
			cDone := make(chan struct{})
			var writes0, wakes0, fires0 uint64
			start := func() {
				writes0 = srv.readyWrites.Load() + cli.readyWrites.Load()
				wakes0 = srv.Stats().PollingOn + cli.Stats().PollingOn
				if mode == PollingWorker {
					fires0 = ws.(*Worker).poller.fires.Load() + wc.(*Worker).poller.fires.Load()
				}
			}
			pinger(t, ws, sc, 0, 0, nil, nil) // the server answers every byte
			pinger(t, wc, cc, warm, warm+rounds, start, cDone)
			// The client starts, by a byte sent from its centre.
			onCenter(t, wc, func() {
				_, err := cc.Send([][]byte{[]byte("p")}, false)
				require.NoError(t, err)
			})
			select {
			case <-cDone:
			case <-time.After(60 * time.Second):
				t.Fatal("ping-pong did not finish")
			}
			writes := srv.readyWrites.Load() + cli.readyWrites.Load() - writes0
			wakes := srv.Stats().PollingOn + cli.Stats().PollingOn - wakes0
			t.Logf("%s: %d eventfd writes, %d dispatcher wake-ups over ~%d messages", mode, writes, wakes, 2*rounds)
			if mode == PollingWorker {
				fires := ws.(*Worker).poller.fires.Load() + wc.(*Worker).poller.fires.Load() - fires0
				// The completions never leave the worker's centre: no
				// dispatcher wake-up, the read handler runs inline, and
				// the socket's eventfd is never written (the handler
				// reads every byte before readiness is synced, at unlock).
				require.Zero(t, wakes, "dispatcher wake-ups in worker mode")
				require.GreaterOrEqual(t, fires, uint64(rounds), "read handlers run inline")
				require.Zero(t, writes, "eventfd writes in worker mode")
			} else {
				require.Greater(t, writes, uint64(rounds), "dispatcher mode wakes the socket through its eventfd")
			}
		})
	}
}
