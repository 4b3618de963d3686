package netx_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/maillab/maillab/internal/netx"
)

// ioDeadline bounds every read and write in these tests, so a broken
// wrapper fails the test instead of hanging it.
const ioDeadline = 10 * time.Second

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { s.Close(); c.Close() })
	deadline := time.Now().Add(ioDeadline)
	s.SetDeadline(deadline)
	c.SetDeadline(deadline)
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// readUntilError reads c until an error and returns what came first.
func readUntilError(c net.Conn) ([]byte, error) {
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			return got.Bytes(), err
		}
	}
}

// wrapper is a connection that exposes its inner one, like the netx ones.
type wrapper struct {
	net.Conn
	inner net.Conn
}

func (w *wrapper) NetConn() net.Conn { return w.inner }

func TestUnwrap(t *testing.T) {
	server, _ := tcpPair(t)
	pipe, _ := net.Pipe()
	defer pipe.Close()
	throttle := netx.NewThrottle(server, 1<<20)
	tests := []struct {
		name string
		c    net.Conn
		want net.Conn
	}{
		{"plain", server, server},
		{"one wrapper", &netx.Wrapped{Conn: server}, server},
		{"nested", netx.NewResetAfterGreeting(netx.NewStallTLS(throttle, nil), false), server},
		{"NetConn nil", &wrapper{Conn: pipe}, nil}, // itself
		{"NetConn itself", selfWrapper(pipe), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = tt.c
			}
			if got := netx.Unwrap(tt.c); got != want {
				t.Errorf("Unwrap(%T) = %T %p, want %T %p", tt.c, got, got, want, want)
			}
		})
	}
}

func selfWrapper(c net.Conn) net.Conn {
	w := &wrapper{Conn: c}
	w.inner = w
	return w
}

// TestReset: the peer of a reset connection reads ECONNRESET, through any
// number of wrappers.
func TestReset(t *testing.T) {
	tests := []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"TCP conn", func(c net.Conn) net.Conn { return c }},
		{"wrapped", func(c net.Conn) net.Conn { return &netx.Wrapped{Conn: c} }},
		{"nested wrappers", func(c net.Conn) net.Conn {
			return netx.NewDelayFirstWrite(netx.NewThrottle(&netx.Wrapped{Conn: c}, 1<<20), 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := tcpPair(t)
			if err := netx.Reset(tt.wrap(server)); err != nil {
				t.Fatalf("Reset() = %v", err)
			}
			if _, err := readUntilError(client); !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client Read after Reset = %v, want ECONNRESET", err)
			}
		})
	}

	t.Run("not TCP", func(t *testing.T) {
		a, b := net.Pipe()
		if err := netx.Reset(a); err != nil {
			t.Fatalf("Reset(pipe) = %v", err)
		}
		if _, err := b.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("Read from the other end of a Reset pipe = %v, want io.EOF (a plain close)", err)
		}
	})
}

