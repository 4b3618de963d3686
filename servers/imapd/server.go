// Package imapd is the lab's IMAP server (RFC 3501, IMAP4rev1): go-imap's
// imapserver speaking the protocol, maillab's mailstore holding the mail
// (the same mailboxes that SMTP delivers into and POP3 reads) and the
// shared auth.Authenticator deciding logins, so a lockout or an expired
// password looks the same over every protocol.
//
// A Server serves plaintext listeners (port 143 style, with STARTTLS when
// Config.TLSConfig is set) and listeners that hand out *tls.Conn (port 993
// style, implicit TLS). Every accepted connection gets its own
// imapserver.Server, so each session has its own transcript writer.
package imapd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

// DefaultHandshakeTimeout bounds the TLS handshake of an implicit-TLS
// connection when Config.HandshakeTimeout is zero. It matches go-imap's
// own limit for reading a command before login.
const DefaultHandshakeTimeout = 30 * time.Second

// ErrServerClosed is returned by Serve when it is called after Close or
// Shutdown.
var ErrServerClosed = errors.New("imapd: server closed")

// Config configures a Server. Store and Auth are required; the zero value
// of every other field is usable.
type Config struct {
	// Hostname names the server in log records and in the BYE sent when
	// the server shuts down. Empty means "maillab".
	Hostname string
	// Service is the lab service name passed to the authenticator in
	// auth.Request.Service, "imap" or "imaps". Empty means "imap".
	Service string
	// Store holds the accounts and their mailboxes.
	Store *mailstore.Store
	// Auth decides every LOGIN and AUTHENTICATE.
	Auth auth.Authenticator
	// TLSConfig enables STARTTLS (RFC 3501 §6.2.1) on plaintext
	// connections; nil means STARTTLS is neither advertised nor accepted.
	// Implicit-TLS listeners are set up by the caller (tls.NewListener);
	// this field is not used for them.
	TLSConfig *tls.Config
	// AllowInsecureAuth permits LOGIN and AUTHENTICATE before TLS. When
	// false, the greeting and CAPABILITY list LOGINDISABLED on a plaintext
	// connection and LOGIN gets "NO [PRIVACYREQUIRED]" (RFC 3501 §6.2.3,
	// RFC 5530).
	AllowInsecureAuth bool
	// Mechanisms are the SASL mechanisms offered by AUTHENTICATE, by the
	// names auth.NewSASLServer knows (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER).
	// PLAIN is always offered (added first when missing); nil means PLAIN
	// only.
	Mechanisms []string
	// HandshakeTimeout bounds the TLS handshake of connections accepted as
	// *tls.Conn whose handshake has not been done yet. Zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Limits bounds the cost of one command (SEARCH); the zero value has
	// the defaults.
	Limits Limits
	// Logger receives the server's records; nil discards them.
	Logger *slog.Logger
	// Transcript, if set, is called once for every accepted connection
	// (after the TLS handshake of an implicit-TLS connection) and returns
	// the writer that receives the raw plaintext bytes of that connection,
	// both directions, credentials included; it may return nil. The server
	// serializes writes to it, passes each library read or flush as one
	// Write, and ignores its errors after logging the first one, so a
	// broken transcript never breaks a session.
	Transcript func(c net.Conn) io.Writer
}

// Server is the lab's IMAP server. Create it with New, start it with
// Serve, stop it with Close or Shutdown.
type Server struct {
	cfg   Config
	log   *slog.Logger
	mechs []string
	caps  imap.CapSet

	done     chan struct{} // closed when Close or Shutdown starts
	doneOnce sync.Once

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	sessions  sync.WaitGroup // one count per accepted connection
}

// capabilities advertised besides the ones go-imap adds by itself
// (SASL-IR, LITERAL-, STARTTLS, AUTH=, LOGINDISABLED, UNSELECT, ENABLE,
// IDLE, UTF8=ACCEPT). Each needs the session's support: NAMESPACE and MOVE
// through SessionNamespace and SessionMove, UIDPLUS through UID EXPUNGE
// and the UIDs returned by Append and Copy, BINARY through Fetch, CHILDREN
// and STATUS=SIZE through List and Status.
var serverCaps = []imap.Cap{
	imap.CapIMAP4rev1,
	imap.CapNamespace, // RFC 2342
	imap.CapUIDPlus,   // RFC 4315
	imap.CapMove,      // RFC 6851
	imap.CapBinary,    // RFC 3516
	imap.CapChildren,  // RFC 3348
	imap.CapStatusSize,
}

