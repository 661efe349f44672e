package msgr

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

func TestOutQueueOrder(t *testing.T) {
	tests := []struct {
		name  string
		prios []uint16 // queued in this order; message i carries Tid i
		want  []uint64 // Tids in pop order
	}{
		{"empty", nil, nil},
		{"fifo one priority", []uint16{127, 127, 127}, []uint64{0, 1, 2}},
		{"higher first", []uint16{64, 196, 127, 255}, []uint64{3, 1, 2, 0}},
		{"fifo within each", []uint16{64, 196, 64, 196, 0, 127}, []uint64{1, 3, 4, 5, 0, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var q outQueue
			for i, p := range tc.prios {
				q.push(&Message{Priority: p, Tid: uint64(i)})
			}
			require.Equal(t, len(tc.prios), q.len())
			var got []uint64
			for m := q.pop(); m != nil; m = q.pop() {
				got = append(got, m.Tid)
			}
			require.Equal(t, tc.want, got)
			require.Zero(t, q.len())
		})
	}
}

func TestOutQueueInterleavedReuse(t *testing.T) {
	var q outQueue
	next := uint64(0)
	for round := 0; round < 3000; round++ {
		q.push(&Message{Priority: PrioDefault, Tid: uint64(round)})
		if round%3 != 0 {
			m := q.pop()
			require.Equal(t, next, m.Tid)
			next++
		}
	}
	for m := q.pop(); m != nil; m = q.pop() {
		require.Equal(t, next, m.Tid)
		next++
	}
	require.Equal(t, uint64(3000), next)
	require.Equal(t, 0, q.clear(nil))
}

func TestAuthNonePayload(t *testing.T) {
	m := &Messenger{name: msgr2.EntityName{Type: EntityTypeClient, Num: 4100}, authID: "admin"}
	m.gid.Store(0x1122)
	tests := []struct {
		name     string
		peerType uint8
		mode     byte
	}{
		{"to monitor", EntityTypeMon, authModeMon},
		{"to osd", EntityTypeOSD, authModeAuthorizer},
		{"unknown peer", 0, authModeAuthorizer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Connection{msgr: m, peerType: tc.peerType}
			got := c.authPayloadLocked()
			want := []byte{tc.mode, 8, 0, 0, 0, 5, 0, 0, 0, 'a', 'd', 'm', 'i', 'n'}
			want = binary.LittleEndian.AppendUint64(want, 0x1122)
			require.Equal(t, want, got)
			mode, typ, id, gid, err := parseAuthNonePayload(got)
			require.NoError(t, err)
			require.Equal(t, tc.mode, mode)
			require.Equal(t, uint32(EntityTypeClient), typ)
			require.Equal(t, "admin", id)
			require.Equal(t, uint64(0x1122), gid)
		})
	}
}

func TestParseAuthNonePayloadShort(t *testing.T) {
	for _, b := range [][]byte{nil, {1}, {1, 8, 0, 0, 0, 200, 0, 0, 0, 'x'}, {1, 8, 0, 0, 0, 0, 0, 0, 0, 1, 2}} {
		_, _, _, _, err := parseAuthNonePayload(b)
		require.ErrorIs(t, err, errShortPayload)
	}
}

func FuzzParseAuthNonePayload(f *testing.F) {
	f.Add([]byte{10, 8, 0, 0, 0, 1, 0, 0, 0, 'a', 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{1, 8, 0, 0, 0, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		mode, typ, id, gid, err := parseAuthNonePayload(b)
		if err != nil {
			return
		}
		// re-encode and compare with the consumed prefix
		out := []byte{mode}
		out = binary.LittleEndian.AppendUint32(out, typ)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(id)))
		out = append(out, id...)
		out = binary.LittleEndian.AppendUint64(out, gid)
		if string(out) != string(b[:len(out)]) {
			t.Fatalf("round trip mismatch: %x vs %x", out, b)
		}
	})
}

func TestRequeueAndDiscard(t *testing.T) {
	c := &Connection{}
	for i := 1; i <= 5; i++ {
		c.sent = append(c.sent, &Message{Seq: uint64(i)})
	}
	c.outSeq = 5
	c.resend = []*Message{{Seq: 0, Tid: 99}}
	c.requeueSentLocked()
	require.Equal(t, uint64(0), c.outSeq)
	require.Len(t, c.resend, 6)
	c.discardRequeuedUpToLocked(3) // the peer has 1..3
	require.Equal(t, uint64(3), c.outSeq)
	require.Len(t, c.resend, 3)
	require.Equal(t, uint64(4), c.resend[0].Seq)
	c.handleAckLocked(0)
	require.Empty(t, c.sent)
}

func TestHandleAckTrims(t *testing.T) {
	c := &Connection{}
	for i := 1; i <= 4; i++ {
		c.sent = append(c.sent, &Message{Seq: uint64(i)})
	}
	c.handleAckLocked(2)
	require.Len(t, c.sent, 2)
	require.Equal(t, uint64(3), c.sent[0].Seq)
	c.handleAckLocked(10)
	require.Empty(t, c.sent)
	c.policy.Lossy = true
	c.sent = append(c.sent, &Message{Seq: 11})
	c.handleAckLocked(11) // lossy sessions keep no sent list; nothing trimmed
	require.Len(t, c.sent, 1)
}
