// Package monclient owns the client exchanges the interop tests run against
// a real ceph-mon through the messenger, over either stack: an
// MMonGetVersion request answered by its reply, and an MMonCommand answered
// by its MMonCommandAck, each retried as Ceph's clients retry a monitor that
// is not ready yet. It is test support: it must not be imported by product
// code.
package monclient

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/tests/cephmon"
)

// Ceph message types of the exchanges.
const (
	MsgMonGetVersion      = 19 // CEPH_MSG_MON_GET_VERSION
	MsgMonGetVersionReply = 20 // CEPH_MSG_MON_GET_VERSION_REPLY
	MsgMonCommand         = 50 // MSG_MON_COMMAND
	MsgMonCommandAck      = 51 // MSG_MON_COMMAND_ACK
)

// GetVersionFront is MMonGetVersion's front: handle, then "osdmap".
func GetVersionFront(handle uint64) []byte {
	front := binary.LittleEndian.AppendUint64(nil, handle)
	front = binary.LittleEndian.AppendUint32(front, uint32(len("osdmap")))
	return append(front, "osdmap"...)
}

// GetVersion connects cli to the monitor at addr, sends MMonGetVersion and
// returns the reply, which got (fed by a dispatcher of cli) delivers, as
// exchange does. The reply's handle is checked; failures name the step.
func GetVersion(t *testing.T, cli *msgr.Messenger, got <-chan *msgr.Message, addr string, handle uint64, perTry time.Duration) *msgr.Message {
	t.Helper()
	r := exchange(t, cli, got, addr, "MMonGetVersion",
		&msgr.Message{Type: MsgMonGetVersion, Version: 1, Tid: 1, Front: GetVersionFront(handle)}, MsgMonGetVersionReply, perTry)
	require.Equal(t, handle, binary.LittleEndian.Uint64(r.Front), "step: MMonGetVersionReply handle")
	return r
}

// exchange connects cli to the monitor at addr, sends m and returns the
// first message of type want that got delivers. A monitor that has just
// formed its quorum closes connections at AUTH_REQUEST ("EBUSY"); a try
// that sees no reply within perTry marks the connection down and sends m
// again on a new session, ten tries at most. Messages of other types are
// passed over. Failures name the step.
func exchange(t *testing.T, cli *msgr.Messenger, got <-chan *msgr.Message, addr, step string, m *msgr.Message, want uint16, perTry time.Duration) *msgr.Message {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, err := cli.ConnectTo(msgr.EntityTypeMon, addr)
		require.NoError(t, err, "step: connect")
		// A Message belongs to the messenger once sent: each try sends a copy.
		cp := *m
		require.NoError(t, c.SendMessage(&cp), "step: send %s", step)
		if r := await(t, got, want, perTry, step); r != nil {
			return r
		}
		require.Less(t, attempt, 10, "step: session and %s answered (connection error: %v)", step, c.Err())
		c.MarkDown()
	}
}

// await returns the first message of type want that got delivers within
// limit, or nil.
func await(t *testing.T, got <-chan *msgr.Message, want uint16, limit time.Duration, step string) *msgr.Message {
	t.Helper()
	timeout := time.After(limit)
	for {
		select {
		case r := <-got:
			if r.Type == want {
				return r
			}
			t.Logf("step: %s: passing over message type %d", step, r.Type)
		case <-timeout:
			return nil
		}
	}
}

// Command sends the JSON command cmd as an MMonCommand for the cluster fsid
// (a monitor refuses another cluster's fsid with EPERM) to the monitor at
// addr, as exchange does, and returns its MMonCommandAck and the command's
// output (the message's data segment). The ack's tid and command are
// checked, and its r must be 0; failures name the step.
func Command(t *testing.T, cli *msgr.Messenger, got <-chan *msgr.Message, addr, fsid, cmd string, tid uint64, perTry time.Duration) (CommandAck, []byte) {
	t.Helper()
	front, err := CommandFront(fsid, cmd)
	require.NoError(t, err, "step: encode MMonCommand")
	r := exchange(t, cli, got, addr, "MMonCommand",
		&msgr.Message{Type: MsgMonCommand, Version: 1, Tid: tid, Front: front}, MsgMonCommandAck, perTry)
	require.Equal(t, tid, r.Tid, "step: MMonCommandAck tid")
	ack, err := ParseCommandAck(r.Front)
	require.NoError(t, err, "step: decode MMonCommandAck")
	require.Equal(t, []string{cmd}, ack.Cmd, "step: MMonCommandAck echoes the command")
	require.Zero(t, ack.R, "step: MMonCommandAck rc (rs %q)", ack.RS)
	return ack, r.Data
}

