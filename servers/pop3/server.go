package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"sync"
	"time"

	"github.com/maillab/maillab/internal/netx"
)

// Defaults of the Server's zero-valued fields.
const (
	// DefaultMaxLineLength is the longest command line, CRLF included,
	// that every server must accept (RFC 2449 §4).
	DefaultMaxLineLength = 255
	// DefaultMaxAuthLineLength bounds one AUTH continuation line. RFC 5034 §4
	// exempts these lines from the 255-octet limit; 16 KiB holds the
	// Base64 of any PLAIN response and of large OAuth tokens.
	DefaultMaxAuthLineLength = 16 * 1024
	// DefaultMaxBadCommands is how many invalid commands in a row end a
	// connection.
	DefaultMaxBadCommands = 10
	// DefaultReadTimeout is the autologout timer: RFC 1939 §3 requires at
	// least 10 minutes of inactivity before the server may close.
	DefaultReadTimeout = 10 * time.Minute
	// DefaultWriteTimeout is how long one write to the client may block.
	DefaultWriteTimeout = time.Minute
)

// Logger receives the server's unexpected internal errors: backend errors
// that were answered "-ERR [SYS/TEMP]", recovered panics, invalid maildrop
// data. *log.Logger implements it.
type Logger interface {
	Printf(format string, v ...any)
}

// Server is a POP3 server. Its zero value with a Backend is ready to use;
// fields must not change once the server is serving.
type Server struct {
	// Backend creates one Session per connection. It is required.
	Backend Backend

	// Hostname names the server in the default greeting; empty leaves it
	// out.
	Hostname string

	// TLSConfig enables STLS (RFC 2595 §4) on plaintext connections; nil
	// disables it. Implicit TLS (port 995) does not use it: serve
	// tls.NewListener(ln, cfg) instead.
	TLSConfig *tls.Config

	// AllowInsecureAuth permits USER/PASS and AUTH on connections without
	// TLS. When false (the default, as RFC 5034 §4 recommends), they are
	// refused with Dovecot's "-ERR [AUTH] Plaintext authentication
	// disallowed on non-secure (SSL/TLS) connections." and CAPA lists
	// neither USER nor SASL until TLS is active.
	AllowInsecureAuth bool

	// DisableUserPass withdraws the USER and PASS commands and the USER
	// capability, leaving AUTH as the only way to log in (for example a
	// server that accepts OAuth tokens only).
	DisableUserPass bool

	// Greeting is the text of the "+OK" greeting. Empty means
	// "<Hostname> POP3 server ready". The greeting never carries the
	// "<timestamp>" that announces APOP (RFC 1939 §7), which this server does
	// not implement, so "<" and ">" are replaced by "(" and ")".
	Greeting string

	// Implementation is announced as the IMPLEMENTATION capability
	// (RFC 2449 §6.9); empty leaves it out.
	Implementation string

	// MaxLineLength is the longest command line accepted, CRLF included;
	// zero means DefaultMaxLineLength. A longer line is answered "-ERR" and
	// the connection is closed: the server never buffers an unbounded line.
	MaxLineLength int

	// MaxAuthLineLength is the longest AUTH continuation line accepted;
	// zero means DefaultMaxAuthLineLength.
	MaxAuthLineLength int

	// MaxBadCommands is the number of consecutive invalid commands (unknown,
	// malformed, or not valid in the current state) after which the server
	// closes the connection; zero means DefaultMaxBadCommands and a
	// negative value never closes.
	MaxBadCommands int

	// ReadTimeout is the autologout timer: how long the server waits for
	// the next command line (and for a TLS handshake). When it expires the
	// connection is closed without a reply and nothing is deleted
	// (RFC 1939 §3). Zero means DefaultReadTimeout; negative means none.
	ReadTimeout time.Duration

	// WriteTimeout bounds each write to the client. Zero means
	// DefaultWriteTimeout; negative means none.
	WriteTimeout time.Duration

	// ErrorLog receives unexpected internal errors; nil uses the standard
	// library's default logger.
	ErrorLog Logger

	// Trace, if set, is called for every protocol line in both directions,
	// from the connection's goroutine: each command (fromClient true) and
	// the status line of each response. A multi-line response is traced as
	// its status line plus one summary line in angle brackets, such as
	// "<message body, 1234 octets>"; events without a wire line (a TLS
	// handshake, discarded input) are traced the same way. Credentials are
	// masked before Trace sees them: "PASS ****", "AUTH PLAIN ****" and
	// "****" for every AUTH continuation line.
	Trace func(c *Conn, fromClient bool, line string)

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	wg        sync.WaitGroup
}

