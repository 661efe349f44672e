// Package monclient owns the one client exchange the interop tests run
// against a real ceph-mon through the messenger, over either stack: an
// MMonGetVersion request answered by its reply, retried as Ceph's clients
// retry a monitor that is not ready yet. It is test support: it must not be
// imported by product code.
package monclient

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr"
)

// Ceph message types of the exchange.
const (
	MsgMonGetVersion      = 19 // CEPH_MSG_MON_GET_VERSION
	MsgMonGetVersionReply = 20 // CEPH_MSG_MON_GET_VERSION_REPLY
)

// GetVersionFront is MMonGetVersion's front: handle, then "osdmap".
func GetVersionFront(handle uint64) []byte {
	front := binary.LittleEndian.AppendUint64(nil, handle)
	front = binary.LittleEndian.AppendUint32(front, uint32(len("osdmap")))
	return append(front, "osdmap"...)
}

// GetVersion connects cli to the monitor at addr, sends MMonGetVersion and
// returns the reply, which got (fed by a dispatcher of cli) delivers. A
// monitor that has just formed its quorum closes connections at
// AUTH_REQUEST ("EBUSY"); a try that sees no reply within perTry marks the
// connection down and tries again, ten times at most. The reply's type and
// handle are checked; failures name the step.
func GetVersion(t *testing.T, cli *msgr.Messenger, got <-chan *msgr.Message, addr string, handle uint64, perTry time.Duration) *msgr.Message {
	t.Helper()
	var r *msgr.Message
	for attempt := 1; r == nil; attempt++ {
		c, err := cli.ConnectTo(msgr.EntityTypeMon, addr)
		require.NoError(t, err, "step: connect")
		require.NoError(t, c.SendMessage(&msgr.Message{Type: MsgMonGetVersion, Version: 1, Tid: 1, Front: GetVersionFront(handle)}))
		select {
		case r = <-got:
		case <-time.After(perTry):
			require.Less(t, attempt, 10, "step: session and MMonGetVersion (connection error: %v)", c.Err())
			c.MarkDown()
		}
	}
	require.Equal(t, uint16(MsgMonGetVersionReply), r.Type, "step: MMonGetVersionReply")
	require.Equal(t, handle, binary.LittleEndian.Uint64(r.Front), "step: reply handle")
	return r
}
