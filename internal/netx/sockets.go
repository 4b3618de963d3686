// Package netx holds the socket-level tricks the lab's network faults are
// made of: a port where connect() times out, a port that refuses, a UDP port
// that answers with ICMP "port unreachable", and connection wrappers that
// delay, throttle, stall or reset. Everything works unprivileged on
// loopback.
package netx

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// Blackhole is a TCP port where connection attempts time out, the way they
// do behind a firewall rule that DROPs SYNs.
//
// How: the socket listens with a backlog of 0 and never accepts; one
// filler connection from the lab itself occupies the only accept-queue
// slot. Linux drops a SYN while the accept queue is full (even with
// syncookies), so every further client's SYNs vanish and its connect()
// runs into its own timeout.
type Blackhole struct {
	closeSocket func() error
	filler      net.Conn
	addr        *net.TCPAddr
}

// ListenBlackhole makes a Blackhole on addr ("127.0.0.1:0" picks a port).
func ListenBlackhole(addr string) (*Blackhole, error) {
	fd, tcpAddr, err := boundSocket(addr, false)
	if err != nil {
		return nil, err
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("blackhole listen %s: %w", tcpAddr, err)
	}
	return fill(&Blackhole{closeSocket: func() error { return syscall.Close(fd) }, addr: tcpAddr})
}

// BlackholeListener turns a listener that nobody accepts on into a
// Blackhole in place, so the port is never free in between: listen(2) on
// a listening socket sets its backlog anew. The Blackhole owns ln.
func BlackholeListener(ln *net.TCPListener) (*Blackhole, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), 0) }); err != nil {
		return nil, err
	}
	if lerr != nil {
		return nil, fmt.Errorf("blackhole listen %s: %w", ln.Addr(), lerr)
	}
	return fill(&Blackhole{closeSocket: ln.Close, addr: ln.Addr().(*net.TCPAddr)})
}

// dialable is the address a local client dials to reach addr: loopback
// for a socket bound to every address (dialing [::] fails without IPv6).
func dialable(addr *net.TCPAddr) string {
	if addr.IP == nil || addr.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(addr.Port))
	}
	return addr.String()
}

// fill occupies the accept queue's one slot and checks the result.
func fill(b *Blackhole) (*Blackhole, error) {
	var err error
	// Fill the queue. The filler completes the handshake (it fits the one
	// slot); the kernel then drops all other SYNs.
	d := net.Dialer{Timeout: 2 * time.Second}
	b.filler, err = d.Dial("tcp", dialable(b.addr))
	if err != nil {
		b.closeSocket()
		return nil, fmt.Errorf("blackhole filler %s: %w", b.addr, err)
	}
	if err := b.verifyDropping(); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// verifyDropping checks that a second connect does not complete, so a
// kernel that behaves differently fails loudly instead of serving a
// "blackhole" that answers.
func (b *Blackhole) verifyDropping() error {
	d := net.Dialer{Timeout: 50 * time.Millisecond}
	c, err := d.Dial("tcp", dialable(b.addr))
	if err == nil {
		c.Close()
		return fmt.Errorf("blackhole %s: a second connection was accepted; this kernel does not drop SYNs on a full accept queue", b.addr)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return fmt.Errorf("blackhole %s: probe: %w", b.addr, err)
}

// Addr returns the port's address.
func (b *Blackhole) Addr() net.Addr { return b.addr }

// Close frees the port.
func (b *Blackhole) Close() error {
	if b.filler != nil {
		b.filler.Close()
	}
	return b.closeSocket()
}

// Refuser is a TCP port that refuses connections (RST), the way a host
// with nothing listening or a REJECT rule does. The socket is bound but
// never listens, so the port stays reserved for the lab.
type Refuser struct {
	fd   int
	addr *net.TCPAddr
}

// ListenRefuser reserves addr and refuses every connection to it.
func ListenRefuser(addr string) (*Refuser, error) {
	fd, tcpAddr, err := boundSocket(addr, false)
	if err != nil {
		return nil, err
	}
	return &Refuser{fd: fd, addr: tcpAddr}, nil
}

// RefuserBeside binds a Refuser to the address of ln, which must have
// been opened with ListenConfig (SO_REUSEPORT), before the caller closes
// ln: the port is never free in between, and once ln is closed no socket
// listens on it, so connections are refused.
func RefuserBeside(ln net.Listener) (*Refuser, error) {
	fd, tcpAddr, err := boundSocket(ln.Addr().String(), true)
	if err != nil {
		return nil, err
	}
	return &Refuser{fd: fd, addr: tcpAddr}, nil
}

// ListenConfig is a net.ListenConfig whose sockets allow a Refuser to be
// bound beside them (SO_REUSEPORT; only sockets of the same user may share
// the port).
var ListenConfig = net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1) })
	if err != nil {
		return err
	}
	return serr
}}

