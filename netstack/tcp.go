package netstack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/asyncmsgr/asyncmsgr/config"
)

// The TCP helpers both transports share: the posix stack's sockets and the
// rdma stack's side channel are kernel TCP sockets made the same way.

// StringAddr is an address known only by its "host:port" text (e.g. the
// address a caller asked for, in an error).
type StringAddr string

// Network is "tcp".
func (a StringAddr) Network() string { return "tcp" }

func (a StringAddr) String() string { return string(a) }

// AddrOrNil is s as a StringAddr, or nil when s is empty.
func AddrOrNil(s string) net.Addr {
	if s == "" {
		return nil
	}
	return StringAddr(s)
}

// ToTCPAddr accepts a *net.TCPAddr or any net.Addr whose String resolves as
// a TCP address.
func ToTCPAddr(a net.Addr) (*net.TCPAddr, error) {
	if t, ok := a.(*net.TCPAddr); ok {
		return t, nil
	}
	return net.ResolveTCPAddr("tcp", a.String())
}

// AddrPortOf resolves a as a TCP address.
func AddrPortOf(a net.Addr) (netip.AddrPort, error) {
	ta, err := ToTCPAddr(a)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return ta.AddrPort(), nil
}

// SockaddrOf converts a TCP address to a kernel sockaddr and its family. A
// nil or unspecified IP yields the wildcard of its family (IPv4 when ip is
// nil and wildcardV6 is false). An IPv6 zone names an interface or is its
// index.
func SockaddrOf(a *net.TCPAddr, wildcardV6 bool) (int, unix.Sockaddr, error) {
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

// TCPAddrOf converts a kernel sockaddr back to a *net.TCPAddr, keeping an
// IPv6 zone (nil when sa is not an internet address).
func TCPAddrOf(sa unix.Sockaddr) *net.TCPAddr {
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

// TCPSocket is a non-blocking, close-on-exec TCP socket of family.
func TCPSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}

// ListenBacklog is the backlog of a listener: opts.Backlog, else the
// configured ms_tcp_listen_backlog, else config.DefaultListenBacklog.
func ListenBacklog(opts SocketOptions, configured int) int {
	if opts.Backlog > 0 {
		return opts.Backlog
	}
	if configured > 0 {
		return configured
	}
	return config.DefaultListenBacklog
}

// ListenTCP makes a non-blocking listening TCP socket on addr ("host:port",
// port 0 picks a free one) with SO_REUSEADDR, returning it and its bound
// address. An empty host listens on the IPv4 wildcard, or with dualStack on
// every IPv6 and IPv4 address (IPv4 alone when the kernel has no IPv6).
// setup, when set, configures the socket before it is bound.
func ListenTCP(addr string, backlog int, dualStack bool, setup func(fd int) error) (int, *net.TCPAddr, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, nil, err
	}
	fd, bound, err := listenTCP(ta, backlog, dualStack, setup)
	if err != nil && dualStack && ta.IP == nil && errors.Is(err, unix.EAFNOSUPPORT) {
		fd, bound, err = listenTCP(ta, backlog, false, setup)
	}
	return fd, bound, err
}

func listenTCP(ta *net.TCPAddr, backlog int, wildcardV6 bool, setup func(fd int) error) (int, *net.TCPAddr, error) {
	family, sa, err := SockaddrOf(ta, wildcardV6)
	if err != nil {
		return -1, nil, err
	}
	fd, err := TCPSocket(family)
	if err != nil {
		return -1, nil, err
	}
	fail := func(err error) (int, *net.TCPAddr, error) {
		unix.Close(fd)
		return -1, nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail(os.NewSyscallError("setsockopt SO_REUSEADDR", err))
	}
	if family == unix.AF_INET6 && ta.IP == nil {
		// Dual-stack wildcard, like the Go runtime's ":port".
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	if setup != nil {
		if err := setup(fd); err != nil {
			return fail(err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail(os.NewSyscallError("bind", err))
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fail(os.NewSyscallError("listen", err))
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return fail(os.NewSyscallError("getsockname", err))
	}
	return fd, TCPAddrOf(bound), nil
}

// TCPListener is a listening socket made by ListenTCP as the stacks' server
// sockets hold it: non-blocking accepts, an idempotent Close, and the socket
// closed if the listener is dropped unclosed (a caller's bug).
type TCPListener struct {
	mu      sync.RWMutex // read: an accept in progress; write: Close
	fd      int
	closed  bool
	addr    *net.TCPAddr
	network string // the stack's network name in errors ("tcp", "rdma")
	leak    runtime.Cleanup
}

// NewTCPListener takes ownership of the listening socket fd bound to addr.
func NewTCPListener(fd int, addr *net.TCPAddr, network string) *TCPListener {
	l := &TCPListener{fd: fd, addr: addr, network: network}
	l.leak = runtime.AddCleanup(l, closeLeakedFD, fd)
	return l
}

func closeLeakedFD(fd int) { unix.Close(fd) }

// OpError is err as a *net.OpError of op on the listener's address.
func (l *TCPListener) OpError(op string, err error) error {
	return &net.OpError{Op: op, Net: l.network, Addr: l.addr, Err: err}
}

// Accept takes one pending connection (AcceptNonblock): its fd, or
// ErrWouldBlock; other errors are OpErrors, wrapping net.ErrClosed after
// Close.
func (l *TCPListener) Accept() (int, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return -1, l.OpError("accept", net.ErrClosed)
	}
	nfd, err := AcceptNonblock(l.fd)
	if err == ErrWouldBlock {
		return -1, err
	}
	if err != nil {
		return -1, l.OpError("accept", err)
	}
	return nfd, nil
}

// Addr is the bound address, with the real port.
func (l *TCPListener) Addr() net.Addr { return l.addr }

// FD is the listening socket; readable when Accept may succeed.
func (l *TCPListener) FD() int { return l.fd }

// Close closes the listening socket; idempotent.
func (l *TCPListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.leak.Stop()
	if err := unix.Close(l.fd); err != nil {
		return l.OpError("close", os.NewSyscallError("close", err))
	}
	return nil
}
