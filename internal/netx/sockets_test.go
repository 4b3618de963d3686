package netx_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/maillab/maillab/internal/netx"
)

// shortTimeout bounds dials that are expected to time out; it keeps the
// tests fast and is never compared with a measured duration.
const shortTimeout = 100 * time.Millisecond

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestBlackhole(t *testing.T) {
	bh, err := netx.ListenBlackhole("127.0.0.1:0")
	if err != nil {
		t.Fatalf("ListenBlackhole() = %v", err)
	}
	addr := bh.Addr().String()
	if tcp, ok := bh.Addr().(*net.TCPAddr); !ok || tcp.Port == 0 || !tcp.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("Addr() = %v, want 127.0.0.1 with a port", bh.Addr())
	}

	dials := []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"dialer timeout", func() (net.Conn, error) { return (&net.Dialer{Timeout: shortTimeout}).Dial("tcp", addr) }},
		{"context deadline", func() (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
			defer cancel()
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}},
		{"again: the port stays black", func() (net.Conn, error) { return (&net.Dialer{Timeout: shortTimeout}).Dial("tcp", addr) }},
	}
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			c, err := d.dial()
			if err == nil {
				c.Close()
				t.Fatalf("Dial(%s) = connected, want a timeout", addr)
			}
			if !isTimeout(err) {
				t.Errorf("Dial(%s) = %v, want a timeout (net.Error Timeout())", addr, err)
			}
		})
	}

	if err := bh.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("Listen(%s) after Close = %v, want the port free", addr, err)
	}
	ln.Close()
}

// TestBlackholeListener turns a listener nobody accepts on into a
// Blackhole in place.
func TestBlackholeListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	bh, err := netx.BlackholeListener(ln.(*net.TCPListener))
	if err != nil {
		ln.Close()
		t.Fatalf("BlackholeListener() = %v", err)
	}
	if bh.Addr().String() != addr {
		t.Errorf("Addr() = %v, want the listener's %s", bh.Addr(), addr)
	}
	if c, err := (&net.Dialer{Timeout: shortTimeout}).Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("Dial(%s) = connected, want a timeout", addr)
	} else if !isTimeout(err) {
		t.Errorf("Dial(%s) = %v, want a timeout", addr, err)
	}
	if err := bh.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept() on the listener after Close = %v, want net.ErrClosed (the Blackhole owns it)", err)
	}
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Errorf("Dial(%s) after Close = %v, want ECONNREFUSED (nothing listens)", addr, err)
	}
}

// TestRefuserBeside switches a listening port to refusing without a
// moment where the port is free.
func TestRefuserBeside(t *testing.T) {
	ln, err := netx.ListenConfig.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	r, err := netx.RefuserBeside(ln)
	if err != nil {
		ln.Close()
		t.Fatalf("RefuserBeside() = %v", err)
	}
	defer r.Close()
	if r.Addr().String() != addr {
		t.Errorf("Addr() = %v, want %s", r.Addr(), addr)
	}
	// While ln listens, it still gets the connections.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("Dial(%s) while the listener is open = %v", addr, err)
	}
	c.Close()
	ln.Close()
	if _, err := net.DialTimeout("tcp", addr, 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial(%s) after the listener closed = %v, want ECONNREFUSED", addr, err)
	}
	// Sockets without SO_REUSEPORT cannot take the port.
	if other, err := net.Listen("tcp", addr); err == nil {
		other.Close()
		t.Errorf("Listen(%s) beside the Refuser = nil, want EADDRINUSE", addr)
	}

	// A listener opened without ListenConfig cannot have a Refuser beside it.
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if r2, err := netx.RefuserBeside(plain); err == nil {
		r2.Close()
		t.Errorf("RefuserBeside(plain listener) = nil, want EADDRINUSE")
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("RefuserBeside(plain listener) = %v, want EADDRINUSE", err)
	}
}

