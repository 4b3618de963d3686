// Package smtpd is the lab's SMTP server, built on github.com/emersion/go-smtp:
// a relay port (like 25) that delivers to local mailboxes and refuses to
// relay for strangers, a submission port with STARTTLS (like 587) and an
// implicit-TLS submission port (like 465), both offering AUTH only over TLS.
// Replies follow Postfix's wording, so that what a client shows against the
// lab is what it shows against a common real server.
package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

// Mode is the role of an SMTP port.
type Mode int

// Modes.
const (
	// ModeRelay is an MTA port (25): no AUTH offered, local delivery for
	// anyone, relaying only for authenticated clients.
	ModeRelay Mode = iota
	// ModeSubmission is message submission (RFC 6409, port 587): MAIL
	// requires authentication, AUTH requires TLS.
	ModeSubmission
)

// Config configures a Server. Zero values pick the defaults documented on
// each field.
type Config struct {
	// Hostname is the name in the greeting and EHLO reply.
	Hostname string
	// Service is the lab service name ("smtp", "submission",
	// "submissions"), passed to the Authenticator and the transcript.
	Service string
	Mode    Mode
	Store   *mailstore.Store
	Auth    auth.Authenticator
	// LocalDomains are delivered to Store; any other recipient is relayed
	// (authenticated clients) or refused (others).
	LocalDomains []string
	// TLSConfig enables STARTTLS on plaintext connections; nil means
	// STARTTLS is not offered. Implicit TLS is the listener's job: hand
	// Serve a listener that returns *tls.Conn.
	TLSConfig *tls.Config
	// AllowInsecureAuth offers AUTH on plaintext connections. By default
	// AUTH before TLS is refused with 530 5.7.0 (RFC 3207 §4, Postfix's
	// smtpd_tls_auth_only).
	AllowInsecureAuth bool
	// Mechanisms offered by AUTH; default PLAIN and LOGIN.
	Mechanisms []string
	// MaxMessageBytes is advertised as SIZE (RFC 1870); 0 means 25 MiB.
	MaxMessageBytes int64
	// Checks are policies consulted at MAIL, RCPT and DATA (faults such as
	// a blocklist, a content filter or greylisting).
	Checks []Check
	// Relay receives mail for non-local recipients from authenticated
	// clients; nil accepts and discards it (the lab has no outside world).
	Relay func(from string, to []string, msg []byte) error
	// ReadTimeout and WriteTimeout bound each command; 0 means 5 minutes
	// (RFC 5321 §4.5.3.2 asks for at least that).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// DataTimeout bounds the whole message after DATA (RFC 5321
	// §4.5.3.2.6 "DATA termination"); 0 means 10 minutes.
	DataTimeout time.Duration
	Logger      *slog.Logger
	// Transcript returns the debug writer for one connection; nil records
	// nothing.
	Transcript func(c net.Conn) io.Writer
}

// Envelope is what a Check sees of a transaction so far.
type Envelope struct {
	Service       string
	Remote        net.Addr
	TLS           bool
	Authenticated string // user name, "" if not authenticated
	Helo          string
	From          string
	To            []string
}

// Check is a policy. Each method may return a *smtp.SMTPError (never
// wrapped: go-smtp reads it by type assertion) to refuse the command; a
// check that has no opinion on a stage returns nil.
type Check interface {
	CheckMail(ctx context.Context, env *Envelope) error
	CheckRcpt(ctx context.Context, env *Envelope, rcpt string) error
	CheckData(ctx context.Context, env *Envelope, msg []byte) error
}

// Server serves one SMTP port.
type Server struct {
	cfg Config

	mu      sync.Mutex
	closed  bool
	lns     map[net.Listener]struct{}
	servers map[*smtp.Server]net.Conn
	wg      sync.WaitGroup
	done    chan struct{} // closed by Close and Shutdown
	stop    sync.Once
}

// New returns a server; call Serve to start it.
func New(cfg Config) *Server {
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.Service == "" {
		cfg.Service = "smtp"
	}
	if len(cfg.Mechanisms) == 0 {
		cfg.Mechanisms = []string{auth.MechPlain, auth.MechLogin}
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = 25 << 20
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 5 * time.Minute
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Minute
	}
	if cfg.DataTimeout == 0 {
		cfg.DataTimeout = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, lns: map[net.Listener]struct{}{}, servers: map[*smtp.Server]net.Conn{}, done: make(chan struct{})}
}

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("smtpd: server closed")

