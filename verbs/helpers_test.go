//go:build linux && cgo

package verbs

import (
	"errors"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
)

// testDevice returns the RDMA device the tests use (RXE_DEV_A), or skips
// (fails in CI) through testenv when there is none.
func testDevice(t testing.TB) string {
	t.Helper()
	return testenv.RequireRDMA(t).Name
}

// env is one opened device with a PD, a send CQ, a receive CQ and one big MR.
type env struct {
	ctx    *Context
	pd     *PD
	scq    *CQ
	rcq    *CQ
	buf    *Buffer
	mr     *MR
	gid    GIDEntry
	port   int
	closes []func() error
}

const envBuf = 1 << 20

func newEnv(t testing.TB) *env {
	t.Helper()
	name := testDevice(t)
	e := &env{port: 1}
	var err error
	e.ctx, err = Open(name)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.close()) })
	require.NoError(t, e.ctx.PortActive(e.port))
	e.gid, err = e.ctx.PickGID(e.port, -1)
	require.NoError(t, err)
	e.pd, err = e.ctx.AllocPD()
	require.NoError(t, err)
	e.scq, err = e.ctx.CreateCQ(1024, nil, 0)
	require.NoError(t, err)
	e.rcq, err = e.ctx.CreateCQ(1024, nil, 0)
	require.NoError(t, err)
	e.buf, err = AllocBuffer(envBuf)
	require.NoError(t, err)
	e.mr, err = e.pd.RegMR(e.buf, AccessLocalWrite|AccessRemoteWrite|AccessRemoteRead)
	require.NoError(t, err)
	return e
}

// defer-like registration of extra objects, closed (LIFO) before the env.
func (e *env) own(c func() error) { e.closes = append(e.closes, c) }

func (e *env) close() error {
	var errs []error
	for i := len(e.closes) - 1; i >= 0; i-- {
		errs = append(errs, e.closes[i]())
	}
	errs = append(errs, e.mr.Close(), e.buf.Free(), e.scq.Close(), e.rcq.Close(), e.pd.Close(), e.ctx.Close())
	return errors.Join(errs...)
}

func (e *env) qp(t testing.TB, attr QPInitAttr) *QP {
	t.Helper()
	if attr.SendCQ == nil {
		attr.SendCQ = e.scq
	}
	if attr.RecvCQ == nil {
		attr.RecvCQ = e.rcq
	}
	if attr.MaxSendWR == 0 {
		attr.MaxSendWR = 64
	}
	if attr.MaxRecvWR == 0 {
		attr.MaxRecvWR = 64
	}
	q, err := e.pd.CreateQP(attr)
	require.NoError(t, err)
	e.own(q.Close)
	return q
}

// params are DefaultConnParams aimed at peer on this device's chosen GID.
func (e *env) params(peer *QP) ConnParams {
	p := DefaultConnParams()
	p.Port = e.port
	p.SGIDIndex = e.gid.Index
	p.RemoteGID = e.gid.GID
	p.RemoteQPN = peer.Num()
	p.RemotePSN = 0x1000 + peer.Num()
	return p
}

// connect connects a and b to each other (loopback on the same device);
// tweak may change either side's parameters (side 0 is a, 1 is b).
func (e *env) connect(t testing.TB, a, b *QP, tweak func(side int, p *ConnParams)) {
	t.Helper()
	// Both sides to RTR, then both to RTS.
	for _, steps := range [][]func(*QP, ConnParams) error{{(*QP).ToInit, (*QP).ToRTR}, {(*QP).ToRTS}} {
		for side, pair := range [][2]*QP{{a, b}, {b, a}} {
			p := e.params(pair[1])
			p.LocalPSN = 0x1000 + pair[0].Num()
			if tweak != nil {
				tweak(side, &p)
			}
			for _, step := range steps {
				require.NoError(t, step(pair[0], p))
			}
		}
	}
}

// sendWC posts wr on q and returns its completion from the send CQ.
func (e *env) sendWC(t *testing.T, q *QP, wr WorkRequest) WorkCompletion {
	t.Helper()
	_, err := q.PostSend([]WorkRequest{wr})
	require.NoError(t, err)
	return waitWC(t, e.scq, 1)[0]
}

func (e *env) pair(t testing.TB, tweak func(side int, p *ConnParams)) (*QP, *QP) {
	a, b := e.qp(t, QPInitAttr{}), e.qp(t, QPInitAttr{})
	e.connect(t, a, b, tweak)
	return a, b
}

// waitWC polls cq until n completions arrived; it fails the test after 10 s.
func waitWC(t testing.TB, cq *CQ, n int) []WorkCompletion {
	t.Helper()
	out := make([]WorkCompletion, 0, n)
	buf := make([]WorkCompletion, 64)
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n {
		got, err := cq.Poll(buf[:min(len(buf), n-len(out))])
		require.NoError(t, err)
		out = append(out, buf[:got]...)
		if got == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("waited 10s for %d completions, got %d: %+v", n, len(out), out)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	return out
}

// requireNoWC asserts that cq stays empty for a short while.
func requireNoWC(t testing.TB, cq *CQ) {
	t.Helper()
	buf := make([]WorkCompletion, 4)
	for i := 0; i < 20; i++ {
		n, err := cq.Poll(buf)
		require.NoError(t, err)
		require.Zero(t, n, "unexpected completion %+v", buf[:n])
		time.Sleep(time.Millisecond)
	}
}

func fillRandom(b []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

func isEAGAIN(err error) bool { return errors.Is(err, syscall.EAGAIN) }