// paxosHeader is PaxosServiceMessage's encoding for version 0: version
// (u64), deprecated_session_mon (s16, -1) and deprecated_session_mon_tid
// (u64, 0).
func paxosHeader(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, 0)
	b = binary.LittleEndian.AppendUint16(b, 0xffff)
	return binary.LittleEndian.AppendUint64(b, 0)
}

const paxosHeaderLen = 8 + 2 + 8

// CommandFront is MMonCommand's front: the PaxosServiceMessage header, the
// fsid (a uuid, its 16 bytes raw) and the command as a vector<string> of
// one element.
func CommandFront(fsid string, cmd string) ([]byte, error) {
	id, err := hex.DecodeString(strings.ReplaceAll(fsid, "-", ""))
	if err != nil || len(id) != 16 {
		return nil, fmt.Errorf("fsid %q is not a uuid", fsid)
	}
	b := append(paxosHeader(nil), id...)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(cmd)))
	return append(b, cmd...), nil
}

// CommandAck is a decoded MMonCommandAck front.
type CommandAck struct {
	Version uint64   // the PaxosServiceMessage version
	R       int32    // the command's result, 0 or a negative errno
	RS      string   // its status string
	Cmd     []string // the command it answers
}

var errShort = errors.New("MMonCommandAck: short front")

// ParseCommandAck decodes MMonCommandAck's front: the PaxosServiceMessage
// header, r (errorcode32_t, an s32), rs (string) and cmd (vector<string>).
func ParseCommandAck(front []byte) (CommandAck, error) {
	var a CommandAck
	if len(front) < paxosHeaderLen+4 {
		return a, errShort
	}
	a.Version = binary.LittleEndian.Uint64(front)
	p := front[paxosHeaderLen:]
	a.R = int32(binary.LittleEndian.Uint32(p))
	p = p[4:]
	var err error
	if a.RS, p, err = str(p); err != nil {
		return a, err
	}
	if len(p) < 4 {
		return a, errShort
	}
	n := binary.LittleEndian.Uint32(p)
	p = p[4:]
	if uint64(n) > uint64(len(p))/4 {
		return a, fmt.Errorf("MMonCommandAck: %d strings in %d bytes", n, len(p))
	}
	for i := uint32(0); i < n; i++ {
		var s string
		if s, p, err = str(p); err != nil {
			return a, err
		}
		a.Cmd = append(a.Cmd, s)
	}
	if len(p) != 0 {
		return a, fmt.Errorf("MMonCommandAck: %d bytes after the command", len(p))
	}
	return a, nil
}

// str decodes a Ceph string (u32 length, bytes).
func str(p []byte) (string, []byte, error) {
	if len(p) < 4 {
		return "", nil, errShort
	}
	n := binary.LittleEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return "", nil, fmt.Errorf("MMonCommandAck: string of %d bytes in %d", n, len(p)-4)
	}
	return string(p[4 : 4+n]), p[4+n:], nil
}

// Status has the monitor mon run `status` (JSON) by Command and checks
// that its output is the status of mon's cluster (its fsid, mon.a in the
// quorum).
func Status(t *testing.T, cli *msgr.Messenger, got <-chan *msgr.Message, mon *cephmon.Mon, tid uint64, perTry time.Duration) {
	t.Helper()
	require.NotEmpty(t, mon.Fsid, "step: MMonCommand needs the cluster's fsid")
	_, out := Command(t, cli, got, mon.Addr, mon.Fsid, `{"prefix": "status", "format": "json"}`, tid, perTry)
	var st struct {
		Fsid        string   `json:"fsid"`
		QuorumNames []string `json:"quorum_names"`
	}
	require.NoError(t, json.Unmarshal(out, &st), "step: status output is JSON: %q", out)
	require.Equal(t, mon.Fsid, st.Fsid, "step: status of our cluster")
	require.Equal(t, []string{"a"}, st.QuorumNames, "step: status quorum")
	t.Logf("step: MMonCommand status answered, rc 0, %d bytes of output", len(out))
}
