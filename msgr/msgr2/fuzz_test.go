package msgr2

import (
	"encoding/binary"
	"math/rand"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzParseBanner(f *testing.F) {
	f.Add(AppendBanner(nil, FeatureRevision1, 0))
	f.Add(AppendBanner(nil, 0, ^uint64(0)))
	f.Add([]byte("ceph v027\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("ceph v2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sup, req, err := ParseBanner(b)
		if err != nil {
			require.ErrorIs(t, err, ErrProtocol)
			return
		}
		require.Equal(t, b, AppendBanner(nil, sup, req))
	})
}

func FuzzParsePreamble(f *testing.F) {
	f.Add(AppendFrame(nil, TagWait, nil)[:PreambleLen])
	f.Add(AppendFrame(nil, TagMessage, filled(41, 1), nil, nil, filled(9, 2))[:PreambleLen])
	f.Add(AppendFrame(nil, TagAck, filled(70000, 1))[:PreambleLen])
	f.Add(make([]byte, PreambleLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, limit := range []int{0, 1 << 16} {
			p, err := ParsePreamble(b, limit)
			if err != nil {
				require.ErrorIs(t, err, ErrProtocol)
				continue
			}
			require.True(t, p.Tag.Valid())
			require.GreaterOrEqual(t, p.NumSegments, 1)
			require.LessOrEqual(t, p.NumSegments, MaxSegments)
			require.GreaterOrEqual(t, p.RestLen(), 0)
			for i := 0; i < MaxSegments; i++ {
				if i >= p.NumSegments {
					require.Zero(t, p.Segments[i])
				} else if limit > 0 {
					require.LessOrEqual(t, int(p.Segments[i].Length), limit)
				}
			}
		}
	})
}

func FuzzParseFrame(f *testing.F) {
	f.Add(AppendFrame(nil, TagWait, nil))
	f.Add(AppendControlFrame(nil, &Ack{Seq: 1}))
	f.Add(AppendControlFrame(nil, &ClientIdent{Addrs: AddrVec{addrV4}, TargetAddr: addrV6}))
	f.Add(AppendMessageFrame(nil, &MsgHeader2{Seq: 1}, []byte("front"), nil, []byte("data")))
	f.Add(AppendFrame(nil, TagMessage, nil, []byte("x")))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParseFrame(t, b)
		if len(b) >= PreambleLen {
			// Fix up the preamble crc so the fuzzer reaches segment and
			// epilogue parsing.
			fixed := append([]byte(nil), b...)
			binary.LittleEndian.PutUint32(fixed[28:], CRC32C(0, fixed[:28]))
			checkParseFrame(t, fixed)
		}
	})
}

func checkParseFrame(t *testing.T, b []byte) {
	p, segs, n, err := ParseFrame(b, 1<<16)
	if err != nil {
		if err != ErrFrameAborted {
			require.ErrorIs(t, err, ErrProtocol)
		}
		return
	}
	{
		require.LessOrEqual(t, n, len(b))
		// Re-assembling the segments gives a frame that parses back to them.
		again := AppendFrame(nil, p.Tag, segs[:p.NumSegments]...)
		p2, segs2, n2, err := ParseFrame(again, 0)
		require.NoError(t, err)
		require.Equal(t, len(again), n2)
		require.Equal(t, p.NumSegments, p2.NumSegments)
		for i := range segs {
			require.Equal(t, string(segs[i]), string(segs2[i]))
		}
		if p.Tag == TagMessage {
			_, _, _, _, _ = ParseMessage(segs)
		} else if pl := NewPayload(p.Tag); pl != nil {
			_ = pl.Unmarshal(segs[0])
		}
	}
}

