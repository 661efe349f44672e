package rdmastack

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/netstack"
)

func TestExtRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ext  Ext
	}{
		{"one buffer", Ext{Threshold: 1, Slots: []ExtSlot{{Addr: 0x1000, RKey: 7, Len: 1}}}},
		{"eight buffers", Ext{Threshold: 65536, Slots: func() []ExtSlot {
			s := make([]ExtSlot, 8)
			for i := range s {
				s[i] = ExtSlot{Addr: 0x7f0000000000 + uint64(i)<<20, RKey: 0xdeadbeef, Len: 1 << 20}
			}
			return s
		}()}},
		{"max", Ext{Threshold: 1<<32 - 1, Slots: make64(writeMaxSlot)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.ext.Marshal()
			require.Len(t, b, extHeaderLen+extSlotLen*len(tc.ext.Slots))
			require.Equal(t, ExtMagic, string(b[:4]))
			got, err := ParseExt(b)
			require.NoError(t, err)
			require.Equal(t, tc.ext, got)
			require.True(t, extMismatchIn(b))
		})
	}
}

func make64(n uint32) []ExtSlot {
	s := make([]ExtSlot, ExtMaxSlots)
	for i := range s {
		s[i] = ExtSlot{Addr: uint64(i), RKey: uint32(i), Len: n}
	}
	return s
}

func TestParseExtRejects(t *testing.T) {
	good := Ext{Threshold: 100, Slots: []ExtSlot{{Addr: 1, RKey: 2, Len: 3}}}.Marshal()
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "0 bytes"},
		{"a ceph meta", func() []byte { m := Meta{QPN: 1}.Marshal(); return m[:] }(), "magic"},
		{"version", mod(func(b []byte) []byte { b[4] = 2; return b }), "version 2"},
		{"no buffers", mod(func(b []byte) []byte { b[5] = 0; return b[:extHeaderLen] }), "0 buffers"},
		{"too many buffers", mod(func(b []byte) []byte { b[5] = ExtMaxSlots + 1; return b }), "65 buffers"},
		{"reserved", mod(func(b []byte) []byte { b[7] = 1; return b }), "reserved"},
		{"threshold 0", mod(func(b []byte) []byte { b[8], b[9], b[10], b[11] = 0, 0, 0, 0; return b }), "threshold 0"},
		{"truncated", good[:len(good)-1], "27 bytes for 1 buffers"},
		{"trailing", append(append([]byte(nil), good...), 0), "29 bytes for 1 buffers"},
		{"empty buffer", mod(func(b []byte) []byte { b[len(b)-1] = 0; b[len(b)-2] = 0; return b }), "buffer 0 of 0 bytes"},
		{"huge buffer", mod(func(b []byte) []byte { b[len(b)-4] = 1; return b }), "buffer 0 of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseExt(tc.b)
			require.ErrorIs(t, err, ErrBadExt)
			require.ErrorContains(t, err, tc.want)
		})
	}
	m := Meta{QPN: 1}.Marshal()
	require.False(t, extMismatchIn(m[:]), "a Ceph meta is not an extension record")
	require.False(t, extMismatchIn(nil))
}

func FuzzParseExt(f *testing.F) {
	f.Add(Ext{Threshold: 100, Slots: []ExtSlot{{Addr: 1, RKey: 2, Len: 3}}}.Marshal())
	f.Add([]byte(ExtMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseExt(b)
		if err != nil {
			require.ErrorIs(t, err, ErrBadExt)
			return
		}
		require.Equal(t, b, e.Marshal(), "a record that parses re-encodes to the same bytes")
	})
}

func TestImmEncoding(t *testing.T) {
	for _, tc := range []struct{ slot, n int }{{0, 1}, {7, 1 << 20}, {255, writeMaxSlot}, {3, immLenMask}} {
		w := immWrite(tc.slot, tc.n)
		require.Equal(t, uint32(immKindWrite), immKind(w))
		require.Equal(t, tc.slot, immSlot(w))
		require.Equal(t, tc.n, immLen(w))
		a := immAdv(tc.slot)
		require.Equal(t, uint32(immKindAdv), immKind(a))
		require.Equal(t, tc.slot, immSlot(a))
		require.Zero(t, immLen(a))
	}
}

