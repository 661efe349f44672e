package netstack

import (
	"net"
	"strconv"
	"testing"

	"github.com/asyncmsgr/asyncmsgr/internal/testenv"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/config"
)

func TestSockaddrRoundTripKeepsZone(t *testing.T) {
	lo, err := net.InterfaceByIndex(1)
	if err != nil {
		testenv.Missing(t, "network interface 1 (loopback): %v", err)
	}
	for _, a := range []*net.TCPAddr{
		{IP: net.IPv4(10, 1, 2, 3), Port: 6800},
		{IP: net.ParseIP("fe80::1"), Port: 3300, Zone: lo.Name},
		{IP: net.ParseIP("2001:db8::5"), Port: 1},
	} {
		fam, sa, err := SockaddrOf(a, false)
		require.NoError(t, err)
		if a.IP.To4() != nil {
			require.Equal(t, unix.AF_INET, fam)
		} else {
			require.Equal(t, unix.AF_INET6, fam)
		}
		require.Equal(t, a.String(), TCPAddrOf(sa).String())
	}
	_, sa, err := SockaddrOf(&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "1"}, false)
	require.NoError(t, err)
	require.Equal(t, uint32(1), sa.(*unix.SockaddrInet6).ZoneId, "a numeric zone is the index")
	_, _, err = SockaddrOf(&net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "no-such-if0"}, false)
	require.Error(t, err)
	_, _, err = SockaddrOf(&net.TCPAddr{Port: 70000}, false)
	require.Error(t, err)
	fam, _, err := SockaddrOf(nil, true)
	require.NoError(t, err)
	require.Equal(t, unix.AF_INET6, fam)
	require.Nil(t, TCPAddrOf(&unix.SockaddrUnix{Name: "x"}))
}

func TestListenBacklog(t *testing.T) {
	require.Equal(t, 7, ListenBacklog(SocketOptions{Backlog: 7}, 100))
	require.Equal(t, 100, ListenBacklog(SocketOptions{}, 100))
	require.Equal(t, config.DefaultListenBacklog, ListenBacklog(SocketOptions{}, 0))
}

func TestListenTCP(t *testing.T) {
	setupRan := false
	fd, bound, err := ListenTCP("127.0.0.1:0", 8, false, func(fd int) error {
		setupRan = true
		return nil
	})
	require.NoError(t, err)
	defer unix.Close(fd)
	require.True(t, setupRan)
	require.Equal(t, "127.0.0.1", bound.IP.String())
	require.NotZero(t, bound.Port)
	c, err := net.Dial("tcp", bound.String())
	require.NoError(t, err)
	c.Close()

	// An empty host: the IPv4 wildcard, or dual stack on IPv6.
	fd4, b4, err := ListenTCP(":0", 8, false, nil)
	require.NoError(t, err)
	defer unix.Close(fd4)
	require.NotNil(t, b4.IP.To4())
	require.True(t, b4.IP.IsUnspecified())
	fd6, b6, err := ListenTCP(":0", 8, true, nil)
	require.NoError(t, err)
	defer unix.Close(fd6)
	require.True(t, b6.IP.IsUnspecified())
	c, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(b6.Port)))
	require.NoError(t, err, "the dual-stack wildcard takes IPv4")
	c.Close()

	_, _, err = ListenTCP("127.0.0.1:0", 8, false, func(int) error { return unix.EPERM })
	require.ErrorIs(t, err, unix.EPERM)
	_, _, err = ListenTCP("no-such-host.invalid:0", 8, false, nil)
	require.Error(t, err)
}
