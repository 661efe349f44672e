//go:build linux && cgo

package verbs_test

import (
	"fmt"
	"time"

	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// Example_loopbackSend connects two RC QPs of one device to each other and
// sends one message (error handling shortened).
func Example_loopbackSend() {
	ctx, err := verbs.Open("") // first device
	if err != nil {
		fmt.Println(err) // errors.Is(err, verbs.ErrNoDevice) on a machine without RDMA
		return
	}
	defer ctx.Close()
	gid, _ := ctx.PickGID(1, -1) // the RoCE v2 IPv4 GID
	pd, _ := ctx.AllocPD()
	defer pd.Close()
	cq, _ := ctx.CreateCQ(64, nil, 0)
	defer cq.Close()
	buf, _ := verbs.AllocBuffer(8192)
	defer buf.Free()
	mr, _ := pd.RegMR(buf, verbs.AccessLocalWrite)
	defer mr.Close()

	a, _ := pd.CreateQP(verbs.QPInitAttr{SendCQ: cq, RecvCQ: cq})
	defer a.Close()
	b, _ := pd.CreateQP(verbs.QPInitAttr{SendCQ: cq, RecvCQ: cq})
	defer b.Close()
	for _, pair := range [][2]*verbs.QP{{a, b}, {b, a}} {
		p := verbs.DefaultConnParams()
		p.SGIDIndex, p.RemoteGID, p.RemoteQPN = gid.Index, gid.GID, pair[1].Num()
		if err := pair[0].Connect(p); err != nil {
			fmt.Println(err)
			return
		}
	}
	copy(mr.Bytes(), "hello")
	b.PostRecv([]verbs.RecvRequest{{ID: 2, SG: []verbs.SGE{mr.SGE(4096, 64)}}})
	a.PostSend([]verbs.WorkRequest{{ID: 1, Opcode: verbs.OpSend, Flags: verbs.SendSignaled, SG: []verbs.SGE{mr.SGE(0, 5)}}})
	wcs := make([]verbs.WorkCompletion, 4)
	for got := 0; got < 2; {
		n, _ := cq.Poll(wcs)
		for _, wc := range wcs[:n] {
			if wc.Opcode.IsRecv() {
				fmt.Printf("%s\n", mr.Bytes()[4096:4096+wc.ByteLen])
			}
		}
		got += n
		time.Sleep(time.Millisecond)
	}
}
