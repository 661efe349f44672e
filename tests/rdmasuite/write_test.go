package rdmasuite

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/tests/msgrsuite"
)

// writeMsgSize is the ms_async_rdma_send_msg_size the WRITE-mode runs use:
// below the suite's 32 KiB chunks, so frames of a few KiB go by SEND and
// larger ones by RDMA WRITE.
const writeMsgSize = 8 << 10

// TestMessengerSuiteWrite runs the messenger suite over rdma with RDMA
// WRITE of large payloads on (ms_async_rdma_send_msg_size on every
// messenger, servers and clients alike).
func TestMessengerSuiteWrite(t *testing.T) {
	dev, gid := device(t, "RXE_DEV_A")
	msgrsuite.Tweak = func(cfg *config.Config) {
		small(cfg, dev, gid)
		cfg.RDMASendMsgSize = writeMsgSize
	}
	// the large message at the short size in every mode: TestMessengerSuite
	// covers 64 MiB, this run the WRITE path under the same suite
	msgrsuite.LargeMessageMiB = largeShortMiB
	t.Cleanup(func() { msgrsuite.Tweak, msgrsuite.LargeMessageMiB = nil, 64 })
	repeatShort(t)
	start := time.Now()
	msgrsuite.Run(t, "rdma")
	t.Logf("messenger suite over rdma with ms_async_rdma_send_msg_size=%d (%s) took %v", writeMsgSize, dev, time.Since(start))
}

// TestNettestConnWrite is TestNettestConn in WRITE mode; the stack's
// counters show the WRITE path carried data and buffers were advertised
// again.
func TestNettestConnWrite(t *testing.T) {
	dev, gid := device(t, "RXE_DEV_A")
	s := newStack(t, dev, gid, func(cfg *config.Config) { cfg.RDMASendMsgSize = writeMsgSize })
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		c1, c2 := pipe(t, s, "127.0.0.1:0")
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
	// nettest writes in 1 KiB pieces (below the threshold): add a stream
	// of large writes, checked byte for byte
	c1, c2 := pipe(t, s, "127.0.0.1:0")
	defer c1.Close()
	defer c2.Close()
	want := make([]byte, 4<<20)
	for i := range want {
		want[i] = byte(i*31 + i>>12)
	}
	go func() {
		for b := want; len(b) > 0; {
			k := min(len(b), 48<<10)
			if _, err := c1.Write(b[:k]); err != nil {
				t.Error(err)
				return
			}
			b = b[k:]
		}
	}()
	got := make([]byte, len(want))
	require.NoError(t, c2.SetReadDeadline(time.Now().Add(60*time.Second)))
	_, err := io.ReadFull(c2, got)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "the stream differs")
	st := s.Stats()
	t.Logf("WRITE WRs %d, WRITE bytes %d of %d, adverts sent %d received %d, fallbacks %d",
		st.WriteWRs, st.WriteBytes, st.TXBytes, st.AdvertsSent, st.AdvertsRecv, st.WriteFallbacks)
	require.NotZero(t, st.WriteWRs, "the WRITE path was taken")
	require.NotZero(t, st.WriteBytes)
	require.NotZero(t, st.AdvertsRecv, "buffers were advertised again as they were read")
}