// FuzzUnmarshalPayload covers every control payload decoder: the first byte
// picks the tag. A decoded payload must re-encode to bytes that decode to
// the same value and re-encode identically.
func FuzzUnmarshalPayload(f *testing.F) {
	for _, m := range samplePayloads() {
		f.Add(byte(m.Tag()), m.Marshal(nil))
	}
	f.Add(byte(TagAuthRequest), []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add(byte(TagClientIdent), []byte{2, 0xff, 0xff, 0xff, 0x0f})
	f.Add(byte(TagHello), append([]byte{1}, legacyAddr(1, 2, []byte{0, 1, 2, 3, 4, 5})...))
	f.Fuzz(func(t *testing.T, tag byte, b []byte) {
		m := NewPayload(Tag(tag))
		if m == nil {
			_, err := UnmarshalPayload(Tag(tag), b)
			require.ErrorIs(t, err, ErrProtocol)
			return
		}
		if err := m.Unmarshal(b); err != nil {
			require.ErrorIs(t, err, ErrProtocol)
			return
		}
		enc := m.Marshal(nil)
		m2 := NewPayload(Tag(tag))
		require.NoError(t, m2.Unmarshal(enc))
		require.Equal(t, m, m2)
		require.Equal(t, enc, m2.Marshal(nil))
	})
}

// FuzzUnmarshalMessage covers MsgHeader2, EntityAddr, AddrVec and
// EntityName decoders.
func FuzzUnmarshalMessage(f *testing.F) {
	f.Add(byte(0), (&MsgHeader2{Seq: 5, Priority: PrioHigh}).Marshal(nil))
	f.Add(byte(1), goldenAddrV4)
	f.Add(byte(1), goldenAddrV6)
	f.Add(byte(2), (&AddrVec{addrV4, addrNone}).Marshal(nil))
	f.Add(byte(2), legacyAddr(1, 10, make([]byte, 26)))
	f.Add(byte(3), (&EntityName{Type: 8, Num: -1}).Marshal(nil))
	f.Fuzz(func(t *testing.T, kind byte, b []byte) {
		type codec interface {
			Marshal([]byte) []byte
			Unmarshal([]byte) error
		}
		var m, m2 codec
		switch kind % 4 {
		case 0:
			m, m2 = new(MsgHeader2), new(MsgHeader2)
		case 1:
			m, m2 = new(EntityAddr), new(EntityAddr)
		case 2:
			m, m2 = new(AddrVec), new(AddrVec)
		case 3:
			m, m2 = new(EntityName), new(EntityName)
		}
		if err := m.Unmarshal(b); err != nil {
			require.ErrorIs(t, err, ErrProtocol)
			return
		}
		enc := m.Marshal(nil)
		if kind%4 == 0 {
			require.Equal(t, b, enc)
		}
		require.NoError(t, m2.Unmarshal(enc))
		require.Equal(t, m, m2)
	})
}

// TestDecodersAllocationBounded feeds hostile inputs (huge counts and
// lengths, random mutations of valid encodings) to every decoder and checks
// that the bytes allocated per decode stay within a small multiple of the
// input size: no length read from the wire is trusted before the bytes
// behind it are present.
func TestDecodersAllocationBounded(t *testing.T) {
	inputs := [][]byte{
		join(u32le(1), u32le(0xffffffff)),
		join(u32le(1), u32le(0), u32le(0xfffffff0)),
		join([]byte{2}, u32le(0xffffffff)),
		join([]byte{2}, u32le(0x7fffffff), goldenAddrV4),
		join([]byte{1, 1, 1}, u32le(0xffffffff)),
		join(u32le(1), u32le(1), u32le(0x40000000), u32le(0x40000000)),
	}
	rng := rand.New(rand.NewSource(1))
	for _, m := range samplePayloads() {
		enc := m.Marshal(nil)
		for i := 0; i < 20 && len(enc) > 0; i++ {
			mut := append([]byte(nil), enc...)
			for j := 0; j < 3; j++ {
				pos := rng.Intn(len(mut))
				if pos+4 <= len(mut) && rng.Intn(2) == 0 {
					binary.LittleEndian.PutUint32(mut[pos:], rng.Uint32()|0x10000000)
				} else {
					mut[pos] = byte(rng.Intn(256))
				}
			}
			inputs = append(inputs, mut)
		}
	}
	const runs = 20
	for i, in := range inputs {
		for tag := TagHello; tag <= TagAck; tag++ {
			m := NewPayload(tag)
			if m == nil {
				continue
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for r := 0; r < runs; r++ {
				_ = NewPayload(tag).Unmarshal(in)
				var v AddrVec
				_ = v.Unmarshal(in)
			}
			runtime.ReadMemStats(&after)
			perRun := (after.TotalAlloc - before.TotalAlloc) / runs
			bound := uint64(4*len(in) + 2048)
			require.LessOrEqual(t, perRun, bound, "input %d tag %v: %d bytes allocated per decode of %d input bytes", i, tag, perRun, len(in))
		}
	}
}