func TestDelayFirstWrite(t *testing.T) {
	t.Run("passes data once the delay is over", func(t *testing.T) {
		server, client := tcpPair(t)
		d := netx.NewDelayFirstWrite(server, time.Millisecond)
		for _, line := range []string{"220 mail.example.test ESMTP\r\n", "250 OK\r\n"} {
			if n, err := d.Write([]byte(line)); err != nil || n != len(line) {
				t.Fatalf("Write(%q) = %d, %v", line, n, err)
			}
		}
		d.Close()
		got, _ := readUntilError(client)
		if want := "220 mail.example.test ESMTP\r\n250 OK\r\n"; string(got) != want {
			t.Errorf("client read %q, want %q", got, want)
		}
	})

	t.Run("only the first write waits", func(t *testing.T) {
		server, client := tcpPair(t)
		d := netx.NewDelayFirstWrite(server, 0)
		if _, err := d.Write([]byte("first\n")); err != nil {
			t.Fatal(err)
		}
		d.Delay = time.Hour // would hang the test if a later write waited
		if _, err := d.Write([]byte("second\n")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 13)
		if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "first\nsecond\n" {
			t.Errorf("client read %q, %v, want first and second", buf, err)
		}
	})

	t.Run("holds the greeting until then", func(t *testing.T) {
		server, client := tcpPair(t)
		d := netx.NewDelayFirstWrite(server, time.Hour)
		wrote := make(chan error, 1)
		go func() {
			_, err := d.Write([]byte("220 late\r\n"))
			wrote <- err
		}()
		client.SetReadDeadline(time.Now().Add(shortTimeout))
		if n, err := client.Read(make([]byte, 16)); !isTimeout(err) {
			t.Errorf("client Read during the delay = %d, %v, want a timeout (nothing sent yet)", n, err)
		}
		// Close ends the delay at once: the Write returns.
		if err := d.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		<-wrote
	})

	t.Run("close during the delay sends nothing", func(t *testing.T) {
		inner := &gateConn{wrote: make(chan []byte, 1)}
		d := netx.NewDelayFirstWrite(inner, time.Hour)
		outer := make(chan error, 1)
		go func() {
			_, err := d.Write([]byte("220 late\r\n"))
			outer <- err
		}()
		var writeErr error
		// The inner Close waits for the delayed Write to finish, so
		// whatever that Write does happens before the connection is gone.
		inner.onClose = func() {
			select {
			case writeErr = <-outer:
			case <-time.After(ioDeadline):
				t.Error("the delayed Write did not return after Close")
			}
		}
		d.Close()
		if len(inner.wrote) != 0 || !errors.Is(writeErr, net.ErrClosed) {
			t.Errorf("Write held by DelayFirstWrite = %v with %d inner writes after Close; want nothing written and net.ErrClosed", writeErr, len(inner.wrote))
		}
	})
}

// gateConn is an inner connection that records writes and runs onClose
// when closed.
type gateConn struct {
	net.Conn // nil: only Write and Close are used
	wrote    chan []byte
	onClose  func()
}

func (g *gateConn) Write(b []byte) (int, error) {
	g.wrote <- bytes.Clone(b)
	return len(b), nil
}

func (g *gateConn) Close() error {
	if g.onClose != nil {
		g.onClose()
	}
	return nil
}