// pairOn connects a client of cli to a listener of srv.
func pairOn(t *testing.T, srv, cli *Stack) (sc, cc netstack.ConnectedSocket) {
	t.Helper()
	w := srv.PickWorker()
	ss, err := w.Listen("127.0.0.1:0", netstack.SocketOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ss.Abort() })
	return connectPair(t, ss, w, cli.PickWorker())
}

// writeSizes is a mix of sizes around threshold T (tiny, just below, at and
// just above it, several chunks, multi-MiB) in a shuffled order.
func writeSizes(seed uint64, T, chunk int) []int {
	sizes := []int{1, 2, 17, T - 1, T, T + 1, T + 2, 3 * chunk, 3*chunk + 5, 8 * chunk, 8*chunk + 1, 2 << 20, 3<<20 + 7, 100, T + 1}
	r := rand.New(rand.NewPCG(seed, 1))
	r.Shuffle(len(sizes), func(i, j int) { sizes[i], sizes[j] = sizes[j], sizes[i] })
	return sizes
}

func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// TestWriteModeStream: with ms_async_rdma_send_msg_size on both sides, a
// stream of mixed sizes flows both ways at once, byte for byte; the WRITE
// counters show the WRITE path carried the large payloads and that the
// receive buffers were advertised again as they were read.
func TestWriteModeStream(t *testing.T) {
	cfg := testConfig(t)
	cfg.RDMASendMsgSize = 4096
	srv := startStack(t, cfg)
	ccfg := *cfg
	cli := startStack(t, &ccfg)
	sc, cc := pairOn(t, srv, cli)
	slot := min(writeSlotChunks*cfg.RDMABufferSize, writeMaxSlot)

	type dir struct {
		name     string
		from, to netstack.ConnectedSocket
		stack    *Stack
		seed     uint64
	}
	dirs := []dir{{"client to server", cc, sc, cli, 1}, {"server to client", sc, cc, srv, 2}}
	var wg sync.WaitGroup
	results := make([][]byte, len(dirs))
	wants := make([][]byte, len(dirs))
	for i, d := range dirs {
		var want []byte
		var msgs [][]byte
		for j, n := range writeSizes(d.seed, cfg.RDMASendMsgSize, cfg.RDMABufferSize) {
			m := pattern(byte(j)+byte(10*i), n)
			msgs = append(msgs, m)
			want = append(want, m...)
		}
		wants[i] = want
		wg.Add(2)
		go func() {
			defer wg.Done()
			for _, m := range msgs {
				sendAll(t, d.from, m)
			}
		}()
		go func() {
			defer wg.Done()
			got, err := readUntil(t, d.to, len(want), 120*time.Second)
			if err != nil {
				t.Errorf("%s: %v", d.name, err)
			}
			results[i] = got
		}()
	}
	wg.Wait()
	for i, d := range dirs {
		require.Equal(t, len(wants[i]), len(results[i]), d.name)
		require.True(t, bytes.Equal(wants[i], results[i]), "%s: the stream differs", d.name)
		st := d.stack.Stats()
		t.Logf("%s: %d bytes; sender WRITE WRs %d, WRITE bytes %d, adverts sent %d received %d, fallbacks %d, WRs %d",
			d.name, len(wants[i]), st.WriteWRs, st.WriteBytes, st.AdvertsSent, st.AdvertsRecv, st.WriteFallbacks, st.PostedWRs)
		require.NotZero(t, st.WriteWRs, "%s: the WRITE path was taken", d.name)
		require.Greater(t, st.WriteBytes, uint64(writeSlots*slot), "%s: more bytes by WRITE than the buffers hold: they were advertised again", d.name)
		require.Greater(t, st.AdvertsRecv, uint64(writeSlots), "%s: re-advertisements arrived", d.name)
		require.Greater(t, st.AdvertsSent, uint64(writeSlots), "%s: re-advertisements went out", d.name)
		require.Less(t, st.WriteBytes, st.TXBytes, "%s: small payloads went by SEND", d.name)
	}
}

