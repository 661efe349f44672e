package verbs

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestErrorWrapping(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		errno   syscall.Errno
		kind    error
		contain string
	}{
		{"nodev", opErr("ibv_open_device mlx9", syscall.ENODEV), syscall.ENODEV, ErrNoDevice, "verbs: ibv_open_device mlx9: no such device"},
		{"busy", opErr("ibv_dealloc_pd", syscall.EBUSY), syscall.EBUSY, ErrBusy, "ibv_dealloc_pd"},
		{"notsup", opErr("ibv_query_gid_table", syscall.EOPNOTSUPP), syscall.EOPNOTSUPP, ErrNotSupported, "ibv_query_gid_table"},
		{"plain", opErr("ibv_modify_qp RTR", syscall.EINVAL), syscall.EINVAL, nil, "verbs: ibv_modify_qp RTR: invalid argument"},
		{"closed", closedErr("ibv_poll_cq"), syscall.EBADF, net.ErrClosed, "ibv_poll_cq"},
		{"portdown", kindErr("rxe0 port 1", syscall.ENETDOWN, ErrPortDown, "state DOWN"), syscall.ENETDOWN, ErrPortDown, "state DOWN"},
		{"stub", notSupported("ibv_post_send"), syscall.EOPNOTSUPP, ErrNotSupported, "without cgo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.err)
			require.ErrorIs(t, tc.err, tc.errno)
			if tc.kind != nil {
				require.ErrorIs(t, tc.err, tc.kind)
			}
			for _, other := range []error{ErrNoDevice, ErrBusy, ErrNotSupported, ErrPortDown, ErrMemlockTooLow} {
				if other != tc.kind {
					require.NotErrorIs(t, tc.err, other)
				}
			}
			require.Contains(t, tc.err.Error(), tc.contain)
			var ve *Error
			require.True(t, errors.As(tc.err, &ve))
			require.Equal(t, tc.errno, ve.Errno)
		})
	}
	require.NoError(t, opErr("x", nil))
	// A non-errno error is still wrapped with the verb.
	e := opErr("read gids", errors.New("boom"))
	require.EqualError(t, e, "verbs: read gids: boom")
	// Re-wrapping an *Error keeps its errno, sentinel and detail under the new verb.
	e = opErr("ibv_modify_qp RTR", kindErr("check", syscall.EINVAL, nil, "SGIDIndex 9999"))
	require.EqualError(t, e, "verbs: ibv_modify_qp RTR: invalid argument: SGIDIndex 9999")
}

func TestErrorTimeout(t *testing.T) {
	var ne net.Error
	err := opErr("ibv_get_cq_event", syscall.EAGAIN)
	require.True(t, errors.As(err, &ne))
	require.True(t, ne.Timeout())
	err = opErr("ibv_post_send", syscall.ENOMEM)
	require.True(t, errors.As(err, &ne))
	require.False(t, ne.Timeout())
}

func TestMemlockAdvice(t *testing.T) {
	msg := memlockAdvice(8<<20, false)
	for _, want := range []string{"8388608 bytes", "ulimit -l unlimited", "--ulimit memlock=-1", "limits.conf"} {
		require.Contains(t, msg, want)
	}
	err := kindErr("ibv_reg_mr", syscall.ENOMEM, ErrMemlockTooLow, msg)
	require.ErrorIs(t, err, ErrMemlockTooLow)
	require.ErrorIs(t, err, syscall.ENOMEM)
	require.True(t, strings.HasPrefix(err.Error(), "verbs: ibv_reg_mr: cannot allocate memory"))

	cur, inf, ok := memlockLimit()
	if ok && !inf {
		err := CheckMemlock(cur + 1)
		require.ErrorIs(t, err, ErrMemlockTooLow)
		require.ErrorIs(t, err, syscall.ENOMEM)
		require.Contains(t, err.Error(), "bytes needed")
		require.NoError(t, CheckMemlock(cur))
	} else {
		require.NoError(t, CheckMemlock(1<<62))
	}
}

func TestWCStatusIsError(t *testing.T) {
	for _, tc := range []struct {
		s    WCStatus
		text string
	}{
		{WCRNRRetryExcErr, "RNR retry counter exceeded"},
		{WCRetryExcErr, "transport retry counter exceeded"},
		{WCWRFlushErr, "Work Request Flushed Error"},
		{WCSuccess, "success"},
	} {
		t.Run(tc.text, func(t *testing.T) {
			require.Equal(t, tc.text, tc.s.String())
			wc := WorkCompletion{Status: tc.s}
			if tc.s == WCSuccess {
				require.NoError(t, wc.Err())
				return
			}
			require.ErrorIs(t, wc.Err(), tc.s)
			require.Contains(t, wc.Err().Error(), tc.text)
		})
	}
	require.Equal(t, "WCStatus(99)", WCStatus(99).String())
}

func TestEnumStrings(t *testing.T) {
	require.Equal(t, "RTS", QPStateRTS.String())
	require.Equal(t, "ACTIVE", PortActive.String())
	require.Equal(t, 1024, MTU1024.Bytes())
	require.Equal(t, 4096, MTU4096.Bytes())
	require.Equal(t, 0, MTU(9).Bytes())
	require.Equal(t, "RoCE v2", GIDTypeRoCEv2.String())
	require.Equal(t, "SEND_WITH_IMM", OpSendWithImm.String())
	require.True(t, WCRecvRDMAWithImm.IsRecv())
	require.False(t, WCRDMARead.IsRecv())
	require.Equal(t, "SRQ limit reached", EventSRQLimit.String())
	require.Equal(t, "RDMA_CM_EVENT_ESTABLISHED", CMEstablished.String())
}

func TestDefaultConnParamsMatchReference(t *testing.T) {
	p := DefaultConnParams()
	require.Equal(t, MTU1024, p.PathMTU)
	require.True(t, p.IsGlobal)
	require.Equal(t, 6, p.HopLimit)
	require.Equal(t, 0x12, p.MinRNRTimer)
	require.Equal(t, 0x12, p.Timeout)
	require.Equal(t, 7, p.RetryCnt)
	require.Equal(t, 7, p.RNRRetry)
	require.Equal(t, 1, p.MaxRdAtomic)
	require.Equal(t, 1, p.MaxDestRdAtomic)
	require.Equal(t, 1, p.Port)
}

func TestConnParamsCheck(t *testing.T) {
	require.NoError(t, func() error { p := DefaultConnParams(); return p.check() }())
	for _, tc := range []struct {
		name string
		mod  func(*ConnParams)
	}{
		{"SGIDIndex", func(p *ConnParams) { p.SGIDIndex = 9999 }},
		{"RetryCnt", func(p *ConnParams) { p.RetryCnt = 8 }},
		{"RNRRetry", func(p *ConnParams) { p.RNRRetry = -1 }},
		{"Timeout", func(p *ConnParams) { p.Timeout = 32 }},
		{"SL", func(p *ConnParams) { p.SL = 16 }},
		{"PathMTU", func(p *ConnParams) { p.PathMTU = 9 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultConnParams()
			tc.mod(&p)
			err := p.check()
			require.ErrorIs(t, err, syscall.EINVAL)
			require.Contains(t, err.Error(), tc.name)
		})
	}
}
