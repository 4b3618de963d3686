package lab

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
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
		l.goServe(svc.Name, func() error { return srv.Serve(l.serverListener(svc, inner, nil)) })
		public := &sessionListener{Listener: svc.ln, lab: l, svc: svc, wrappers: svc.ConnWrappers}
		innerAddr := inner.Addr().String()
		l.goServe(svc.Name+" middlebox", func() error { return l.serveMiddlebox(svc, public, innerAddr) })
		return nil
	}
	l.goServe(svc.Name, func() error { return srv.Serve(l.serverListener(svc, svc.ln, svc.ConnWrappers)) })
	return nil
}

// serverListener stacks what sits between the socket and the server:
// transcript session and fault wrappers below TLS, then the implicit-TLS
// handshake (with the greeting delay after it) for TLS ports.
func (l *Lab) serverListener(svc *Service, ln net.Listener, wrappers []ConnWrapper) net.Listener {
	all := wrappers
	if svc.GreetingDelay > 0 && !svc.TLS() {
		d := svc.GreetingDelay
		all = append(append([]ConnWrapper(nil), wrappers...), func(c net.Conn, ts *transcript.Session) net.Conn {
			ts.Eventf("fault: greeting delayed by %s", d)
			return netx.NewDelayFirstWrite(c, d)
		})
	}
	var out net.Listener = &sessionListener{Listener: ln, lab: l, svc: svc, wrappers: all}
	if svc.TLS() {
		out = newTLSListener(out, l.serverTLS(svc), l.opts.HandshakeTimeout, svc.GreetingDelay)
	}
	return out
}

func (l *Lab) serveMiddlebox(svc *Service, public net.Listener, innerAddr string) error {
	for {
		c, err := public.Accept()
		if err != nil {
			return err
		}
		ts := sessionOf(c)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			svc.Middlebox.Serve(c, ts, func() (net.Conn, error) {
				d := net.Dialer{Timeout: 5 * time.Second}
				return d.Dial("tcp", innerAddr)
			})
		}()
	}
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
			MaxMessageBytes:   svc.MaxMessageBytes,
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

// sessionListener opens a transcript session per connection and applies
// the fault wrappers.
type sessionListener struct {
	net.Listener
	lab      *Lab
	svc      *Service
	wrappers []ConnWrapper
}

func (sl *sessionListener) Accept() (net.Conn, error) {
	raw, err := sl.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ts := transcript.NewSession(sl.lab.sink, sl.svc.Name, raw.RemoteAddr())
	ts.Eventf("connection from %s to %s (%s)", raw.RemoteAddr(), raw.LocalAddr(), sl.svc.Provider.Domain)
	var c net.Conn = &sessionConn{Wrapped: netx.Wrapped{Conn: raw}, ts: ts}
	for _, w := range sl.wrappers {
		c = w(c, ts)
	}
	return c, nil
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
	conns   chan net.Conn
	errc    chan error
	done    chan struct{}
	once    sync.Once
}

func newTLSListener(inner net.Listener, cfg *tls.Config, timeout, delay time.Duration) *tlsListener {
	tl := &tlsListener{inner: inner, cfg: cfg, timeout: timeout, delay: delay,
		conns: make(chan net.Conn), errc: make(chan error, 1), done: make(chan struct{})}
	go tl.acceptLoop()
	return tl
}

func (tl *tlsListener) acceptLoop() {
	for {
		c, err := tl.inner.Accept()
		if err != nil {
			tl.errc <- err
			return
		}
		go tl.handshake(c)
	}
}

func (tl *tlsListener) handshake(c net.Conn) {
	ts := sessionOf(c)
	t := tls.Server(c, tl.cfg)
	c.SetDeadline(time.Now().Add(tl.timeout))
	if err := t.Handshake(); err != nil {
		if ts != nil {
			ts.Eventf("TLS handshake failed: %v", err)
		}
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	if ts != nil {
		st := t.ConnectionState()
		ts.Eventf("TLS established: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
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
	case err := <-tl.errc:
		tl.errc <- err
		return nil, err
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
