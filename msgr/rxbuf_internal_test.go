package msgr

import (
	"bytes"
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

func TestRxBufClasses(t *testing.T) {
	prev := 0
	for n := 1; n <= ownFrameStep; n += 509 {
		class, size := rxBufClass(n)
		require.GreaterOrEqual(t, size, n)
		require.Less(t, class, rxBufClasses)
		if n > ownFrameMin {
			require.LessOrEqual(t, size-n, size/4, "at most a quarter of slack for %d", n)
		}
		require.GreaterOrEqual(t, class, prev, "classes grow with the size")
		prev = class
	}
	for _, n := range []int{ownFrameMin, ownFrameMin + 1, 64 << 10, 64<<10 + 100, ownFrameStep} {
		class, size := rxBufClass(n)
		c2, s2 := rxBufClass(size)
		require.Equal(t, class, c2, "a class's own size stays in it (%d)", n)
		require.Equal(t, size, s2)
	}
}

// Big received messages released by the application lend their memory to
// the next ones (a stream of 64 KiB messages allocates a buffer once, not
// per message), each message's bytes are intact while it is held, and one
// never released costs only its own memory: the pool then makes buffers
// anew and counts them, and holds nothing the application dropped.
func TestReleasedMessagesRecycleStorage(t *testing.T) {
	for _, mode := range scriptedModes {
		t.Run(mode.name, func(t *testing.T) {
			c, enc := readyScripted(t, mode.setup)
			seq := uint64(1)
			frame := func(fill byte) []byte {
				seq++
				data := bytes.Repeat([]byte{fill}, 64<<10)
				return enc(nil, &msgr2.MsgHeader2{Seq: seq}, []byte("front"), nil, data)
			}
			filled := func(b []byte, fill byte) bool { // no allocation
				return len(b) == 64<<10 && bytes.Count(b, []byte{fill}) == len(b)
			}
			recvFrame := func(f []byte, fill byte) *Message {
				t.Helper()
				got := feedLocked(c, f, 4096)
				require.Equal(t, stReady, c.state, "%v", c.sh.err)
				require.Len(t, got, 1)
				m := got[0]
				require.Equal(t, "front", string(m.Front))
				require.True(t, filled(m.Data, fill), "message %d's data", fill)
				return m
			}
			recv := func(fill byte) *Message { t.Helper(); return recvFrame(frame(fill), fill) }
			st0 := c.msgr.RxBufStats()

			// Released: the same memory comes back for the next message.
			const n = 50
			var first unsafe.Pointer
			same := 0
			frames := make([][]byte, n)
			for i := range frames {
				frames[i] = frame(byte(i))
			}
			alloc := allocatedBy(func() {
				for i := range n {
					m := recvFrame(frames[i], byte(i))
					p := unsafe.Pointer(unsafe.SliceData(m.Data))
					if i == 0 {
						first = p
					} else if p == first {
						same++
					}
					m.Release()
					require.Nil(t, m.Data)
					m.Release() // again: nothing more
				}
			})
			st := c.msgr.RxBufStats()
			t.Logf("%d released 64 KiB messages: %d bytes allocated, %d reused in place, %+v", n, alloc, same, st)
			require.Equal(t, uint64(n), st.Released-st0.Released)
			// A GC may empty the pool now and then, and under -race
			// sync.Pool drops a quarter of what it is given: most buffers
			// must still have come back, and the bytes allocated are the
			// buffers counted as made new, plus small change per message.
			require.GreaterOrEqual(t, st.Reused-st0.Reused, uint64(n/2))
			_, size := rxBufClass(len(frames[0]))
			require.Less(t, alloc, (st.Allocated-st0.Allocated)*uint64(size)+n*2048, "no buffer per message")

			// Held and never released: each message keeps its own bytes.
			st0 = c.msgr.RxBufStats()
			held := make([]*Message, 8)
			for i := range held {
				held[i] = recv(byte(100 + i))
			}
			for i, m := range held {
				require.True(t, filled(m.Data, byte(100+i)), "held message %d intact", i)
			}
			st = c.msgr.RxBufStats()
			require.Equal(t, st0.Released, st.Released)
			require.Equal(t, uint64(len(held)), st.Reused-st0.Reused+st.Allocated-st0.Allocated)
			held = nil
			runtime.GC()
			runtime.GC() // twice: sync.Pool's victim cache too
			st0 = c.msgr.RxBufStats()
			recv(200)
			st = c.msgr.RxBufStats()
			require.Equal(t, uint64(1), st.Allocated-st0.Allocated, "dropped messages' memory went to the GC, not the pool")

			// A duplicate (a frame the session already has) is dropped and
			// its buffer goes straight back.
			st0 = c.msgr.RxBufStats()
			seq--
			got := feedLocked(c, frame(1), 4096)
			require.Empty(t, got)
			st = c.msgr.RxBufStats()
			require.Equal(t, uint64(1), st.Released-st0.Released)
		})
	}
}