// New returns a server for cfg. The configuration is checked by Serve.
func New(cfg Config) *Server {
	if cfg.Hostname == "" {
		cfg.Hostname = "maillab"
	}
	if cfg.Service == "" {
		cfg.Service = "imap"
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mechs := []string{auth.MechPlain}
	for _, m := range cfg.Mechanisms {
		m = strings.ToUpper(m)
		if !slices.Contains(mechs, m) {
			mechs = append(mechs, m)
		}
	}
	caps := make(imap.CapSet, len(serverCaps))
	for _, c := range serverCaps {
		caps[c] = struct{}{}
	}
	return &Server{
		cfg:       cfg,
		log:       log.With("server", "imap", "service", cfg.Service, "hostname", cfg.Hostname),
		mechs:     mechs,
		caps:      caps,
		done:      make(chan struct{}),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
}

// check reports a configuration that cannot serve.
func (s *Server) check() error {
	if s.cfg.Store == nil {
		return errors.New("imapd: config has no Store")
	}
	if s.cfg.Auth == nil {
		return errors.New("imapd: config has no Auth")
	}
	for _, m := range s.mechs {
		if auth.NewSASLServer(m, func(string, string) error { return nil }) == nil {
			return fmt.Errorf("imapd: unknown SASL mechanism %q", m)
		}
	}
	return nil
}

// Serve accepts connections on ln and serves each in its own goroutine
// until Close or Shutdown, when it returns nil. It returns ErrServerClosed
// if the server was already stopped, and an error for an invalid Config.
// Failed accepts (out of file descriptors and the like) are retried with a
// back-off (netx.AcceptLoop); they never end Serve. Serve closes ln when it
// returns. Several Serve
// calls may run at once on different listeners.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	if err := s.check(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	loop := &netx.AcceptLoop{
		Handle: s.accepted,
		OnRetry: func(err error, wait time.Duration) {
			s.log.Warn("accept failed; retrying", "err", err, "in", wait)
		},
		Stop: s.done,
	}
	return loop.Run(ln)
}

// accepted starts serving one accepted connection.
func (s *Server) accepted(nc net.Conn) {
	c := s.newConn(nc)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.raw.Close()
		c.cancel()
		return
	}
	s.conns[c] = struct{}{}
	s.sessions.Add(1)
	s.mu.Unlock()
	go c.serve()
}

// stopAccepting closes the listeners, then tells the sessions.
func (s *Server) stopAccepting() {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.doneOnce.Do(func() { close(s.done) })
}

// Close stops the server now: it closes the listeners and every
// connection without a goodbye, then waits until every session has ended.
// It is safe to call more than once and after Shutdown, and returns nil.
func (s *Server) Close() error {
	s.stopAccepting()
	s.mu.Lock()
	for c := range s.conns {
		c.abort()
	}
	s.mu.Unlock()
	s.sessions.Wait()
	return nil
}

// Shutdown stops the server gracefully: it closes the listeners, says
// "* BYE" to every session waiting in IDLE (RFC 2177; a client in IDLE is
// between commands, so nothing is cut short), and waits for the other
// sessions to end (LOGOUT or disconnect). If ctx ends first, Shutdown
// closes the remaining connections as Close does and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting() // sessions in IDLE see s.done and say BYE
	ended := make(chan struct{})
	go func() {
		s.sessions.Wait()
		close(ended)
	}()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
		s.Close()
		<-ended
		return ctx.Err()
	}
}

// conn is one accepted connection and its per-connection imapserver.
type conn struct {
	srv    *Server
	nc     net.Conn        // as accepted; *tls.Conn on implicit-TLS listeners
	raw    net.Conn        // the TCP connection below any TLS
	ctx    context.Context // ends with the connection; bounds auth calls
	cancel context.CancelFunc
	log    *slog.Logger

	// closedByUs is set before the server itself closes the connection,
	// so the library's complaints about the closed socket are not logged
	// as problems.
	closedByUs atomic.Bool
	// loggedIn is set once LOGIN or AUTHENTICATE succeeded.
	loggedIn atomic.Bool
	mu       sync.Mutex
	// guard is what go-imap reads and writes (see guardConn), and ln
	// hands it to go-imap; both are replaced after STARTTLS.
	guard    *guardConn
	ln       *oneConnListener
	imapConn *imapserver.Conn // set by newSession
}

