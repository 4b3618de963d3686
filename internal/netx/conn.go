package netx

import (
	"net"
	"sync"
	"time"
)

// Wrapped is the base of the connection wrappers: it forwards everything
// to the inner connection and exposes it through NetConn, so Unwrap (and
// Reset) can reach the TCP socket.
type Wrapped struct {
	net.Conn
}

// NetConn returns the inner connection.
func (w *Wrapped) NetConn() net.Conn { return w.Conn }

// HandshakeNotifier is implemented by wrappers that want to know when the
// TLS handshake above them has finished (the lab's implicit-TLS listener
// tells them), e.g. to reset "after the greeting" of a TLS port.
type HandshakeNotifier interface {
	TLSHandshakeDone()
}

// NotifyHandshakeDone tells every wrapper below c (c itself included) that
// implements HandshakeNotifier that the handshake is done.
func NotifyHandshakeDone(c net.Conn) {
	for c != nil {
		if n, ok := c.(HandshakeNotifier); ok {
			n.TLSHandshakeDone()
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		next := u.NetConn()
		if next == c {
			return
		}
		c = next
	}
}

// DelayFirstWrite holds the server's first write (the greeting on a
// plaintext port) for Delay: a slow server as the client sees it.
type DelayFirstWrite struct {
	Wrapped
	Delay  time.Duration
	once   sync.Once
	closed chan struct{}
	shut   sync.Once
}

// NewDelayFirstWrite wraps c.
func NewDelayFirstWrite(c net.Conn, d time.Duration) *DelayFirstWrite {
	return &DelayFirstWrite{Wrapped: Wrapped{c}, Delay: d, closed: make(chan struct{})}
}

func (d *DelayFirstWrite) Write(b []byte) (int, error) {
	d.once.Do(func() {
		t := time.NewTimer(d.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-d.closed:
		}
	})
	select {
	case <-d.closed:
		// Closed while the greeting was held: it is never sent.
		return 0, net.ErrClosed
	default:
	}
	return d.Conn.Write(b)
}

// Close ends a pending delay at once, so a closing lab does not wait for
// it.
func (d *DelayFirstWrite) Close() error {
	d.shut.Do(func() { close(d.closed) })
	return d.Conn.Close()
}

// Throttle limits the rate in both directions to BytesPerSec, the way a
// congested or shaped link does. It also shrinks the socket's receive
// buffer so that the sender's own socket fills and its writes block, as
// on a real slow link, instead of the kernel absorbing the whole message.
type Throttle struct {
	Wrapped
	BytesPerSec int
}

// NewThrottle wraps c.
func NewThrottle(c net.Conn, bytesPerSec int) *Throttle {
	if tc, ok := Unwrap(c).(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
		tc.SetWriteBuffer(4096)
	}
	return &Throttle{Wrapped: Wrapped{c}, BytesPerSec: bytesPerSec}
}

// chunk is the largest piece moved at once, so a rate applies smoothly.
func (t *Throttle) chunk() int {
	n := t.BytesPerSec / 10
	if n < 1 {
		n = 1
	}
	return n
}

func (t *Throttle) pause(n int) {
	time.Sleep(time.Duration(n) * time.Second / time.Duration(t.BytesPerSec))
}

func (t *Throttle) Read(b []byte) (int, error) {
	if len(b) > t.chunk() {
		b = b[:t.chunk()]
	}
	n, err := t.Conn.Read(b)
	if n > 0 {
		t.pause(n)
	}
	return n, err
}

func (t *Throttle) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		end := min(len(b), written+t.chunk())
		n, err := t.Conn.Write(b[written:end])
		written += n
		if err != nil {
			return written, err
		}
		t.pause(n)
	}
	return written, nil
}

// ResetAfterGreeting cuts the connection with an RST as soon as the server
// wants to read after its first write (its greeting): the client gets its
// banner, sends its first command and sees "connection reset by peer", as
// behind a middlebox that kills sessions. With AfterHandshake set (TLS
// ports), the count starts once the TLS handshake is done, so the client
// gets the greeting over TLS first.
type ResetAfterGreeting struct {
	Wrapped
	AfterHandshake bool

	mu        sync.Mutex
	handshook bool
	greeted   bool
	// OnReset is called once, just before the RST, for the transcript.
	OnReset func()
}

