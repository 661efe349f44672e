package msgr

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPrioDispatchOrder(t *testing.T) {
	a, b := &Connection{}, &Connection{}
	msg := func(c *Connection, prio uint16, tid uint64) dqItem {
		return dqItem{kind: dqMessage, c: c, m: &Message{Priority: prio, Tid: tid}}
	}
	tests := []struct {
		name string
		in   []dqItem
		want []string // "A1" = message Tid 1 from a, "B!" = an event of b
	}{
		{"fifo per connection", []dqItem{msg(a, 127, 1), msg(a, 127, 2), msg(a, 127, 3)}, []string{"A1", "A2", "A3"}},
		{"higher priority first", []dqItem{msg(a, 64, 1), msg(a, 196, 2), msg(a, 127, 3)}, []string{"A2", "A3", "A1"}},
		{"round robin across connections", []dqItem{msg(a, 127, 1), msg(a, 127, 2), msg(a, 127, 3), msg(b, 127, 4), msg(b, 127, 5)},
			[]string{"A1", "B4", "A2", "B5", "A3"}},
		{"events are highest", []dqItem{msg(a, 64, 1), msg(a, 196, 2), msg(b, 64, 3), msg(a, 64, 4), msg(b, 64, 5), {kind: dqReset, c: b}},
			[]string{"B!", "A2", "A1", "B3", "A4", "B5"}},
		{"default priority", []dqItem{msg(a, 0, 1), msg(a, 128, 2), msg(a, 126, 3)}, []string{"A2", "A1", "A3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p prioDispatch
			for _, it := range tc.in {
				p.push(it)
			}
			require.Equal(t, len(tc.in), p.n)
			var got []string
			for p.n > 0 {
				it := p.pop()
				name := "A"
				if it.c == b {
					name = "B"
				}
				if it.kind == dqMessage {
					name += string(rune('0' + it.m.Tid))
				} else {
					name += "!"
				}
				got = append(got, name)
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, dqItem{}, p.pop(), "empty queue")
		})
	}
}

func TestPrioDispatchRefill(t *testing.T) {
	a := &Connection{}
	var p prioDispatch
	for round := 0; round < 3; round++ {
		for i := 0; i < 4; i++ {
			p.push(dqItem{kind: dqMessage, c: a, m: &Message{Tid: uint64(i)}})
		}
		for i := 0; i < 4; i++ {
			require.Equal(t, uint64(i), p.pop().m.Tid)
		}
		require.Zero(t, p.n)
		require.Empty(t, p.levels[0].byConn, "drained connections are forgotten")
	}
}