func (s *Server) newConn(nc net.Conn) *conn {
	raw := nc
	if tc, ok := nc.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		srv:    s,
		nc:     nc,
		raw:    raw,
		ctx:    ctx,
		cancel: cancel,
		log:    s.log.With("remote", addrString(nc.RemoteAddr())),
	}
	c.guard = newGuardConn(nc, c.loggedIn.Load, func() { c.closedByUs.Store(true) })
	if _, isTLS := nc.(*tls.Conn); isTLS {
		c.guard.secure = true
	} else {
		c.guard.startTLS = s.cfg.TLSConfig
	}
	c.ln = newOneConnListener(c.guard)
	return c
}

// current returns the guard and listener of the connection's go-imap
// session now.
func (c *conn) current() (*guardConn, *oneConnListener) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.guard, c.ln
}

// serve runs one connection: the TLS handshake of an implicit-TLS
// connection, then an imapserver.Server of its own whose only connection
// it is.
func (c *conn) serve() {
	s := c.srv
	defer func() {
		c.cancel()
		c.raw.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.sessions.Done()
	}()

	c.log.Debug("connection opened")
	defer c.log.Debug("connection closed")
	if tc, ok := c.nc.(*tls.Conn); ok {
		// A listener from tls.NewListener hands out connections whose
		// handshake has not happened; go-imap would do it lazily at the
		// first read, after the session started. Doing it here keeps TLS
		// failures out of the IMAP session and bounds their time. A
		// connection already handshaken returns at once.
		ctx, cancel := context.WithTimeout(c.ctx, s.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			if !c.closedByUs.Load() {
				c.log.Info("tls handshake failed", "err", err)
			}
			return
		}
	}

	var debug *transcriptWriter
	if s.cfg.Transcript != nil {
		if w := s.cfg.Transcript(c.nc); w != nil {
			debug = &transcriptWriter{w: w, log: c.log}
		}
	}
	_, secure := c.nc.(*tls.Conn)
	for {
		guard, ln := c.current()
		opts := &imapserver.Options{
			NewSession:   c.newSession,
			Caps:         s.caps,
			Logger:       libraryLogger{c},
			TLSConfig:    s.cfg.TLSConfig,
			InsecureAuth: s.cfg.AllowInsecureAuth,
		}
		if debug != nil {
			guard.debug = debug
			opts.DebugWriter = debug
		}
		if secure {
			// go-imap reads through the guard, not the *tls.Conn, so it
			// cannot see the TLS: tell it the connection is secure (AUTH
			// allowed, no LOGINDISABLED) and has no STARTTLS to offer.
			opts.TLSConfig = nil
			opts.InsecureAuth = true
		}
		is := imapserver.New(opts)
		// Serve returns once the session has ended: the session's Close
		// closes the one-connection listener.
		if err := is.Serve(ln); err != nil {
			c.log.Error("serve connection", "err", err)
		}
		is.Close() // closes the connection if go-imap still holds it
		up := guard.takeUpgrade()
		if up == nil || !c.startTLS(up, debug) {
			return
		}
		secure = true
	}
}