func TestRefuser(t *testing.T) {
	r, err := netx.ListenRefuser("127.0.0.1:0")
	if err != nil {
		t.Fatalf("ListenRefuser() = %v", err)
	}
	defer r.Close()
	addr := r.Addr().String()
	for i := range 3 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("Dial(%s) #%d = connected, want refused", addr, i)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("Dial(%s) #%d = %v, want ECONNREFUSED", addr, i, err)
		}
	}
	// The port stays reserved: nobody else can listen on it.
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Errorf("Listen(%s) while a Refuser holds it = nil, want EADDRINUSE", addr)
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Listen(%s) while a Refuser holds it = %v, want EADDRINUSE", addr, err)
	}
}

func TestListenAddressErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name   string
		addr   string
		inUse  bool
		listen func(string) (func() error, error)
	}{
		{name: "refuser host name", addr: "localhost:0", listen: refuser},
		{name: "refuser no port", addr: "127.0.0.1", listen: refuser},
		{name: "refuser port taken", addr: taken.Addr().String(), inUse: true, listen: refuser},
		{name: "blackhole port taken", addr: taken.Addr().String(), inUse: true, listen: blackhole},
		{name: "blackhole bad port", addr: "127.0.0.1:http", listen: blackhole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			closeFn, err := tt.listen(tt.addr)
			if err == nil {
				closeFn()
				t.Fatalf("listen(%q) = nil, want an error", tt.addr)
			}
			if tt.inUse && !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("listen(%q) = %v, want EADDRINUSE", tt.addr, err)
			}
		})
	}
}

func refuser(addr string) (func() error, error) {
	r, err := netx.ListenRefuser(addr)
	if err != nil {
		return nil, err
	}
	return r.Close, nil
}

func blackhole(addr string) (func() error, error) {
	b, err := netx.ListenBlackhole(addr)
	if err != nil {
		return nil, err
	}
	return b.Close, nil
}

func TestRefuserIPv6(t *testing.T) {
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
	r, err := netx.ListenRefuser("[::1]:0")
	if err != nil {
		t.Fatalf("ListenRefuser([::1]:0) = %v", err)
	}
	defer r.Close()
	if _, err := net.DialTimeout("tcp", r.Addr().String(), 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial(%s) = %v, want ECONNREFUSED", r.Addr(), err)
	}
}

func TestUnreachableUDP(t *testing.T) {
	u, err := netx.ReserveUnreachableUDP("127.0.0.1:0")
	if err != nil {
		t.Fatalf("ReserveUnreachableUDP() = %v", err)
	}
	defer u.Close()
	addr := u.Addr().String()

	// A DNS query as a resolver sends it: the answer is ICMP port
	// unreachable, which a connected UDP socket reports as ECONNREFUSED.
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	query := []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, 'm', 'a', 'i', 'l', 0, 0, 1, 0, 1}
	if _, err := c.Write(query); err != nil {
		t.Fatalf("Write() = %v", err)
	}
	buf := make([]byte, 512)
	_, err = c.Read(buf)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Read() after a query to %s = %v, want ECONNREFUSED", addr, err)
	}

	// The port stays reserved.
	if pc, err := net.ListenPacket("udp", addr); err == nil {
		pc.Close()
		t.Errorf("ListenPacket(%s) while reserved = nil, want EADDRINUSE", addr)
	}

	if err := u.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if _, err := netx.ReserveUnreachableUDP("127.0.0.1:notaport"); err == nil {
		t.Errorf("ReserveUnreachableUDP(bad port) = nil, want an error")
	}
}

// TestBlackholeListenerOnEveryAddress: a lab bound to 0.0.0.0 (in a
// container) drops connections too; the filler must reach the socket
// through loopback.
func TestBlackholeListenerOnEveryAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := netx.BlackholeListener(ln.(*net.TCPListener))
	if err != nil {
		t.Fatalf("BlackholeListener(%s) = %v", ln.Addr(), err)
	}
	defer b.Close()
	port := b.Addr().(*net.TCPAddr).Port
	_, err = net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)), 200*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial the blackhole on every address = %v, want a timeout", err)
	}
}