// Serve accepts connections on l and serves each in its own goroutine until
// the server is closed (or l is closed), and then returns ErrServerClosed.
// Failed accepts (out of file descriptors and the like) are retried with a
// back-off (netx.AcceptLoop); they never end Serve. Serve closes l when it
// returns.
//
// For implicit TLS (port 995), pass tls.NewListener(l, cfg): the handshake
// is completed (or fails, closing the connection) before the greeting.
func (s *Server) Serve(l net.Listener) error {
	if !s.trackListener(l) {
		l.Close()
		return ErrServerClosed
	}
	defer func() {
		s.untrackListener(l)
		l.Close()
	}()

	loop := &netx.AcceptLoop{
		// The connection's outcome has no caller to return to; what
		// matters was traced, and internal failures were logged.
		Handle: func(nc net.Conn) { go func() { _ = s.ServeConn(nc) }() },
		OnRetry: func(err error, wait time.Duration) {
			s.logf("accept on %s: %v; retrying in %v", l.Addr(), err, wait)
		},
	}
	loop.Run(l)
	return ErrServerClosed
}

// ServeConn serves exactly one connection and returns when it has ended and
// its Session has logged out. nc is closed on return.
//
// It returns nil when the client quit or went away, ErrServerClosed if the
// server was closed under it, ErrLineTooLong or ErrTooManyBadCommands when
// the server ended a misbehaving client, and otherwise the error that ended
// the connection (a failed TLS handshake, a timeout, a write failure).
func (s *Server) ServeConn(nc net.Conn) error {
	if s.Backend == nil {
		nc.Close()
		return errors.New("pop3: Server.Backend is nil")
	}
	c := newConn(s, nc)
	if !s.trackConn(c) {
		nc.Close()
		return ErrServerClosed
	}
	defer s.untrackConn(c)
	return c.serve()
}

// Close closes every listener and every connection at once, without
// replies, then waits until each connection's Session has logged out.
// Sessions that were in the TRANSACTION state delete nothing. Close must not
// be called from a Backend or Session method. Calling it again is harmless.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	err := s.closeListenersLocked()
	for c := range s.conns {
		c.abort()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Shutdown stops accepting connections and waits for the open ones to end
// by themselves (QUIT, the client leaving, or ReadTimeout). If ctx ends
// first it returns ctx.Err() and leaves the connections open; call Close to
// end them. Calling it again, or after Close, is harmless.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	err := s.closeListenersLocked()
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) closeListenersLocked() error {
	var first error
	for l := range s.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) && first == nil {
			first = err
		}
		delete(s.listeners, l)
	}
	return first
}

func (s *Server) trackListener(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) untrackListener(l net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, l)
}

// trackConn registers c so that Close can reach it and Shutdown waits for
// it. The WaitGroup is incremented under the same lock that Close and
// Shutdown take to set closed, so no Add races with their Wait.
func (s *Server) trackConn(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*Conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrackConn(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) logf(format string, v ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, v...)
		return
	}
	log.Printf("pop3: "+format, v...)
}

func (s *Server) maxLineLength() int {
	if s.MaxLineLength > 0 {
		return s.MaxLineLength
	}
	return DefaultMaxLineLength
}

func (s *Server) maxAuthLineLength() int {
	if s.MaxAuthLineLength > 0 {
		return s.MaxAuthLineLength
	}
	return DefaultMaxAuthLineLength
}

// maxBadCommands returns the limit, or 0 for none.
func (s *Server) maxBadCommands() int {
	switch {
	case s.MaxBadCommands > 0:
		return s.MaxBadCommands
	case s.MaxBadCommands < 0:
		return 0
	default:
		return DefaultMaxBadCommands
	}
}

// timeout resolves a timeout field: zero is def, negative is none (0).
func timeout(d, def time.Duration) time.Duration {
	switch {
	case d > 0:
		return d
	case d < 0:
		return 0
	default:
		return def
	}
}

func (s *Server) readTimeout() time.Duration  { return timeout(s.ReadTimeout, DefaultReadTimeout) }
func (s *Server) writeTimeout() time.Duration { return timeout(s.WriteTimeout, DefaultWriteTimeout) }

// greeting is the text after "+OK " of the greeting line.
func (s *Server) greeting() string {
	g := s.Greeting
	if g == "" {
		g = "POP3 server ready"
		if s.Hostname != "" {
			g = s.Hostname + " " + g
		}
	}
	// RFC 2449 §3 gchar excludes "<": in a greeting it starts the APOP
	// timestamp of RFC 1939 §7, and this server offers no APOP.
	g = sanitizeLine(g)
	b := []byte(g)
	for i, c := range b {
		switch c {
		case '<':
			b[i] = '('
		case '>':
			b[i] = ')'
		}
	}
	return string(b)
}

var _ Logger = (*log.Logger)(nil)