// startTLS does the TLS handshake of a STARTTLS the guard answered and
// puts a new guard above the *tls.Conn for the next go-imap session, which
// must not greet: RFC 9051 §6.2.1 has the client ask for CAPABILITY again
// instead. It reports whether the session goes on.
func (c *conn) startTLS(up *tlsUpgrade, debug *transcriptWriter) bool {
	s := c.srv
	var below net.Conn = c.nc
	if len(up.rest) > 0 {
		below = &prefixedConn{Wrapped: netx.Wrapped{Conn: c.nc}, r: io.MultiReader(bytes.NewReader(up.rest), c.nc)}
	}
	tc := tls.Server(below, s.cfg.TLSConfig)
	ctx, cancel := context.WithTimeout(c.ctx, s.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if !c.closedByUs.Load() {
			c.log.Info("tls handshake after STARTTLS failed", "err", err)
		}
		return false
	}
	g := newGuardConn(tc, c.loggedIn.Load, func() { c.closedByUs.Store(true) })
	g.secure = true
	g.dropGreeting = true
	if debug != nil {
		debug.dropGreeting()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil { // aborted meanwhile
		return false
	}
	c.guard = g
	c.ln = newOneConnListener(g)
	return true
}

// prefixedConn reads the bytes the client sent right after STARTTLS
// (the start of its handshake) before the rest of the connection.
type prefixedConn struct {
	netx.Wrapped
	r io.Reader
}

func (p *prefixedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

func (c *conn) newSession(ic *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	c.mu.Lock()
	c.imapConn = ic
	guard, ln := c.guard, c.ln
	c.mu.Unlock()
	return &session{c: c, log: c.log, guard: guard, ln: ln}, nil, nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return "unknown"
	}
	return a.String()
}

// sessionEnded is called by the session's Close, the last call go-imap
// makes on a connection: it closes the connection (sending a TLS
// close_notify where there is TLS) and lets serve return. After STARTTLS
// only the plaintext session ends: the connection goes on in TLS.
func (c *conn) sessionEnded(s *session) {
	if s.guard.upgrading() {
		s.ln.Close()
		return
	}
	c.mu.Lock()
	ic := c.imapConn
	c.mu.Unlock()
	if ic != nil {
		ic.NetConn().Close()
	}
	c.raw.Close()
	s.ln.Close()
	c.cancel()
}

// abort closes the connection at once, below TLS.
func (c *conn) abort() {
	c.closedByUs.Store(true)
	c.cancel()
	c.raw.Close()
	_, ln := c.current()
	ln.Close()
}

// bye ends the session with an untagged BYE (RFC 3501 §7.1.5).
func (c *conn) bye(text string) {
	c.mu.Lock()
	ic := c.imapConn
	c.mu.Unlock()
	c.closedByUs.Store(true)
	if ic == nil {
		c.abort()
		return
	}
	if err := ic.Bye(text); err != nil {
		c.log.Debug("bye", "err", err)
	}
}

// oneConnListener hands out one connection, then blocks until closed, so
// that an imapserver.Server serves exactly that connection.
type oneConnListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{addr: c.LocalAddr(), conns: make(chan net.Conn, 1), closed: make(chan struct{})}
	l.conns <- c
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.addr }

// transcriptWriter serializes the library's writes (the reading goroutine
// tees what it reads while an IDLE goroutine may write updates) and keeps
// transcript errors from failing the connection: go-imap tees through
// io.MultiWriter and io.TeeReader, which would pass them on.
type transcriptWriter struct {
	mu     sync.Mutex
	w      io.Writer
	failed bool
	log    *slog.Logger
	// skipLine: the next line written is the greeting of the go-imap
	// session that goes on after STARTTLS, which the client never gets.
	skipLine bool
}

// dropGreeting makes the writer skip the next line the server writes.
func (t *transcriptWriter) dropGreeting() {
	t.mu.Lock()
	t.skipLine = true
	t.mu.Unlock()
}

func (t *transcriptWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if t.skipLine {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return n, nil
		}
		t.skipLine = false
		p = p[i+1:]
		if len(p) == 0 {
			return n, nil
		}
	}
	if !t.failed {
		if _, err := t.w.Write(p); err != nil {
			t.failed = true
			t.log.Warn("transcript write failed; transcript stopped for this session", "err", err)
		}
	}
	return n, nil
}

// libraryLogger passes go-imap's log lines to the connection's logger:
// panics as errors, complaints after the server closed the connection
// itself or after the client dropped it (a reset, a TLS alert, a cut
// line: what clients failing against a fault do, and the transcript
// shows) as debug, the rest as warnings.
type libraryLogger struct{ c *conn }

func (l libraryLogger) Printf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	level := slog.LevelWarn
	switch {
	case strings.HasPrefix(format, "panic"):
		level = slog.LevelError
	case l.c.closedByUs.Load(), clientDropped(args):
		level = slog.LevelDebug
	}
	l.c.log.Log(context.Background(), level, "imapserver: "+msg)
}

// clientDropped reports whether one of go-imap's log arguments is the
// error of a connection the client ended: reset, broken pipe, cut in the
// middle of a line, closed, or a TLS alert the client sent.
func clientDropped(args []any) bool {
	for _, a := range args {
		err, ok := a.(error)
		if !ok {
			continue
		}
		// crypto/tls reports an alert from the peer as a *net.OpError
		// with Op "remote error".
		var op *net.OpError
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
			errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, net.ErrClosed) || (errors.As(err, &op) && op.Op == "remote error") {
			return true
		}
	}
	return false
}

var (
	_ net.Listener       = (*oneConnListener)(nil)
	_ io.Writer          = (*transcriptWriter)(nil)
	_ imapserver.Logger  = libraryLogger{}
	_ imapserver.Session = (*session)(nil)
)
