package rdmainterop

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/msgr"
	"github.com/asyncmsgr/asyncmsgr/msgr/cephx"
	"github.com/asyncmsgr/asyncmsgr/tests/rdmatest"
)

// TestCephXAuthorizerOverRDMA is cephx Phase III over the rdma stack, in
// secure mode: a client gets an OSD ticket from an asyncmsgr monitor and
// with it opens a session with an OSD that does not know its key.
func TestCephXAuthorizerOverRDMA(t *testing.T) {
	dev := rdmatest.DeviceA(t)
	admin, err := cephx.NewSessionKey()
	require.NoError(t, err)
	svc, err := cephx.NewSessionKey()
	require.NoError(t, err)
	osdKey := "[osd.]\n\tkey = " + svc.String() + "\n"
	mon, monGot := cephxServer(t, dev, msgr.EntityName{Type: msgr.EntityTypeMon, Num: 0},
		"[client.admin]\n\tkey = "+admin.String()+"\n"+osdKey)
	osd, osdGot := cephxServer(t, dev, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 1}, osdKey)

	cli := cephxClient(t, dev, admin)
	for _, step := range []struct {
		name string
		peer uint8
		m    *msgr.Messenger
		got  chan *msgr.Message
	}{{"the monitor", msgr.EntityTypeMon, mon, monGot}, {"the osd, by ticket", msgr.EntityTypeOSD, osd, osdGot}} {
		c, err := cli.ConnectTo(step.peer, step.m.Addr().String())
		require.NoError(t, err, "step: connect to %s", step.name)
		require.NoError(t, c.SendMessage(&msgr.Message{Type: 9, Front: []byte(step.name)}))
		select {
		case m := <-step.got:
			require.Equal(t, step.name, string(m.Front))
		case <-time.After(30 * time.Second):
			t.Fatalf("step: %s: not delivered (client error %v)", step.name, c.Err())
		}
		if step.peer == msgr.EntityTypeMon {
			require.Equal(t, []uint8{msgr.EntityTypeOSD}, cli.ServiceTickets(), "step: the OSD ticket")
		}
	}
	require.Zero(t, osd.AuthRefusals())
}
