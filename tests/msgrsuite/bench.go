package msgrsuite

// This file holds the benchmarks the stacks' test binaries run.

import (
	"os"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/stretchr/testify/require"
)

// BenchLatency measures a round trip of a size-byte message between two
// messengers (client sends, server echoes from its fast dispatcher).
func BenchLatency(b *testing.B, stack string, size int) {
	cfg := Config(stack)
	if v := os.Getenv("MSGRSUITE_OP_THREADS"); v != "" {
		cfg.OpThreads, _ = strconv.Atoi(v)
	}
	cfg.ConnectionIdleTimeout = 0
	cfg.KeepaliveInterval = 0
	srv := pongServer(b, cfg)
	cliRec := newRecorder(true)
	got := make(chan struct{}, 1)
	cliRec.onMsg = func(*msgr.Message) { got <- struct{}{} }
	cli := newEndpoint(b, cfg, clientName(1), "", true, cliRec)
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(b, err)
	p := make([]byte, size)
	for i := 0; i < 100; i++ { // warm up
		require.NoError(b, c.SendMessage(&msgr.Message{Type: 1, Front: p}))
		<-got
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.SendMessage(&msgr.Message{Type: 1, Front: p}); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}

// pongServer is the latency benchmarks' server: it answers every message
// with a type-2 message carrying the same front, from fast dispatch.
func pongServer(b *testing.B, cfg *config.Config) *endpoint {
	srvRec := newRecorder(true)
	srvRec.onMsg = func(m *msgr.Message) { _ = m.Conn.SendMessage(&msgr.Message{Type: 2, Front: m.Front}) }
	return newEndpoint(b, cfg, osdName(1), "127.0.0.1:0", true, srvRec)
}

// BenchLatencyInLoop is BenchLatency with the client sending each next
// ping from its fast-dispatch callback, on the messenger's event loop,
// instead of from a goroutine woken per reply: it measures the messenger's
// round trip without the application's goroutine hand-off.
func BenchLatencyInLoop(b *testing.B, stack string, size int) {
	cfg := Config(stack)
	cfg.ConnectionIdleTimeout = 0
	cfg.KeepaliveInterval = 0
	srv := pongServer(b, cfg)
	p := make([]byte, size)
	var left atomic.Int64
	done := make(chan error, 1)
	cliRec := newRecorder(true)
	cliRec.onMsg = func(m *msgr.Message) {
		if left.Add(-1) > 0 {
			if err := m.Conn.SendMessage(&msgr.Message{Type: 1, Front: p}); err != nil {
				done <- err
			}
			return
		}
		done <- nil
	}
	cli := newEndpoint(b, cfg, clientName(1), "", true, cliRec)
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(b, err)
	run := func(n int) {
		left.Store(int64(n))
		require.NoError(b, c.SendMessage(&msgr.Message{Type: 1, Front: p}))
		require.NoError(b, <-done)
	}
	run(100) // warm up
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	run(b.N)
}

// BenchThroughput streams size-byte messages from a client to a server with
// at most a window of them outstanding (released as the server receives).
func BenchThroughput(b *testing.B, stack string, size int) {
	cfg := Config(stack)
	cfg.ConnectionIdleTimeout = 0
	cfg.KeepaliveInterval = 0
	const window = 64
	sem := make(chan struct{}, window)
	srvRec := newRecorder(true)
	srvRec.onMsg = func(*msgr.Message) { <-sem }
	srv := newEndpoint(b, cfg, osdName(1), "127.0.0.1:0", true, srvRec)
	cli := newEndpoint(b, cfg, clientName(1), "", true, nil)
	c, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(b, err)
	p := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sem <- struct{}{}
		if err := c.SendMessage(&msgr.Message{Type: 1, Data: p}); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < window; i++ { // wait for the tail
		sem <- struct{}{}
	}
}
