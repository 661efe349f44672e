package posixfallback

import (
	"fmt"
	"net"
	"strconv"

	"golang.org/x/sys/unix"
)

// sockaddrOf converts a TCP address to a kernel sockaddr and its family. A nil
// or unspecified IP yields the wildcard of its family (IPv4 when ip is nil
// and wildcardV6 is false).
func sockaddrOf(a *net.TCPAddr, wildcardV6 bool) (int, unix.Sockaddr, error) {
	if a == nil {
		a = &net.TCPAddr{}
	}
	if a.Port < 0 || a.Port > 0xffff {
		return 0, nil, fmt.Errorf("invalid port %d", a.Port)
	}
	if a.IP == nil {
		if wildcardV6 {
			return unix.AF_INET6, &unix.SockaddrInet6{Port: a.Port}, nil
		}
		return unix.AF_INET, &unix.SockaddrInet4{Port: a.Port}, nil
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], ip4)
		return unix.AF_INET, sa, nil
	}
	ip6 := a.IP.To16()
	if ip6 == nil {
		return 0, nil, fmt.Errorf("invalid IP %v", a.IP)
	}
	sa := &unix.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], ip6)
	if a.Zone != "" {
		if ifi, err := net.InterfaceByName(a.Zone); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		} else if n, err := strconv.Atoi(a.Zone); err == nil {
			sa.ZoneId = uint32(n)
		} else {
			return 0, nil, fmt.Errorf("unknown IPv6 zone %q", a.Zone)
		}
	}
	return unix.AF_INET6, sa, nil
}

// tcpAddrOf converts a kernel sockaddr back to a *net.TCPAddr (nil when sa is
// not an internet address).
func tcpAddrOf(sa unix.Sockaddr) *net.TCPAddr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IPv4(sa.Addr[0], sa.Addr[1], sa.Addr[2], sa.Addr[3]), Port: sa.Port}
	case *unix.SockaddrInet6:
		ip := make(net.IP, net.IPv6len)
		copy(ip, sa.Addr[:])
		a := &net.TCPAddr{IP: ip, Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			} else {
				a.Zone = strconv.Itoa(int(sa.ZoneId))
			}
		}
		return a
	}
	return nil
}

// toTCPAddr accepts a *net.TCPAddr or any net.Addr whose String resolves as
// a TCP address.
func toTCPAddr(a net.Addr) (*net.TCPAddr, error) {
	if t, ok := a.(*net.TCPAddr); ok {
		return t, nil
	}
	return net.ResolveTCPAddr("tcp", a.String())
}
