package lab

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"time"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/dnsd"
	"github.com/maillab/maillab/servers/imapd"
	"github.com/maillab/maillab/servers/pop3"
	"github.com/maillab/maillab/servers/pop3d"
	"github.com/maillab/maillab/servers/smtpd"
	"github.com/maillab/maillab/servers/transcript"
	"github.com/maillab/maillab/settings"
)

// server is what every protocol server offers the lab.
type server interface {
	Serve(ln net.Listener) error
	Close() error
	Shutdown(ctx context.Context) error
}

func (l *Lab) startProvider(p *Provider) error {
	for _, name := range p.Order {
		if err := l.startService(p.Services[name]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return l.startSetup(p)
}

func (l *Lab) startService(svc *Service) error {
	addr := svc.Addr()
	switch svc.Network {
	case NetworkDrop:
		bh, err := netx.BlackholeListener(svc.ln.(*net.TCPListener))
		if err != nil {
			return err
		}
		l.onClose(bh.Close)
		l.logger.Info("service drops connections", "service", svc.Name, "addr", addr)
		return nil
	case NetworkRefuse:
		r, err := netx.RefuserBeside(svc.ln)
		if err != nil {
			return err
		}
		svc.ln.Close()
		l.onClose(r.Close)
		l.logger.Info("service refuses connections", "service", svc.Name, "addr", addr)
		return nil
	}
	srv := l.newServer(svc)
	l.mu.Lock()
	l.shutdown = append(l.shutdown, srv.Shutdown)
	l.closers = append(l.closers, srv.Close)
	l.mu.Unlock()

	if svc.Middlebox != nil {
		// The server listens where only the middlebox knows; clients
		// reach the advertised port, where the middlebox relays.
		inner, err := listenTCP(svc.Provider.IP, 0)
		if err != nil {
			return err
		}
		l.onClose(inner.Close)
		// The limits do not apply here: the inner connections all come
		// from the lab's own address, and the middlebox (a fault)
		// decides what the client sees.
		l.goServe(svc.Name, func() error { return srv.Serve(l.serverListener(svc, inner, nil, false)) })
		public := &sessionListener{Listener: svc.ln, lab: l, svc: svc, wrappers: svc.ConnWrappers}
		innerAddr := inner.Addr().String()
		l.goServe(svc.Name+" middlebox", func() error { return l.serveMiddlebox(svc, public, innerAddr) })
		return nil
	}
	l.goServe(svc.Name, func() error { return srv.Serve(l.serverListener(svc, svc.ln, svc.ConnWrappers, true)) })
	return nil
}

// serverListener stacks what sits between the socket and the server:
// transcript session, connection limits (if limited) and fault wrappers
// below TLS, then the implicit-TLS handshake (with the greeting delay after
// it) for TLS ports.
func (l *Lab) serverListener(svc *Service, ln net.Listener, wrappers []ConnWrapper, limited bool) net.Listener {
	// Below everything else (and TLS), so they see the servers' deadlines:
	// the first read timeout ends the session, and IMAP's deadlines are
	// the lab's, not go-imap's.
	timeouts := imapd.Timeouts{Command: l.opts.IMAPCommandTimeout, Idle: l.opts.IMAPIdleTimeout}
	all := append([]ConnWrapper{func(c net.Conn, _ *transcript.Session) net.Conn {
		c = netx.NewFinalTimeout(c)
		if svc.Protocol == settings.ProtocolIMAP {
			c = timeouts.Wrap(c)
		}
		return c
	}}, wrappers...)
	if svc.GreetingDelay > 0 && !svc.TLS() {
		d := svc.GreetingDelay
		all = append(all, func(c net.Conn, ts *transcript.Session) net.Conn {
			ts.Eventf("fault: greeting delayed by %s", d)
			return netx.NewDelayFirstWrite(c, d)
		})
	}
	var out net.Listener = &sessionListener{Listener: ln, lab: l, svc: svc, wrappers: all, limited: limited}
	if svc.TLS() {
		out = newTLSListener(out, l.serverTLS(svc), l.opts.HandshakeTimeout, svc.GreetingDelay, l.logger.With("service", svc.Name))
	}
	return out
}

func (l *Lab) serveMiddlebox(svc *Service, public net.Listener, innerAddr string) error {
	loop := &netx.AcceptLoop{
		Handle: func(c net.Conn) {
			ts := sessionOf(c)
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				svc.Middlebox.Serve(c, ts, func() (net.Conn, error) {
					d := net.Dialer{Timeout: 5 * time.Second}
					return d.Dial("tcp", innerAddr)
				})
			}()
		},
		OnRetry: func(err error, wait time.Duration) {
			l.logger.Warn("accept failed; retrying", "service", svc.Name, "err", err, "in", wait)
		},
	}
	return loop.Run(public)
}

// serverTLS is the TLS configuration a service presents.
func (l *Lab) serverTLS(svc *Service) *tls.Config {
	cert := svc.Provider.Certificate
	if svc.Certificate != nil {
		cert = *svc.Certificate
	}
	return tlsConfig(cert, svc.MinTLS, svc.MaxTLS)
}

func (l *Lab) authenticator(p *Provider) auth.Authenticator {
	return auth.Chain(&auth.Store{Store: p.Store, Tokens: p.Tokens}, append([]auth.Middleware{l.noteRefusals}, l.AuthPolicies...)...)
}

func (l *Lab) newServer(svc *Service) server {
	p := svc.Provider
	var starttls *tls.Config
	if !svc.TLS() && svc.OfferSTARTTLS {
		starttls = l.serverTLS(svc)
	}
	logger := l.logger.With("service", svc.Name, "domain", p.Domain)
	switch svc.Protocol {
	case settings.ProtocolSMTP:
		mode := smtpd.ModeSubmission
		if svc.Name == "smtp" {
			mode = smtpd.ModeRelay
		}
		var checks []smtpd.Check
		if p == l.Primary {
			checks = l.SMTPChecks
		}
		maxSize := svc.MaxMessageBytes // a fault's override
		if maxSize == 0 {
			// The store's limit, the same as IMAP's APPENDLIMIT; smtpd
			// reads 0 as its own default, so "none" is the largest.
			if maxSize = p.Store.MaxMessageSize(); maxSize == 0 {
				maxSize = math.MaxInt64
			}
		}
		return smtpd.New(smtpd.Config{
			Hostname:          p.MailHost,
			Service:           svc.Name,
			Mode:              mode,
			Store:             p.Store,
			Auth:              l.authenticator(p),
			LocalDomains:      []string{p.Domain},
			TLSConfig:         starttls,
			AllowInsecureAuth: svc.AllowInsecureAuth,
			Mechanisms:        svc.Mechanisms,
			MaxMessageBytes:   maxSize,
			ReadTimeout:       l.opts.SMTPTimeout,
			DataTimeout:       l.opts.SMTPDataTimeout,
			Checks:            checks,
			Relay: func(from string, to []string, msg []byte) error {
				l.logger.Info("relayed mail not delivered: the lab has no outside world", "from", from, "to", to, "size", len(msg))
				return nil
			},
			Logger: logger,
			Transcript: func(c net.Conn) io.Writer {
				if ts := sessionOf(c); ts != nil {
					return ts.SMTPWriter()
				}
				return nil
			},
		})
	case settings.ProtocolIMAP:
		return imapd.New(imapd.Config{
			Hostname:          p.MailHost,
			Service:           svc.Name,
			Store:             p.Store,
			Auth:              l.authenticator(p),
			TLSConfig:         starttls,
			AllowInsecureAuth: svc.AllowInsecureAuth,
			Mechanisms:        svc.Mechanisms,
			Logger:            logger,
			Transcript: func(c net.Conn) io.Writer {
				if ts := sessionOf(c); ts != nil {
					return ts.IMAPWriter()
				}
				return nil
			},
		})
	default:
		var extra []string
		for _, m := range svc.Mechanisms {
			if m != auth.MechPlain {
				extra = append(extra, m)
			}
		}
		return pop3d.New(pop3d.Config{
			Hostname:          p.MailHost,
			Service:           svc.Name,
			Store:             p.Store,
			Auth:              l.authenticator(p),
			TLSConfig:         starttls,
			AllowInsecureAuth: svc.AllowInsecureAuth,
			Mechanisms:        extra,
			ReadTimeout:       l.opts.POP3Timeout,
			Logger:            logger,
			Trace: func(c *pop3.Conn, fromClient bool, line string) {
				if ts := sessionOf(c.Conn()); ts != nil {
					dir := transcript.Server
					if fromClient {
						dir = transcript.Client
					}
					ts.Log(dir, line)
				}
			},
		})
	}
}

func (l *Lab) startDNS() error {
	srv, err := dnsd.New(dnsd.Config{
		Zones:      l.DNS.Zones,
		Middleware: l.DNS.Middleware,
		Logger:     l.logger,
		Transcript: l.sink,
	})
	if err != nil {
		return err
	}
	l.DNS.server = srv
	return srv.Serve(l.DNS.udp, l.DNS.tcp)
}

// sessionConn is the bottom wrapper of every accepted connection: it owns
// the connection's transcript session.
type sessionConn struct {
	netx.Wrapped
	ts   *transcript.Session
	once sync.Once
	// refusal is the reply owed after the TLS handshake to a connection
	// over a limit; refused is called once it has been sent (or not).
	refusal string
	refused func()
}

func (c *sessionConn) Close() error {
	c.once.Do(func() { c.ts.Eventf("connection closed") })
	return c.Conn.Close()
}

// sessionOf finds the transcript session of a connection by walking down
// its wrappers (TLS included) to the sessionConn.
func sessionOf(c net.Conn) *transcript.Session {
	for c != nil {
		if sc, ok := c.(*sessionConn); ok {
			return sc.ts
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		next := u.NetConn()
		if next == c {
			return nil
		}
		c = next
	}
	return nil
}

// sessionListener opens a transcript session per connection, counts it
// against the lab's connection limits (if limited) and applies the fault
// wrappers.
type sessionListener struct {
	net.Listener
	lab      *Lab
	svc      *Service
	wrappers []ConnWrapper
	limited  bool
}

func (sl *sessionListener) Accept() (net.Conn, error) {
	for {
		raw, err := sl.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ts := transcript.NewSession(sl.lab.sink, sl.svc.Name, raw.RemoteAddr())
		ts.Eventf("connection from %s to %s (%s)", raw.RemoteAddr(), raw.LocalAddr(), sl.svc.Provider.Domain)
		if sl.limited {
			counted, over := sl.lab.limiter.Admit(raw)
			if over != nil {
				if c := sl.refuse(raw, ts, over); c != nil {
					return c, nil // refused after the TLS handshake
				}
				continue
			}
			raw = counted
		}
		var c net.Conn = &sessionConn{Wrapped: netx.Wrapped{Conn: raw}, ts: ts}
		for _, w := range sl.wrappers {
			c = w(c, ts)
		}
		return c, nil
	}
}

// maxRefusingHandshakes bounds the implicit-TLS handshakes in flight that
// are done only to refuse a connection over a limit; past it, such
// connections are closed without a reply (a flood must not cost more
// descriptors than the limit saves).
const maxRefusingHandshakes = 64

// refuse answers a connection over a limit. On a plaintext port it writes
// the protocol's reply and closes, returning nil. On an implicit-TLS port
// the reply must come after the handshake: it returns the connection
// marked, and the tlsListener replies and closes it instead of handing it
// to the server.
func (sl *sessionListener) refuse(raw net.Conn, ts *transcript.Session, over *netx.LimitError) net.Conn {
	line := limitReply(sl.svc, over)
	ts.Eventf("connection limit: %v", over)
	sl.lab.logger.Debug("connection refused", "service", sl.svc.Name, "reason", over)
	sc := &sessionConn{Wrapped: netx.Wrapped{Conn: raw}, ts: ts}
	if !sl.svc.TLS() {
		ts.Log(transcript.Server, line)
		raw.SetWriteDeadline(time.Now().Add(time.Second))
		raw.Write([]byte(line + "\r\n"))
		sc.Close()
		return nil
	}
	select {
	case sl.lab.refusing <- struct{}{}:
	default:
		ts.Eventf("connection limit: %d refusals already in their TLS handshake; closed without a reply", maxRefusingHandshakes)
		sc.Close()
		return nil
	}
	sc.refusal = line
	sc.refused = func() { <-sl.lab.refusing }
	return sc
}

// limitReply is the reply to a connection over a limit, in its protocol's
// own words: Postfix's 421 4.7.0 (RFC 5321 §3.8, RFC 3463 X.7.0), an IMAP
// BYE greeting (RFC 9051 §7.1.5) with RFC 5530's LIMIT for the client's
// own limit and UNAVAILABLE for the server's, and POP3's -ERR [SYS/TEMP]
// (RFC 3206 §4).
func limitReply(svc *Service, over *netx.LimitError) string {
	host := svc.Provider.MailHost
	switch svc.Protocol {
	case settings.ProtocolSMTP:
		if over.PerClient {
			return fmt.Sprintf("421 4.7.0 %s Error: too many connections from %s", host, over.Client)
		}
		return fmt.Sprintf("421 4.7.0 %s Error: too many connections, try again later", host)
	case settings.ProtocolIMAP:
		if over.PerClient {
			return fmt.Sprintf("* BYE [LIMIT] Too many connections from %s, try again later", over.Client)
		}
		return "* BYE [UNAVAILABLE] Too many connections, try again later"
	default:
		if over.PerClient {
			return fmt.Sprintf("-ERR [SYS/TEMP] Too many connections from %s, try again later.", over.Client)
		}
		return "-ERR [SYS/TEMP] Too many connections, try again later."
	}
}

// refusalOf returns the reply a connection over a limit is owed after its
// TLS handshake, and the function that ends the refusal ("" and nil for a
// connection within the limits).
func refusalOf(c net.Conn) (string, func()) {
	for c != nil {
		if sc, ok := c.(*sessionConn); ok {
			return sc.refusal, sc.refused
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return "", nil
		}
		next := u.NetConn()
		if next == c {
			return "", nil
		}
		c = next
	}
	return "", nil
}

// tlsListener does the implicit-TLS handshake itself, off the accept path
// (so a stalled client cannot block others), notes the result in the
// transcript, tells wrappers the handshake is done, holds the greeting if
// asked, and only then hands the *tls.Conn to the server: go-smtp and
// go-imap detect TLS by that type, and a greeting delay below TLS would
// delay the handshake instead.
type tlsListener struct {
	inner   net.Listener
	cfg     *tls.Config
	timeout time.Duration
	delay   time.Duration
	log     *slog.Logger
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func newTLSListener(inner net.Listener, cfg *tls.Config, timeout, delay time.Duration, log *slog.Logger) *tlsListener {
	tl := &tlsListener{inner: inner, cfg: cfg, timeout: timeout, delay: delay, log: log,
		conns: make(chan net.Conn), done: make(chan struct{})}
	go tl.acceptLoop()
	return tl
}

// acceptLoop accepts until Close; a failed accept (out of file
// descriptors) is retried, never handed to the server: a server that got
// it might stop serving the port for good.
func (tl *tlsListener) acceptLoop() {
	loop := &netx.AcceptLoop{
		Handle: func(c net.Conn) { go tl.handshake(c) },
		OnRetry: func(err error, wait time.Duration) {
			tl.log.Warn("accept failed; retrying", "addr", tl.inner.Addr(), "err", err, "in", wait)
		},
		Stop: tl.done,
	}
	loop.Run(tl.inner)
}

func (tl *tlsListener) handshake(c net.Conn) {
	ts := sessionOf(c)
	refusal, refused := refusalOf(c)
	if refused != nil {
		defer refused()
	}
	t := tls.Server(c, tl.cfg)
	c.SetDeadline(time.Now().Add(tl.timeout))
	if err := t.Handshake(); err != nil {
		if ts != nil {
			ts.Eventf("TLS handshake failed: %v", err)
		}
		c.Close()
		return
	}
	if ts != nil {
		st := t.ConnectionState()
		ts.Eventf("TLS established: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
	if refusal != "" {
		// Over a connection limit: the protocol's reply, inside TLS.
		if ts != nil {
			ts.Log(transcript.Server, refusal)
		}
		t.Write([]byte(refusal + "\r\n"))
		t.Close()
		return
	}
	c.SetDeadline(time.Time{})
	netx.NotifyHandshakeDone(c)
	if tl.delay > 0 {
		if ts != nil {
			ts.Eventf("fault: greeting delayed by %s", tl.delay)
		}
		select {
		case <-time.After(tl.delay):
		case <-tl.done:
			t.Close()
			return
		}
	}
	select {
	case tl.conns <- t:
	case <-tl.done:
		t.Close()
	}
}

func (tl *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-tl.conns:
		return c, nil
	case <-tl.done:
		return nil, net.ErrClosed
	}
}

func (tl *tlsListener) Close() error {
	tl.once.Do(func() { close(tl.done) })
	return tl.inner.Close()
}

func (tl *tlsListener) Addr() net.Addr { return tl.inner.Addr() }

var (
	_ net.Listener = (*tlsListener)(nil)
	_ net.Listener = (*sessionListener)(nil)
)
