package msgr2_test

import (
	"fmt"
	"net/netip"

	"github.com/asyncmsgr/asyncmsgr/msgr/msgr2"
)

// A client's first bytes on a msgr2 connection: the banner, then HELLO.
func ExampleAppendControlFrame() {
	buf := msgr2.AppendBanner(nil, msgr2.FeatureRevision1, 0)
	hello := &msgr2.Hello{
		EntityType: msgr2.EntityTypeClient,
		PeerAddr: msgr2.EntityAddr{Type: msgr2.AddrTypeMsgr2,
			Addr: netip.MustParseAddrPort("10.0.0.1:3300")},
	}
	buf = msgr2.AppendControlFrame(buf, hello)

	sup, req, err := msgr2.ParseBanner(buf[:msgr2.BannerLen])
	fmt.Println(sup, req, err)
	p, segs, n, err := msgr2.ParseFrame(buf[msgr2.BannerLen:], 1<<20)
	fmt.Println(p.Tag, p.NumSegments, n, err)
	var got msgr2.Hello
	fmt.Println(got.Unmarshal(segs[0]), got.PeerAddr)
	// Output:
	// 1 0 <nil>
	// HELLO 1 72 <nil>
	// <nil> v2:10.0.0.1:3300/0
}

// Reading a frame in two steps as msgr2.1 allows: the preamble, then the
// rest, whose exact length the preamble gives.
func ExampleParseFrameRest() {
	h := msgr2.MsgHeader2{Seq: 1, Type: 0x29, Priority: msgr2.PrioDefault}
	wire := msgr2.AppendMessageFrame(nil, &h, []byte("front"), nil, nil)

	p, err := msgr2.ParsePreamble(wire[:msgr2.PreambleLen], 512<<20)
	if err != nil {
		panic(err)
	}
	rest := wire[msgr2.PreambleLen : msgr2.PreambleLen+p.RestLen()]
	segs, err := msgr2.ParseFrameRest(&p, rest)
	if err != nil {
		panic(err)
	}
	hdr, front, _, _, err := msgr2.ParseMessage(segs)
	fmt.Println(p.Tag, hdr.Seq, string(front), err)
	// Output: MESSAGE 1 front <nil>
}
