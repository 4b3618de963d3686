//go:build e2e

package realservers

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Front is a TCP listener on 127.0.0.1 that forwards each connection to a
// backend server, first sending the PROXY protocol version 1 header
// (HAProxy's proxy-protocol.txt §2.1) that names Client as the connection's
// source. Behind it, a server that trusts the header (Dovecot's
// haproxy = yes, Postfix's smtpd_upstream_proxy_protocol = haproxy) sees a
// client at Client instead of its own address. Nothing else is changed:
// the bytes are copied as they come, in both directions, and each half
// close is passed on.
type Front struct {
	// Addr is the "127.0.0.1:port" clients dial.
	Addr string
	// Port is the port of Addr.
	Port int
	// Client is the source address the header claims.
	Client net.IP
	// Backend is the server's "host:port".
	Backend string
	// plain is set for a front that sends no header (NewPlainFront).
	plain bool

	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// NewFront listens on a free port of 127.0.0.1 and forwards to backend
// with client as the claimed source (an IPv4 address).
func NewFront(backend string, client net.IP) (*Front, error) {
	if client.To4() == nil {
		return nil, fmt.Errorf("front for %s: client %v is not IPv4", backend, client)
	}
	return newFront(backend, client, false)
}

// NewPlainFront is a front that sends no PROXY header, for servers that
// do not speak PROXY v1 (OpenSMTPD knows v2 only): the server sees the
// front's own address, 127.0.0.1, as the client.
func NewPlainFront(backend string) (*Front, error) {
	return newFront(backend, net.IPv4(127, 0, 0, 1), true)
}

func newFront(backend string, client net.IP, plain bool) (*Front, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("front for %s: %w", backend, err)
	}
	f := &Front{
		Addr:    ln.Addr().String(),
		Port:    ln.Addr().(*net.TCPAddr).Port,
		Client:  client.To4(),
		Backend: backend,
		plain:   plain,
		ln:      ln,
		conns:   map[net.Conn]struct{}{},
	}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

// ProxyHeader returns the PROXY v1 line for a connection from srcPort to
// dst (proxy-protocol.txt §2.1: "PROXY TCP4 src dst srcport dstport\r\n").
func ProxyHeader(src net.IP, srcPort int, dst *net.TCPAddr) string {
	return fmt.Sprintf("PROXY TCP4 %s %s %d %d\r\n", src.To4(), dst.IP.To4(), srcPort, dst.Port)
}

func (f *Front) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go f.serve(c)
	}
}

// track registers c for Close; false when the front is closed.
func (f *Front) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Front) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

func (f *Front) serve(c net.Conn) {
	defer f.wg.Done()
	defer f.untrack(c)
	b, err := net.DialTimeout("tcp", f.Backend, 5*time.Second)
	if err != nil {
		// The server is gone: the client sees a reset, as it would.
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		return
	}
	if !f.track(b) {
		b.Close()
		return
	}
	defer f.untrack(b)
	src := c.RemoteAddr().(*net.TCPAddr)
	if !f.plain {
		if _, err := io.WriteString(b, ProxyHeader(f.Client, src.Port, c.LocalAddr().(*net.TCPAddr))); err != nil {
			return
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(b, c)
	}()
	pipe(c, b)
	<-done
}

// pipe copies src to dst until src ends, then half-closes dst, or closes
// both on an error so that the other direction ends too.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		dst.Close()
		src.Close()
		return
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// Close stops accepting, closes every open connection and waits for the
// forwarding goroutines. It is safe to call more than once.
func (f *Front) Close() error {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	err := f.ln.Close()
	f.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
