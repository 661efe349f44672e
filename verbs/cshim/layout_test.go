//go:build linux && cgo

package cshim

import (
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// The Go mirrors must match the C structs byte for byte, since Go reads and
// writes them in place in C memory.
func TestLayoutMatchesC(t *testing.T) {
	for _, tc := range []struct {
		name   string
		goSize uintptr
		cSize  uintptr
	}{
		{"shim_wc", unsafe.Sizeof(WC{}), SizeofWC},
		{"shim_sge", unsafe.Sizeof(SGE{}), SizeofSGE},
		{"shim_send_wr", unsafe.Sizeof(SendWR{}), SizeofSendWR},
		{"shim_recv_wr", unsafe.Sizeof(RecvWR{}), SizeofRecvWR},
		{"shim_spin", unsafe.Sizeof(Spin{}), SizeofSpin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.cSize, tc.goSize)
		})
	}
	offs := cOffsets
	require.Equal(t, offs["wc.status"], unsafe.Offsetof(WC{}.Status))
	require.Equal(t, offs["wc.imm"], unsafe.Offsetof(WC{}.Imm))
	require.Equal(t, offs["wc.wc_flags"], unsafe.Offsetof(WC{}.WCFlags))
	require.Equal(t, offs["wc.sl"], unsafe.Offsetof(WC{}.SL))
	require.Equal(t, offs["send.opcode"], unsafe.Offsetof(SendWR{}.Opcode))
	require.Equal(t, offs["send.sge_off"], unsafe.Offsetof(SendWR{}.SGEOff))
	require.Equal(t, offs["recv.sge_off"], unsafe.Offsetof(RecvWR{}.SGEOff))
	require.Equal(t, offs["sge.lkey"], unsafe.Offsetof(SGE{}.LKey))
	require.Equal(t, offs["spin.watch_want"], unsafe.Offsetof(Spin{}.WatchWant))
	require.Equal(t, offs["spin.nwc"], unsafe.Offsetof(Spin{}.NWC))
	require.Equal(t, offs["spin.rounds"], unsafe.Offsetof(Spin{}.Rounds))
	require.Equal(t, offs["spin.stamp"], unsafe.Offsetof(Spin{}.Stamp))
	require.Equal(t, offs["spin.mark_val"], unsafe.Offsetof(Spin{}.MarkVal))
	require.Equal(t, offs["spin.max_ticks"], unsafe.Offsetof(Spin{}.MaxTicks))
	require.Equal(t, offs["spin.nwc1"], unsafe.Offsetof(Spin{}.NWC1))
}

// A batch written through the Go view is what C posts: build a chain, post it
// to a NULL-free but invalid argument path (n out of range) and check errors,
// without a device.
func TestBatchBounds(t *testing.T) {
	b, err := NewSendBatch(4, 8)
	require.NoError(t, err)
	defer b.Free()
	require.Len(t, b.WR, 4)
	require.Len(t, b.SGE, 8)
	_, err = b.Post(0, 5)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = b.Post(0, 0)
	require.ErrorIs(t, err, syscall.EINVAL)
	b.WR[0] = SendWR{NumSGE: 3, SGEOff: 7} // SGE range past the array
	_, err = b.Post(0, 1)
	require.ErrorIs(t, err, syscall.EINVAL)

	r, err := NewRecvBatch(2, 2)
	require.NoError(t, err)
	defer r.Free()
	r.WR[0] = RecvWR{NumSGE: 1, SGEOff: 2}
	_, err = r.Post(0, 1)
	require.ErrorIs(t, err, syscall.EINVAL)

	_, err = NewWCArray(0)
	require.ErrorIs(t, err, syscall.EINVAL)
	b.Free()
	b.Free() // idempotent
}