// TestWriteModeFallback: a reader that does not read keeps every advertised
// buffer full; further large sends go by SEND (counted), nothing is
// dropped and the order holds; once read, the buffers are advertised again
// and WRITE resumes.
func TestWriteModeFallback(t *testing.T) {
	cfg := testConfig(t)
	cfg.RDMASendMsgSize = 4096
	cfg.RDMASendBuffers = 128
	cfg.RDMAReceiveQueueLen = 128
	srv := startStack(t, cfg)
	ccfg := *cfg
	cli := startStack(t, &ccfg)
	sc, cc := pairOn(t, srv, cli)
	const msgs = writeSlots + 4
	var want []byte
	for i := 0; i < msgs; i++ {
		m := pattern(byte(i), 40<<10) // one buffer each
		want = append(want, m...)
		sendAll(t, cc, m)
	}
	st := cli.Stats()
	t.Logf("before reading: WRITE WRs %d, fallbacks %d, adverts received %d", st.WriteWRs, st.WriteFallbacks, st.AdvertsRecv)
	require.Equal(t, uint64(msgs-writeSlots), st.WriteFallbacks, "every send after the %d buffers filled fell back to SEND", writeSlots)
	require.NotZero(t, st.WriteWRs)
	got, err := readUntil(t, sc, len(want), 60*time.Second)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "the stream differs")

	// read: the buffers come back, WRITE resumes
	testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("the %d buffers to be advertised again", writeSlots), func() bool { return cli.Stats().AdvertsRecv >= 2*writeSlots }, nil)
	before := cli.Stats()
	m := pattern(99, 40<<10)
	sendAll(t, cc, m)
	got, err = readUntil(t, sc, len(m), 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, m, got)
	after := cli.Stats()
	require.Greater(t, after.WriteWRs, before.WriteWRs, "WRITE resumed")
	require.Equal(t, before.WriteFallbacks, after.WriteFallbacks)
}

// TestWriteModeMismatch: one side on, the other off. The side that can tell
// fails with an error naming the option; the other fails too (within the
// handshake timeout), and nothing is delivered as data.
func TestWriteModeMismatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		srv, cli int
	}{
		{"server on, client off", 4096, 0},
		{"server off, client on", 0, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.RDMASendMsgSize = tc.srv
			srv := startStack(t, cfg)
			ccfg := *cfg
			ccfg.RDMASendMsgSize = tc.cli
			cli := startStack(t, &ccfg)
			w := srv.PickWorker()
			ss, err := w.Listen("127.0.0.1:0", netstack.SocketOptions{})
			require.NoError(t, err)
			defer ss.Abort()
			type res struct {
				c   netstack.ConnectedSocket
				err error
			}
			done := make(chan res, 1)
			go func() {
				c, err := cli.PickWorker().Connect(ss.Addr().String(), netstack.SocketOptions{})
				done <- res{c, err}
			}()
			sc := accept(t, ss, w)
			got, err := readUntil(t, sc, 0, 3*cfg.ConnectionReadyTimeout+10*time.Second)
			require.Error(t, err, "server")
			require.Empty(t, got)
			t.Logf("server: %v", err)
			require.ErrorIs(t, err, net.ErrClosed)
			if tc.srv == 0 {
				require.ErrorContains(t, err, "ms_async_rdma_send_msg_size = 0 here")
			} else {
				require.ErrorContains(t, err, "ms_async_rdma_send_msg_size")
			}
			var r res
			if tc.cli == 0 {
				// the client connected; its side channel shows the record
				r = <-done
				require.NoError(t, r.err)
				got, err := readUntil(t, r.c, 0, 3*cfg.ConnectionReadyTimeout+10*time.Second)
				require.Error(t, err, "client")
				require.Empty(t, got)
				t.Logf("client: %v", err)
				require.ErrorContains(t, err, "ms_async_rdma_send_msg_size = 0 here")
				require.NoError(t, r.c.Close())
			}
			require.NoError(t, sc.Close())
			if tc.cli != 0 {
				// the client's handshake fails once the server closed
				r = <-done
				require.Error(t, r.err)
				t.Logf("client: %v", r.err)
				require.ErrorContains(t, r.err, "ms_async_rdma_send_msg_size = 4096 here")
			}
		})
	}
}