// payload returns n bytes of varied content, so a reordering shows.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestThrottle(t *testing.T) {
	const rate = 200_000 // bytes/s: 20 kB chunks, ~0.15 s per direction
	data := payload(30_000)

	t.Run("server writes", func(t *testing.T) {
		server, client := tcpPair(t)
		th := netx.NewThrottle(server, rate)
		errc := make(chan error, 1)
		go func() {
			n, err := th.Write(data)
			if err == nil && n != len(data) {
				err = io.ErrShortWrite
			}
			errc <- err
		}()
		got := make([]byte, len(data))
		if _, err := io.ReadFull(client, got); err != nil {
			t.Fatalf("client ReadFull = %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("Throttle.Write = %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("client received %d bytes that differ from the %d sent", len(got), len(data))
		}
	})

	t.Run("server reads", func(t *testing.T) {
		server, client := tcpPair(t)
		th := netx.NewThrottle(server, rate)
		go client.Write(data)
		var got []byte
		buf := make([]byte, 64<<10)
		for len(got) < len(data) {
			n, err := th.Read(buf)
			if n > rate/10 {
				t.Fatalf("Throttle.Read returned %d bytes at once, want at most %d (a tenth of the rate)", n, rate/10)
			}
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("Throttle.Read = %v after %d bytes", err, len(got))
			}
		}
		if !bytes.Equal(got, data) {
			t.Errorf("server read %d bytes that differ from the %d sent", len(got), len(data))
		}
	})

	t.Run("shrinks the socket buffers", func(t *testing.T) {
		server, _ := tcpPair(t)
		netx.NewThrottle(server, rate)
		raw, err := server.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var rcv int
		var serr error
		raw.Control(func(fd uintptr) { rcv, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
		// Linux doubles the value set and applies a minimum.
		if serr != nil || rcv > 2*4096*2 {
			t.Errorf("SO_RCVBUF after NewThrottle = %d, %v, want about 4096", rcv, serr)
		}
	})

	t.Run("write error is returned", func(t *testing.T) {
		server, client := tcpPair(t)
		th := netx.NewThrottle(server, rate)
		client.SetLinger(0)
		client.Close()
		var err error
		for i := 0; i < 100 && err == nil; i++ {
			_, err = th.Write(data[:1000])
		}
		if err == nil {
			t.Errorf("Throttle.Write to a reset peer kept succeeding")
		}
	})
}

func TestResetAfterGreeting(t *testing.T) {
	server, client := tcpPair(t)
	r := netx.NewResetAfterGreeting(server, false)
	var resets atomic.Int32
	r.OnReset = func() { resets.Add(1) }

	const greeting = "220 mail.example.test ESMTP\r\n"
	if _, err := r.Write([]byte(greeting)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(greeting))
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != greeting {
		t.Fatalf("client read %q, %v, want the greeting", buf, err)
	}
	if _, err := client.Write([]byte("EHLO client.example.test\r\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Read(make([]byte, 512)); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Errorf("server Read after the greeting = %d, %v, want 0, net.ErrClosed", n, err)
	}
	if got := resets.Load(); got != 1 {
		t.Errorf("OnReset called %d times, want 1", got)
	}
	if _, err := readUntilError(client); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client Read after its first command = %v, want ECONNRESET", err)
	}
}

func TestResetAfterGreetingReadFirst(t *testing.T) {
	// A client-first exchange (no greeting yet) passes through.
	server, client := tcpPair(t)
	r := netx.NewResetAfterGreeting(server, false)
	client.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "hello" {
		t.Errorf("Read before any write = %q, %v, want hello", buf, err)
	}
}

// selfSignedConfig returns a server TLS config for tests of wrappers
// below TLS.
func selfSignedConfig(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mail.example.test"},
		DNSNames:     []string{"mail.example.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// TestResetAfterGreetingTLS: on an implicit-TLS port the handshake's
// writes do not count; the greeting sent over TLS does.
func TestResetAfterGreetingTLS(t *testing.T) {
	server, client := tcpPair(t)
	r := netx.NewResetAfterGreeting(&netx.Wrapped{Conn: server}, true)
	var resets atomic.Int32
	r.OnReset = func() { resets.Add(1) }
	srv := tls.Server(r, selfSignedConfig(t))
	const greeting = "* OK IMAP4rev1 ready\r\n"
	serverErr := make(chan error, 1)
	go func() {
		if err := srv.Handshake(); err != nil {
			serverErr <- err
			return
		}
		// The lab's TLS listener tells the wrappers below it.
		netx.NotifyHandshakeDone(&netx.Wrapped{Conn: r})
		if _, err := srv.Write([]byte(greeting)); err != nil {
			serverErr <- err
			return
		}
		_, err := srv.Read(make([]byte, 64))
		serverErr <- err
	}()

	tc := tls.Client(client, &tls.Config{InsecureSkipVerify: true})
	buf := make([]byte, len(greeting))
	if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != greeting {
		t.Fatalf("client read %q, %v, want the greeting over TLS", buf, err)
	}
	if _, err := tc.Write([]byte("a1 CAPABILITY\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := <-serverErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("server Read of the first command = %v, want net.ErrClosed", err)
	}
	if _, err := tc.Read(make([]byte, 64)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client Read after its first command = %v, want ECONNRESET", err)
	}
	if got := resets.Load(); got != 1 {
		t.Errorf("OnReset called %d times, want 1", got)
	}
}

func TestStallTLS(t *testing.T) {
	server, client := tcpPair(t)
	var stalls atomic.Int32
	s := netx.NewStallTLS(server, func() { stalls.Add(1) })

	// Plaintext passes both ways, as before STARTTLS.
	if _, err := s.Write([]byte("220 ready\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "220 ready\r\n" {
		t.Fatalf("client read %q, %v, want the plaintext greeting", buf, err)
	}
	client.Write([]byte("STARTTLS\r\n"))
	if _, err := io.ReadFull(s, buf[:10]); err != nil || string(buf[:10]) != "STARTTLS\r\n" {
		t.Fatalf("server read %q, %v, want STARTTLS", buf[:10], err)
	}
	if _, err := s.Write([]byte("220 go ahead\r\n")); err != nil {
		t.Fatal(err)
	}
	buf = make([]byte, 14)
	if _, err := io.ReadFull(client, buf); err != nil {
		t.Fatal(err)
	}

	// From the ClientHello on, the server's handshake goes nowhere.
	serverDone := make(chan error, 1)
	srv := tls.Server(s, selfSignedConfig(t))
	go func() { serverDone <- srv.Handshake() }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*shortTimeout)
	defer cancel()
	err := tls.Client(client, &tls.Config{InsecureSkipVerify: true}).HandshakeContext(ctx)
	if !isTimeout(err) {
		t.Errorf("client handshake through StallTLS = %v, want a timeout", err)
	}
	client.Close()
	<-serverDone
	if got := stalls.Load(); got != 1 {
		t.Errorf("onStall called %d times, want 1", got)
	}
}

func TestResetAfterBytes(t *testing.T) {
	tests := []struct {
		name      string
		limit     int64
		writes    []string
		wantN     []int  // n returned by each write
		wantErr   []bool // each write fails with net.ErrClosed
		wantBytes string // what the server managed to send
	}{
		{"cut inside the second write", 8, []string{"hello", "world", "again"}, []int{5, 3, 0}, []bool{false, true, true}, "hellowor"},
		{"cut at a write boundary", 5, []string{"hello", "world"}, []int{5, 0}, []bool{true, true}, "hello"},
		{"nothing allowed", 0, []string{"hello"}, []int{0}, []bool{true}, ""},
		{"under the limit", 100, []string{"hello", "world"}, []int{5, 5}, []bool{false, false}, "helloworld"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := tcpPair(t)
			r := netx.NewResetAfterBytes(server, tt.limit)
			var resets atomic.Int32
			r.OnReset = func() { resets.Add(1) }
			var sent bytes.Buffer
			for i, w := range tt.writes {
				n, err := r.Write([]byte(w))
				sent.WriteString(w[:n])
				if n != tt.wantN[i] || errors.Is(err, net.ErrClosed) != tt.wantErr[i] || (err != nil && !tt.wantErr[i]) {
					t.Errorf("Write(%q) #%d = %d, %v, want %d, closed %v", w, i, n, err, tt.wantN[i], tt.wantErr[i])
				}
			}
			if sent.String() != tt.wantBytes {
				t.Errorf("bytes reported sent = %q, want %q", sent.String(), tt.wantBytes)
			}
			wantResets := int32(0)
			if tt.wantErr[len(tt.wantErr)-1] {
				wantResets = 1
			}
			if got := resets.Load(); got != wantResets {
				t.Errorf("OnReset called %d times, want %d", got, wantResets)
			}
			if wantResets == 0 {
				return
			}
			// The peer reads at most what was sent, then the reset.
			got, err := readUntilError(client)
			if !bytes.HasPrefix([]byte(tt.wantBytes), got) {
				t.Errorf("client read %q, want a prefix of %q", got, tt.wantBytes)
			}
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client Read = %v, want ECONNRESET", err)
			}
		})
	}
}

// TestNotifyHandshakeDone reaches every HandshakeNotifier in a stack.
func TestNotifyHandshakeDone(t *testing.T) {
	server, _ := tcpPair(t)
	var mu sync.Mutex
	var got []string
	bottom := &notifier{Wrapped: netx.Wrapped{Conn: server}, name: "bottom", mu: &mu, got: &got}
	middle := netx.NewThrottle(bottom, 1<<20)
	top := &notifier{Wrapped: netx.Wrapped{Conn: middle}, name: "top", mu: &mu, got: &got}
	netx.NotifyHandshakeDone(top)
	if len(got) != 2 || got[0] != "top" || got[1] != "bottom" {
		t.Errorf("notified %v, want [top bottom]", got)
	}
	netx.NotifyHandshakeDone(nil) // must not panic
	netx.NotifyHandshakeDone(selfWrapper(server))
}

type notifier struct {
	netx.Wrapped
	name string
	mu   *sync.Mutex
	got  *[]string
}

func (n *notifier) TLSHandshakeDone() {
	n.mu.Lock()
	defer n.mu.Unlock()
	*n.got = append(*n.got, n.name)
}

var (
	_ netx.HandshakeNotifier = (*netx.ResetAfterGreeting)(nil)
	_ netx.HandshakeNotifier = (*notifier)(nil)
)
