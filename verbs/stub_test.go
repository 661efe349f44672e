//go:build !linux || !cgo

package verbs

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Without cgo every entry point reports ErrNotSupported (and EOPNOTSUPP).
func TestStubsNotSupported(t *testing.T) {
	require.False(t, Supported)
	var ctx *Context
	var pd *PD
	var qp *QP
	var cq *CQ
	var srq *SRQ
	var id *CMID
	var ch *CMEventChannel
	var cc *CompChannel
	calls := map[string]func() error{
		"Devices":           func() error { _, err := Devices(); return err },
		"Open":              func() error { _, err := Open(""); return err },
		"AllocBuffer":       func() error { _, err := AllocBuffer(4096); return err },
		"MapBuffer":         func() error { _, err := MapBuffer(4096, false); return err },
		"NewCMEventChannel": func() error { _, err := NewCMEventChannel(); return err },
		"QueryDevice":       func() error { _, err := ctx.QueryDevice(); return err },
		"QueryPort":         func() error { _, err := ctx.QueryPort(1); return err },
		"PortActive":        func() error { return ctx.PortActive(1) },
		"GIDs":              func() error { _, err := ctx.GIDs(1); return err },
		"PickGID":           func() error { _, err := ctx.PickGID(1, -1); return err },
		"GetAsyncEvent":     func() error { _, err := ctx.GetAsyncEvent(); return err },
		"AllocPD":           func() error { _, err := ctx.AllocPD(); return err },
		"CreateCompChannel": func() error { _, err := ctx.CreateCompChannel(); return err },
		"CreateCQ":          func() error { _, err := ctx.CreateCQ(16, nil, 0); return err },
		"RegMR":             func() error { _, err := pd.RegMR(nil, 0); return err },
		"RegMRRange":        func() error { _, err := pd.RegMRRange(nil, 0, 1, 0); return err },
		"CreateQP":          func() error { _, err := pd.CreateQP(QPInitAttr{}); return err },
		"CreateSRQ":         func() error { _, err := pd.CreateSRQ(SRQInitAttr{}); return err },
		"GetCQEvent":        func() error { _, err := cc.GetEvent(); return err },
		"Poll":              func() error { _, err := cq.Poll(make([]WorkCompletion, 1)); return err },
		"ReqNotify":         func() error { return cq.ReqNotify(false) },
		"ToInit":            func() error { return qp.ToInit(DefaultConnParams()) },
		"ToRTR":             func() error { return qp.ToRTR(DefaultConnParams()) },
		"ToRTS":             func() error { return qp.ToRTS(DefaultConnParams()) },
		"Connect":           func() error { return qp.Connect(DefaultConnParams()) },
		"ToError":           func() error { return qp.ToError() },
		"State":             func() error { _, err := qp.State(); return err },
		"PostSend":          func() error { _, err := qp.PostSend(nil); return err },
		"PostRecv":          func() error { _, err := qp.PostRecv(nil); return err },
		"PostSpin":          func() error { _, err := qp.PostSpin(nil, nil, &SpinWait{CQ: cq}, nil); return err },
		"PollSpin":          func() error { _, err := cq.PollSpin(nil, 1, 1); return err },
		"SRQPostRecv":       func() error { _, err := srq.PostRecv(nil); return err },
		"ArmLimit":          func() error { return srq.ArmLimit(1) },
		"CreateID":          func() error { _, err := ch.CreateID(PSTCP); return err },
		"GetCMEvent":        func() error { _, err := ch.GetEvent(); return err },
		"BindAddr":          func() error { return id.BindAddr(netip.AddrPort{}) },
		"LocalAddr":         func() error { _, err := id.LocalAddr(); return err },
		"ResolveAddr":       func() error { return id.ResolveAddr(netip.AddrPort{}, netip.AddrPort{}, time.Second) },
		"ResolveRoute":      func() error { return id.ResolveRoute(time.Second) },
		"Listen":            func() error { return id.Listen(1) },
		"CMConnect":         func() error { return id.Connect(DefaultCMConnParam()) },
		"Accept":            func() error { return id.Accept(DefaultCMConnParam()) },
		"Reject":            func() error { return id.Reject(nil) },
		"Disconnect":        func() error { return id.Disconnect() },
		"Migrate":           func() error { return id.Migrate(nil) },
		"CMIDCreateQP":      func() error { _, err := id.CreateQP(nil, QPInitAttr{}); return err },
	}
	for name, f := range calls {
		t.Run(name, func(t *testing.T) {
			err := f()
			require.ErrorIs(t, err, ErrNotSupported)
			require.ErrorIs(t, err, syscall.EOPNOTSUPP)
		})
	}
	// Closers stay nil-safe no-ops.
	for _, c := range []func() error{ctx.Close, pd.Close, qp.Close, cq.Close, srq.Close, id.Close, ch.Close, cc.Close} {
		require.NoError(t, c())
	}
	require.Equal(t, Counters{}, ReadCounters())
}
