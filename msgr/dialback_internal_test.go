package msgr

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// A faulted session the peer dialled, with a message queued, dials the
// peer's address back unless its policy is a server's (Ceph's
// policy.server waits for the peer even with messages queued); with
// nothing to send it waits in standby.
func TestAcceptedSessionFaultRedials(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		queued bool
		want   connState
	}{
		{"lossless peer with work", LosslessPeer(), true, stConnecting},
		{"lossless peer idle", LosslessPeer(), false, stStandby},
		{"stateful server with work", StatefulServer(), true, stStandby},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := readyServerConn(t, false)
			c.mu.Lock()
			defer c.mu.Unlock()
			require.False(t, c.initiated.Load())
			require.NotEmpty(t, c.dialAddrLocked(), "the peer is bound: %v", c.peerAddrs)
			c.policy = tc.policy
			if tc.queued {
				require.NoError(t, c.queueLocked(&Message{Type: 5}))
			}
			c.faultLocked(errors.New("test fault"))
			require.Equal(t, tc.want, c.state)
			if tc.want == stConnecting {
				require.True(t, c.outgoing, "the client of the socket it dials")
				require.Equal(t, uint64(1), c.connectSeq, "a new attempt of the session")
			} else {
				require.Zero(t, c.connectSeq, "connect_seq moves when the session dials")
			}
		})
	}
}
