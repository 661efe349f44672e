package rdmainterop

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/asyncmsgr/asyncmsgr/tests/leakcheck"
	"github.com/asyncmsgr/asyncmsgr/tests/monclient"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

// TestCephXRefusalsBetweenMessengersOverRDMA: an asyncmsgr server over the
// rdma stack that requires cephx (secure mode) refuses a wrong key, an
// unknown entity and auth none; it logs each refusal with the peer's
// address and the reason, dispatches nothing, and neither side
// keeps a connection, queue pair or goroutine. A client with the key then
// gets in. (Damaged secure records are tested over TCP, through a proxy, in
// msgr: the records are the same over both stacks.)
func TestCephXRefusalsBetweenMessengersOverRDMA(t *testing.T) {
	dev := rdmatest.DeviceA(t)
	admin, err := cephx.NewSessionKey()
	require.NoError(t, err)
	var log testenv.LogBuffer
	srv, got := cephxServer(t, dev, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 0}, "[client.admin]\n\tkey = "+admin.String()+"\n",
		msgr.WithLogger(log.Logger(msgr.DebugMsLevel(0))))

	srvWant := map[string]string{"wrong key": "did not prove its key (wrong key)", "unknown entity": "cephx: unknown entity client.bob",
		"auth none against cephx-only": "auth method 1 not allowed, and the peer gave up"}
	for _, rf := range monclient.Refusals() {
		t.Run(rf.Name, func(t *testing.T) {
			before := srv.AuthRefusals()
			monclient.Refused(t, rf, rdmatest.Config(dev), admin, msgr.EntityTypeOSD, srv.Addr().String(), got, srv)
			if w := srvWant[rf.Name]; w != "" {
				require.Contains(t, log.String(), w, "the server logs the reason")
				// The client's address: dev.Host on one host, the other
				// veth's in the two-host VM (CI), whose root netns holds both.
				require.Regexp(t, `peer=[0-9.]+:[0-9]+ `, log.String(), "and the peer's address")
				require.Greater(t, srv.AuthRefusals(), before, "and counts the refusal")
			}
		})
	}
	// A client with the key gets in on the same server.
	cli := cephxClient(t, dev, admin)
	c, err := cli.ConnectTo(msgr.EntityTypeOSD, srv.Addr().String())
	require.NoError(t, err)
	require.NoError(t, c.SendMessage(&msgr.Message{Type: 78, Front: []byte("welcome")}))
	select {
	case m := <-got:
		require.Equal(t, "welcome", string(m.Front))
	case <-time.After(30 * time.Second):
		t.Fatalf("the right key was not let in: %v", c.Err())
	}
	// The queue-pair count the leak checks read is live.
	n, err := leakcheck.Counts(srv)
	require.NoError(t, err)
	require.NotZero(t, n.QPs, "the server's rdma stack counts the session's queue pair")
}
