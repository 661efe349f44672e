package msgrsuite

import (
	"io"
	"net"
	"testing"

	"github.com/asyncmsgr/asyncmsgr/internal/lockorder"
	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	_ "github.com/asyncmsgr/asyncmsgr/posixfallback" // registers "posix"
)

// The suite runs with msgr's lock-order checker on (msgr/lockorder.go); the
// benchmarks without.
func TestPosix(t *testing.T) {
	lockorder.Enable()
	t.Cleanup(lockorder.Disable)
	Run(t, "posix")
}

// TestPosixSlowConsumerGiB: a sender pushes 1 GiB to a dispatcher that
// sleeps 10 ms per message (issue 11): the receiver's heap stays under the
// throttle plus a fixed margin, the sender is held back, every message
// arrives.
func TestPosixSlowConsumerGiB(t *testing.T) { SlowConsumerBigMessages(t, "posix", 1024) }

func BenchmarkMessengerLatency2B(b *testing.B)           { BenchLatency(b, "posix", 2) }
func BenchmarkMessengerLatency2BInLoop(b *testing.B)     { BenchLatencyInLoop(b, "posix", 2) }
func BenchmarkMessengerThroughput64K(b *testing.B)       { BenchThroughput(b, "posix", 64<<10) }
func BenchmarkPlainNetConnLatency2B(b *testing.B)        { plainLatency(b, 2) }
func BenchmarkPlainNetConnLatency2BHandoff(b *testing.B) { plainLatencyHandoff(b, 2) }
func BenchmarkPlainNetConnThroughput64K(b *testing.B)    { plainThroughput(b, 64<<10) }

// echo writes back every size bytes it reads from c, until c fails.
func echo(c net.Conn, size int) {
	buf := make([]byte, size)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// plainLatency: ping-pong of size bytes, the server echoing from its own
// goroutine.
func plainLatency(b *testing.B, size int) {
	cli, srv := testenv.TCPPair(b)
	go echo(srv, size)
	reply := make([]byte, size)
	writeLoop(b, cli, size, func() error {
		_, err := io.ReadFull(cli, reply)
		return err
	})
}

// writeLoop writes size bytes b.N times on cli, each write followed by
// wait (nil: none), and fails b on an error.
func writeLoop(b *testing.B, cli net.Conn, size int, wait func() error) {
	buf := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := cli.Write(buf); err != nil {
			b.Fatal(err)
		}
		if wait != nil {
			if err := wait(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// plainLatencyHandoff is plainLatency with the client's replies read by
// a reader goroutine that hands each to the sending goroutine through a
// channel: the application structure of BenchLatency.
func plainLatencyHandoff(b *testing.B, size int) {
	cli, srv := testenv.TCPPair(b)
	go echo(srv, size)
	got := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(cli, buf); err != nil {
				return
			}
			got <- struct{}{}
		}
	}()
	writeLoop(b, cli, size, func() error {
		<-got
		return nil
	})
}

// plainThroughput streams size-byte writes; the server reads them all and
// says when it has.
func plainThroughput(b *testing.B, size int) {
	cli, srv := testenv.TCPPair(b)
	total := int64(size) * int64(b.N)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.CopyN(io.Discard, srv, total)
	}()
	writeLoop(b, cli, size, nil)
	<-done
}

// TestPosixCephXSecure runs the suite again with cephx required everywhere
// and secure mode (AES-GCM records) on every session: every entity the suite
// makes (client.admin, osd.N) is in the keyring.
func TestPosixCephXSecure(t *testing.T) {
	Tweak = CephXSecure(SecureKeyring(t))
	t.Cleanup(func() { Tweak = nil })
	RunAuthenticated(t, "posix")
}

// The secure-mode cost (issue 10): the same benchmarks with cephx and every
// session in secure mode (AES-128-GCM), beside the crc ones above.
func BenchmarkMessengerLatency2BSecure(b *testing.B) {
	withSecure(b, func() { BenchLatency(b, "posix", 2) })
}
func BenchmarkMessengerThroughput64KSecure(b *testing.B) {
	withSecure(b, func() { BenchThroughput(b, "posix", 64<<10) })
}

func withSecure(b *testing.B, run func()) {
	Tweak = CephXSecure(SecureKeyring(b))
	defer func() { Tweak = nil }()
	run()
}