// soReusePort is SO_REUSEPORT on Linux.
const soReusePort = 0xf

// Addr returns the port's address.
func (r *Refuser) Addr() net.Addr { return r.addr }

// Close frees the port.
func (r *Refuser) Close() error { return syscall.Close(r.fd) }

func boundSocket(addr string, reusePort bool) (int, *net.TCPAddr, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return -1, nil, fmt.Errorf("bad address %q: %w", addr, err)
	}
	family := syscall.AF_INET
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, os.NewSyscallError("socket", err)
	}
	if reusePort {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, soReusePort, 1); err != nil {
			syscall.Close(fd)
			return -1, nil, os.NewSyscallError("setsockopt", err)
		}
	}
	var sa syscall.Sockaddr
	if family == syscall.AF_INET {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	} else {
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return -1, nil, &net.OpError{Op: "listen", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: os.NewSyscallError("bind", err)}
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return -1, nil, os.NewSyscallError("getsockname", err)
	}
	var tcpAddr *net.TCPAddr
	switch a := got.(type) {
	case *syscall.SockaddrInet4:
		tcpAddr = &net.TCPAddr{IP: net.IP(a.Addr[:]).To4(), Port: a.Port}
	case *syscall.SockaddrInet6:
		tcpAddr = &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return fd, tcpAddr, nil
}

// UnreachableUDP reserves a UDP port to which datagrams from anyone get an
// ICMP "port unreachable" answer (a client sees ECONNREFUSED), the way a
// host without a DNS server answers. How: a UDP socket connected to a
// fixed peer only receives from that peer, so for everyone else no socket
// matches and the kernel answers ICMP.
type UnreachableUDP struct {
	c *net.UDPConn
}

// ReserveUnreachableUDP binds addr ("127.0.0.1:0" picks a port).
func ReserveUnreachableUDP(addr string) (*UnreachableUDP, error) {
	local, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	// Port 9 (discard) on the same host: nothing is expected from there.
	peer := &net.UDPAddr{IP: local.IP, Port: 9}
	if local.IP == nil || local.IP.IsUnspecified() {
		peer.IP = net.IPv4(127, 0, 0, 1)
	}
	c, err := net.DialUDP("udp", local, peer)
	if err != nil {
		return nil, fmt.Errorf("reserve udp %s: %w", addr, err)
	}
	return &UnreachableUDP{c: c}, nil
}

// Addr returns the reserved address.
func (u *UnreachableUDP) Addr() net.Addr { return u.c.LocalAddr() }

// Close frees the port.
func (u *UnreachableUDP) Close() error { return u.c.Close() }

// Reset closes c with an RST instead of a FIN (SO_LINGER 0), the way a
// middlebox or a crashing server cuts a connection. c may be any wrapper
// whose innermost connection is a *net.TCPConn.
func Reset(c net.Conn) error {
	if tc, ok := Unwrap(c).(*net.TCPConn); ok {
		tc.SetLinger(0)
		return tc.Close()
	}
	return c.Close()
}

// Unwrap follows NetConn methods down to the innermost connection.
func Unwrap(c net.Conn) net.Conn {
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return c
		}
		next := u.NetConn()
		if next == nil || next == c {
			return c
		}
		c = next
	}
}