// Serve accepts connections on ln until Close or Shutdown, then returns
// nil. Failed accepts (out of file descriptors and the like) are retried
// with a back-off (netx.AcceptLoop); they never end Serve. Each connection
// gets its own go-smtp server instance so that its transcript is its own.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	loop := &netx.AcceptLoop{
		Handle: func(c net.Conn) {
			if !s.track(c) {
				c.Close()
			}
		},
		OnRetry: func(err error, wait time.Duration) {
			s.cfg.Logger.Warn("accept failed; retrying", "err", err, "in", wait)
		},
		Stop: s.done,
	}
	loop.Run(ln)
	return nil
}

func (s *Server) track(c net.Conn) bool {
	srv := s.newSMTPServer(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.servers[srv] = c
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Serve returns as soon as the one connection has been handed to
		// a session goroutine; Shutdown then waits for that session.
		srv.Serve(&oneConnListener{c: c})
		srv.Shutdown(context.Background())
		s.mu.Lock()
		delete(s.servers, srv)
		s.mu.Unlock()
	}()
	return true
}

func (s *Server) newSMTPServer(c net.Conn) *smtp.Server {
	srv := smtp.NewServer(&backend{s: s})
	srv.Domain = s.cfg.Hostname
	srv.TLSConfig = s.cfg.TLSConfig
	// AUTH gating is ours (530 5.7.0 rather than go-smtp's 523).
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = s.cfg.MaxMessageBytes
	srv.MaxRecipients = 100
	srv.ReadTimeout = s.cfg.ReadTimeout
	srv.WriteTimeout = s.cfg.WriteTimeout
	srv.ErrorLog = slogAdapter{s.cfg.Logger}
	if s.cfg.Transcript != nil {
		if w := s.cfg.Transcript(c); w != nil {
			srv.Debug = w
		}
	}
	return srv
}

// Close stops accepting and drops every connection.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.stop.Do(func() { close(s.done) })
	for ln := range s.lns {
		ln.Close()
	}
	conns := make([]net.Conn, 0, len(s.servers))
	for _, c := range s.servers {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	// Each go-smtp instance is already shutting down (its Close would be
	// a no-op), so end the sessions by closing their connections.
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
	return nil
}

// Shutdown stops accepting and waits for sessions to end, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.stop.Do(func() { close(s.done) })
	for ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// oneConnListener hands out one connection, then reports itself closed.
type oneConnListener struct {
	mu     sync.Mutex
	c      net.Conn
	served bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.served {
		return nil, net.ErrClosed
	}
	l.served = true
	return l.c, nil
}

func (l *oneConnListener) Close() error { return nil }

func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(format string, v ...interface{}) {
	a.l.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (a slogAdapter) Println(v ...interface{}) {
	a.l.Debug(strings.TrimSpace(fmt.Sprintln(v...)))
}

var _ sasl.Server = (*smtpSASL)(nil)

// CheckFuncs is a Check made of optional functions; a nil function has no
// opinion.
type CheckFuncs struct {
	Mail func(ctx context.Context, env *Envelope) error
	Rcpt func(ctx context.Context, env *Envelope, rcpt string) error
	Data func(ctx context.Context, env *Envelope, msg []byte) error
}

var _ Check = CheckFuncs{}

// CheckMail implements Check.
func (c CheckFuncs) CheckMail(ctx context.Context, env *Envelope) error {
	if c.Mail == nil {
		return nil
	}
	return c.Mail(ctx, env)
}

// CheckRcpt implements Check.
func (c CheckFuncs) CheckRcpt(ctx context.Context, env *Envelope, rcpt string) error {
	if c.Rcpt == nil {
		return nil
	}
	return c.Rcpt(ctx, env, rcpt)
}

// CheckData implements Check.
func (c CheckFuncs) CheckData(ctx context.Context, env *Envelope, msg []byte) error {
	if c.Data == nil {
		return nil
	}
	return c.Data(ctx, env, msg)
}
