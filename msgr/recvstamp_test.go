package msgr_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// stampRecorder hands each fast-dispatched message's RecvStamp over with
// the time its dispatch began.
type stampRecorder struct {
	msgr.BaseDispatcher
	got chan [2]time.Time
}

func (r *stampRecorder) CanFastDispatch(*msgr.Message) bool { return true }
func (r *stampRecorder) FastDispatch(m *msgr.Message) {
	r.got <- [2]time.Time{m.RecvStamp, time.Now()}
}

// TestRecvStamp: a received message's RecvStamp (one clock read, see
// internal/monoclock) lies between its send and its dispatch, on the
// monotonic clock and, to the process's start skew, on the wall clock.
func TestRecvStamp(t *testing.T) {
	rec := &stampRecorder{got: make(chan [2]time.Time, 1)}
	srv := startMessenger(t, nil, osd1, true, rec)
	cli := startMessenger(t, nil, client2, false)
	c, err := cli.Connect(srv.Addr().String())
	require.NoError(t, err)
	for i := 0; i < 20; i++ {
		sent := time.Now()
		require.NoError(t, c.SendMessage(&msgr.Message{Type: 1, Front: []byte("stamp")}))
		var st [2]time.Time
		select {
		case st = <-rec.got:
		case <-time.After(10 * time.Second):
			t.Fatal("no message dispatched in 10 s")
		}
		stamp, dispatched := st[0], st[1]
		require.False(t, stamp.Before(sent), "RecvStamp %v before the send %v", stamp, sent)
		require.False(t, dispatched.Before(stamp), "dispatch %v before RecvStamp %v", dispatched, stamp)
		wall := stamp.Round(0)
		require.WithinRange(t, wall, sent.Round(0).Add(-time.Millisecond), dispatched.Round(0).Add(time.Millisecond))
	}
}