// NewResetAfterGreeting wraps c.
func NewResetAfterGreeting(c net.Conn, afterHandshake bool) *ResetAfterGreeting {
	return &ResetAfterGreeting{Wrapped: Wrapped{c}, AfterHandshake: afterHandshake}
}

// TLSHandshakeDone implements HandshakeNotifier.
func (r *ResetAfterGreeting) TLSHandshakeDone() {
	r.mu.Lock()
	r.handshook = true
	r.mu.Unlock()
}

func (r *ResetAfterGreeting) Write(b []byte) (int, error) {
	r.mu.Lock()
	if !r.AfterHandshake || r.handshook {
		r.greeted = true
	}
	r.mu.Unlock()
	return r.Conn.Write(b)
}

func (r *ResetAfterGreeting) Read(b []byte) (int, error) {
	r.mu.Lock()
	cut := r.greeted
	r.mu.Unlock()
	if cut {
		// Wait until the client has said something, so the RST answers a
		// command as a middlebox's does.
		n, err := r.Conn.Read(b[:min(len(b), 1)])
		if n > 0 || err == nil {
			if r.OnReset != nil {
				r.OnReset()
			}
			Reset(r.Conn)
			return 0, net.ErrClosed
		}
		return n, err
	}
	return r.Conn.Read(b)
}

// StallTLS passes plaintext through but, from the first TLS handshake
// record the client sends (a ClientHello, at connect on implicit-TLS ports
// or after STARTTLS), swallows everything the server writes: the handshake
// stalls until a timeout, as when the server's packets are lost.
type StallTLS struct {
	Wrapped
	mu      sync.Mutex
	stalled bool
	onStall func()
}

// NewStallTLS wraps c; onStall (may be nil) is called once when the
// stall begins.
func NewStallTLS(c net.Conn, onStall func()) *StallTLS {
	return &StallTLS{Wrapped: Wrapped{c}, onStall: onStall}
}

func (s *StallTLS) Read(b []byte) (int, error) {
	n, err := s.Conn.Read(b)
	// RFC 8446 §5.1: a handshake record starts with type 22 and a
	// 0x03 major version.
	if n >= 2 && b[0] == 0x16 && b[1] == 0x03 {
		s.mu.Lock()
		if !s.stalled {
			s.stalled = true
			if s.onStall != nil {
				s.onStall()
			}
		}
		s.mu.Unlock()
	}
	return n, err
}

func (s *StallTLS) Write(b []byte) (int, error) {
	s.mu.Lock()
	stalled := s.stalled
	s.mu.Unlock()
	if stalled {
		return len(b), nil
	}
	return s.Conn.Write(b)
}

// ResetAfterBytes lets the server send Bytes octets and then cuts the
// connection with an RST, as a middlebox or a crashing server does in the
// middle of a transfer.
type ResetAfterBytes struct {
	Wrapped
	Bytes int64
	// OnReset is called once, just before the RST.
	OnReset func()

	mu   sync.Mutex
	sent int64
	cut  bool
}

// NewResetAfterBytes wraps c.
func NewResetAfterBytes(c net.Conn, n int64) *ResetAfterBytes {
	return &ResetAfterBytes{Wrapped: Wrapped{c}, Bytes: n}
}

func (r *ResetAfterBytes) Write(b []byte) (int, error) {
	r.mu.Lock()
	if r.cut {
		r.mu.Unlock()
		return 0, net.ErrClosed
	}
	room := r.Bytes - r.sent
	if int64(len(b)) < room {
		r.sent += int64(len(b))
		r.mu.Unlock()
		return r.Conn.Write(b)
	}
	r.cut = true
	r.mu.Unlock()
	n, _ := r.Conn.Write(b[:room])
	if r.OnReset != nil {
		r.OnReset()
	}
	Reset(r.Conn)
	return n, net.ErrClosed
}
