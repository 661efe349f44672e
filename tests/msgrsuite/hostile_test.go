package msgrsuite

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

// hostileRSSBound is the most the whole test process (server, legitimate
// client and every hostile peer's socket) may reach: well below 1 GiB
// although the peers announce frames adding up to hundreds of GiB. 256 MiB
// (measured: about 70 MiB), 512 MiB under the race detector (about 250).
func hostileRSSBound() uint64 {
	if raceEnabled {
		return 512 << 20
	}
	return 256 << 20
}

// TestPosixHostilePeers: one server messenger faces, all at once, 2000
// connections opened and left idle, a flood of short-lived garbage
// connections, unauthenticated peers announcing 4 x 511 MiB frames (and a
// 2 GiB segment) and sending nothing more, authenticated ones announcing
// messages and stalling, truncated frames (the peer then silent, or gone)
// and a peer trickling one byte per second. Meanwhile a legitimate client's
// round trips keep completing, the process's RSS stays under
// hostileRSSBound, and every bad peer is closed with a one-line error that
// names its cause.
func TestPosixHostilePeers(t *testing.T) {
	const (
		idlePeers = 2000
		floodFor  = 4 * time.Second
		// floodMax bounds the flood by count as well, so that what the
		// process holds does not depend on how fast this machine dials: a
		// quiet host flooded 21918 in 4 s (RSS 560 MiB under -race), a
		// loaded one 2300-5800.
		floodMax    = 6000
		announcers  = 40 // each kind of unauthenticated announcement
		truncated   = 40 // each kind of truncated frame
		tricklers   = 10
		authedStall = 8               // authenticated, announcing 8 MiB messages
		idleTimeout = 6 * time.Second // (the patterns below say 6s and 8s)
		readyTO     = 8 * time.Second
	)
	cfg := Config("posix")
	cfg.ConnectionIdleTimeout = idleTimeout
	cfg.KeepaliveInterval = time.Second
	cfg.ConnectionReadyTimeout = readyTO
	cfg.Logger = slog.New(slog.DiscardHandler) // thousands of faults; the resets say it all
	srvRec := newRecorder(true)
	srvRec.onMsg = func(m *msgr.Message) { _ = m.Conn.SendMessage(&msgr.Message{Type: 2, Front: m.Front}) }
	srv := newEndpoint(t, cfg, osdName(1), "127.0.0.1:0", false, srvRec)
	srv.m.SetPolicy(msgr.EntityTypeMDS, msgr.StatelessServer())
	require.NoError(t, srv.m.Start())

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	baseHeap, baseRSS := ms.HeapAlloc, rss()

	// The legitimate client: one round trip after the other, throughout.
	got := make(chan struct{}, 1)
	cliRec := newRecorder(true)
	cliRec.onMsg = func(*msgr.Message) { got <- struct{}{} }
	cli := newEndpoint(t, cfg, clientName(1), "", true, cliRec)
	good, err := cli.m.ConnectTo(msgr.EntityTypeOSD, srv.addr)
	require.NoError(t, err)
	stop := make(chan struct{})
	var trips atomic.Int64
	var worst atomic.Int64
	tripErr := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				tripErr <- nil
				return
			default:
			}
			t0 := time.Now()
			if err := good.SendMessage(&msgr.Message{Type: 1, Front: payload(3, uint64(i), 64)}); err != nil {
				tripErr <- err
				return
			}
			select {
			case <-got:
			case <-time.After(5 * time.Second):
				tripErr <- fmt.Errorf("round trip %d: no reply within 5 s", i)
				return
			}
			trips.Add(1)
			if d := int64(time.Since(t0)); d > worst.Load() {
				worst.Store(d)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	var peakRSS, peakHeap atomic.Uint64
	sampleDone := make(chan struct{})
	go func() {
		defer close(sampleDone)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peakHeap.Store(max(peakHeap.Load(), ms.HeapAlloc))
			peakRSS.Store(max(peakRSS.Load(), rss()))
		}
	}()

	var held []net.Conn // peers that stay connected until the server closes them
	var heldMu sync.Mutex
	var dialErrs atomic.Int64
	dial := func() net.Conn {
		for {
			c, err := net.Dial("tcp", srv.addr)
			if err == nil {
				return c
			}
			if dialErrs.Add(1) == 1 {
				t.Logf("dial (retried): %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	keep := func(c net.Conn) {
		heldMu.Lock()
		held = append(held, c)
		heldMu.Unlock()
	}
	t.Cleanup(func() {
		for _, c := range held {
			_ = c.Close()
		}
	})
	banner := msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0)
	hello := msgr2.AppendControlFrame(nil, &msgr2.Hello{EntityType: msgr.EntityTypeClient})
	mib := uint32(1 << 20)
	kinds := []struct {
		name  string
		n     int
		bytes []byte
		close bool   // the peer goes away after sending
		want  string // what the server's error for it says (a regexp)
	}{
		{"announces 4 x 511 MiB", announcers, cat(banner, msgr2.AppendPreamble(nil, msgr2.TagHello, 511*mib, 511*mib, 511*mib, 511*mib)), false,
			`not yet authenticated \(state hello; handshake frames are at most 65536 bytes\): msgr2: segment 0 length 535822336 exceeds limit 65536`},
		{"announces a 2 GiB segment", announcers, cat(banner, msgr2.AppendPreamble(nil, msgr2.TagAuthRequest, 1<<31)), false,
			`msgr2: segment 0 length 2147483648 exceeds limit 65536`},
		{"truncated frame, then silent", truncated, cat(banner, hello[:len(hello)-5]), false, stuckIn("hello")},
		{"truncated frame, then gone", truncated, cat(banner, hello[:len(hello)-5]), true,
			// gone before the server's HELLO, or after
			`send in state hello: .*(broken pipe|connection reset by peer)|peer closed the connection in state hello`},
		{"truncated preamble, then silent", truncated, cat(banner, hello[:20]), false, stuckIn("hello")},
		{"authenticated, announces an 8 MiB message and stalls", authedStall,
			cat(clientHandshake(msgr.EntityTypeMDS, 41, 0), msgr2.AppendPreamble(nil, msgr2.TagMessage, 41, 0, 0, 8*mib)), false,
			`\(idle timeout 6s\) in state ready: half a frame pending \(MESSAGE frame`},
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, k := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < k.n; i++ {
				c := dial()
				_, _ = c.Write(k.bytes)
				if k.close {
					_ = c.Close()
				} else {
					keep(c)
				}
			}
		}()
	}
	for range tricklers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial()
			keep(c)
			for i := 0; i < msgr2.BannerLen; i++ {
				if _, err := c.Write(banner[i : i+1]); err != nil {
					return // closed by the server
				}
				time.Sleep(time.Second)
			}
		}()
	}
	// 2000 connections opened and left idle.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < idlePeers; i++ {
			keep(dial())
		}
	}()
	// The flood: short-lived garbage connections, as fast as 4 dialers go.
	var flooded atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			junk := bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 4)
			for time.Since(start) < floodFor && flooded.Load() < floodMax {
				c := dial()
				_, _ = c.Write(junk)
				_ = c.Close()
				flooded.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("peers up after %v: %d idle, %d garbage connections flooded", time.Since(start).Round(time.Millisecond), idlePeers, flooded.Load())

	// Every bad peer is closed, each with its own cause.
	want := map[string]int{}
	for _, k := range kinds {
		want[k.want] += k.n
	}
	// The idle peers and the trickler are both stuck before the banner:
	// whichever of the idle timeout (for the silent ones) and the handshake
	// deadline comes first under load closes them, so they count together.
	want[stuckIn("banner")] += idlePeers + tricklers
	const garbage = "banner" // "bad banner", or a reset/EOF "in state banner"
	patterns := map[string]*regexp.Regexp{}
	for w := range want {
		patterns[w] = regexp.MustCompile(w)
	}
	counts := func() (map[string]int, []string) {
		seen := map[string]int{}
		var other []string
		for _, ev := range srvRec.resetList() {
			msg := ev.err.Error()
			if strings.Contains(msg, "\n") {
				other = append(other, "multi-line: "+msg)
				continue
			}
			matched := false
			for w := range want {
				if patterns[w].MatchString(msg) {
					seen[w]++
					matched = true
					break
				}
			}
			if !matched && strings.Contains(msg, garbage) {
				seen[garbage]++
				matched = true
			}
			if !matched {
				other = append(other, msg)
			}
		}
		return seen, other
	}
	allClosed := func(seen map[string]int) bool {
		for w, n := range want {
			if seen[w] < n {
				return false
			}
		}
		return seen[garbage] >= int(flooded.Load())
	}
	for deadline := time.Now().Add(2 * (readyTO + idleTimeout)); ; time.Sleep(200 * time.Millisecond) {
		if seen, _ := counts(); allClosed(seen) {
			break
		}
		if time.Now().After(deadline) {
			break // the counts below say which peers were not closed
		}
	}
	t.Logf("bad peers handled %v after the first was dialled", time.Since(start).Round(time.Millisecond))
	close(stop)
	require.NoError(t, <-tripErr)
	<-sampleDone
	seen, other := counts()
	for w, n := range want {
		t.Logf("closed %4d (of %4d) peers with ...%s", seen[w], n, w)
	}
	t.Logf("closed %4d (of %4d) garbage connections with an error about the banner", seen[garbage], flooded.Load())
	if len(other) > 0 {
		t.Logf("%d other errors, e.g. %q", len(other), other[0])
	}
	require.Empty(t, other, "every error names a known cause, on one line")
	require.True(t, allClosed(seen), "every bad peer closed with its cause")

	// Peers that wait to be closed see the server close them.
	heldMu.Lock()
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		r := bufio.NewReader(c)
		for {
			if _, err := r.ReadByte(); err != nil {
				require.NotContains(t, err.Error(), "timeout", "the server closed this peer")
				break
			}
		}
	}
	heldMu.Unlock()

	runtime.ReadMemStats(&ms)
	t.Logf("legitimate client: %d round trips, slowest %v, faults %d", trips.Load(), time.Duration(worst.Load()).Round(time.Millisecond), good.Stats().Faults)
	t.Logf("memory: RSS %.0f MiB at start, peak %.0f MiB (bound %d MiB); Go heap %.0f MiB at start, peak %.0f MiB, %.0f MiB now; %d goroutines",
		mb(baseRSS), mb(peakRSS.Load()), hostileRSSBound()>>20, mb(baseHeap), mb(peakHeap.Load()), mb(ms.HeapAlloc), runtime.NumGoroutine())
	require.Greater(t, trips.Load(), int64(100), "round trips kept completing")
	require.Zero(t, good.Stats().Faults)
	require.NotZero(t, baseRSS, "VmRSS read")
	require.Less(t, peakRSS.Load(), hostileRSSBound())
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// stuckIn is the pattern of the errors a silent peer stuck in a handshake
// state gets: the idle timeout (6s; with what it left half sent, if any)
// or the handshake deadline (8s), whichever fires first under the load.
func stuckIn(state string) string {
	return `\(idle timeout 6s\) in state ` + state + `\b|handshake not finished within 8s \(stuck in state ` + state + `\)`
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

// rss is the process's resident set size (VmRSS; 0 if unreadable).
func rss() uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
