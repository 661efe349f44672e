package monclient

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCommandFront(t *testing.T) {
	b, err := CommandFront("6d1c2a40-1b7e-4c55-8f0a-0123456789ab", `{"prefix":"status"}`)
	require.NoError(t, err)
	want := []byte{
		0, 0, 0, 0, 0, 0, 0, 0, // version
		0xff, 0xff, // deprecated_session_mon -1
		0, 0, 0, 0, 0, 0, 0, 0, // deprecated_session_mon_tid
		0x6d, 0x1c, 0x2a, 0x40, 0x1b, 0x7e, 0x4c, 0x55, 0x8f, 0x0a, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, // fsid
		1, 0, 0, 0, // one string
		19, 0, 0, 0}
	want = append(want, `{"prefix":"status"}`...)
	require.Equal(t, want, b)

	for _, bad := range []string{"", "6d1c2a40", "zz1c2a40-1b7e-4c55-8f0a-0123456789ab"} {
		_, err := CommandFront(bad, "x")
		require.Error(t, err, bad)
	}
}

func ackFront(r int32, rs string, cmd ...string) []byte {
	b := paxosHeader(nil)
	binary.LittleEndian.PutUint64(b, 9) // version
	b = binary.LittleEndian.AppendUint32(b, uint32(r))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(rs)))
	b = append(b, rs...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(cmd)))
	for _, c := range cmd {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(c)))
		b = append(b, c...)
	}
	return b
}

func TestParseCommandAck(t *testing.T) {
	a, err := ParseCommandAck(ackFront(-1, "wrong fsid", `{"prefix":"status"}`))
	require.NoError(t, err)
	require.Equal(t, CommandAck{Version: 9, R: -1, RS: "wrong fsid", Cmd: []string{`{"prefix":"status"}`}}, a)

	full := ackFront(0, "ok", "a", "bc")
	for n := 0; n < len(full); n++ {
		_, err := ParseCommandAck(full[:n])
		require.Error(t, err, "truncated to %d bytes", n)
	}
	_, err = ParseCommandAck(append(full, 0))
	require.ErrorContains(t, err, "after the command")
	huge := ackFront(0, "", "a")
	binary.LittleEndian.PutUint32(huge[paxosHeaderLen+8:], 1<<30)
	_, err = ParseCommandAck(huge)
	require.ErrorContains(t, err, "strings in")
}
