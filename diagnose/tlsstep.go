package diagnose

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/maillab/maillab/diagnose/certcheck"
	"github.com/maillab/maillab/diagnose/wire"
	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/settings"
)

// stepImplicitTLS negotiates TLS on a port that speaks it from the first
// byte. A stalled handshake is retried on new connections to tell packet
// loss from a dead server; a successful one is repeated to catch a share
// of stalling connections. Every handshake gets the whole reply timeout.
func (p *prober) stepImplicitTLS(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepTLS)
	s := p.sess
	params := clientParams(p.cfg.ClientMaxTLS)
	h := handshake(ctx, s.raw, p.svc.Host, params, p.cfg.ReplyTimeout)
	if h.ok() {
		s.upgrade(h.conn)
		stalls, tries := p.extraHandshakes(ctx, params, p.cfg.TLSAttempts-1, p.extraTimeout())
		p.judgeTLS(ctx, st, h, stalls, tries+1)
		return st.done(true)
	}
	if h.stalled() {
		for i := 1; i < p.cfg.TLSAttempts; i++ {
			conn, _, err := p.dial(ctx, p.svc.Host, p.addrs, p.svc.Port, p.cfg.ConnectTimeout)
			if err != nil {
				break
			}
			h2 := handshake(ctx, conn, p.svc.Host, params, p.extraTimeout())
			if h2.ok() {
				s.raw.Close()
				s2 := newSession(ctx, conn, p.cfg.ReplyTimeout)
				*s = *s2
				s.upgrade(h2.conn)
				p.judgeTLS(ctx, st, h2, i, i+1)
				return st.done(true)
			}
			conn.Close()
			if !h2.stalled() {
				break
			}
		}
		st.fail(rootcause.ServerSlow, fmt.Sprintf("TCP connects, but %d TLS handshakes did not complete (first waited %s)", p.cfg.TLSAttempts, h.elapsed.Round(time.Millisecond)),
			fmt.Sprintf("the server accepts connections on port %d but never completes the TLS handshake", p.svc.Port), "")
		return st.done(false)
	}
	p.tlsFailure(ctx, st, h, false)
	return st.done(false)
}

// extraTimeout is the wait for a repeated handshake: the whole reply
// timeout, as for the first. A handshake counts as stalled only when it
// outlasts what a client would wait; a shorter wait read a busy machine
// (or a busy server) as a lossy link: on 2 cores under load a handshake
// can take longer than half a short timeout, and healthy accounts were
// reported INTERMITTENT.
func (p *prober) extraTimeout() time.Duration {
	return p.cfg.ReplyTimeout
}

// extraHandshakes opens n more connections and handshakes on each within
// timeout; it returns how many stalled and how many were tried.
func (p *prober) extraHandshakes(ctx context.Context, params tlsParams, n int, timeout time.Duration) (stalls, tries int) {
	for i := 0; i < n; i++ {
		conn, _, err := p.dial(ctx, p.svc.Host, p.addrs, p.svc.Port, p.cfg.ConnectTimeout)
		if err != nil {
			return stalls, tries
		}
		tries++
		h := handshake(ctx, conn, p.svc.Host, params, timeout)
		conn.Close()
		if h.stalled() {
			stalls++
		}
	}
	return stalls, tries
}

// judgeTLS classifies the negotiated connection and its certificate and
// records the TLS step (or the STARTTLS step, for STARTTLS).
func (p *prober) judgeTLS(ctx context.Context, st *stepRec, h hsResult, stalls, tries int) {
	now := p.cfg.Now()
	v := certcheck.Check(ctx, certcheck.Input{
		Chain:       h.state.PeerCertificates,
		Host:        p.svc.Host,
		Roots:       p.env.roots,
		RootCerts:   p.env.rootCerts,
		Now:         now,
		FetchIssuer: p.env.fetch,
	})
	p.cert = &v
	p.certStep = st.idx
	ev := h.describe()
	if len(h.state.PeerCertificates) > 0 {
		ev += "; certificate " + v.Evidence
	}
	if stalls > 0 {
		ev += fmt.Sprintf("; %d of %d handshakes stalled", stalls, tries)
	}
	if h.state.Version < tls.VersionTLS12 {
		p.noteOldTLS(ctx, h.state.Version, ev)
	}
	switch {
	case v.Code != "":
		p.untrusted = true
		summary := v.Summary
		fix := defaultFix(v.Code, p.svc)
		switch v.Code {
		case rootcause.TLSCertHostnameMismatch:
			if v.Suggest != "" {
				fix = fmt.Sprintf("In the mail client, set the %s to %s, a name the server's certificate carries (it names %s).", role(p.svc), v.Suggest, strings.Join(v.Names, ", "))
			}
		case rootcause.TLSIntercepted:
			fix = fmt.Sprintf("Something on this computer or network re-signs the mail server's certificate (%s). Turn off its SSL/TLS or e-mail scanning, or exempt %s from inspection.", v.Interception, p.svc.Host)
		}
		st.fail(v.Code, ev, summary, fix)
		if stalls > 0 {
			p.note(SeverityError, rootcause.Intermittent, fmt.Sprintf("%d of %d TLS handshakes with %s port %d stalled", stalls, tries, p.svc.Host, p.svc.Port), ev, defaultFix(rootcause.Intermittent, p.svc))
		}
	case stalls > 0:
		st.fail(rootcause.Intermittent, ev, fmt.Sprintf("%d of %d TLS handshakes with %s port %d stalled; the others succeeded", stalls, tries, p.svc.Host, p.svc.Port), "")
	default:
		st.pass(ev)
	}
}

// noteOldTLS warns about a connection that works with a TLS version below
// 1.2. The version is the highest that both sides speak (RFC 8446 §4.2.1,
// RFC 5246 §7.4.1.2), so it says whose limit chose it: when it is below
// the client's maximum it is the server's maximum; when it is the
// client's, a second handshake offering TLS 1.0 to 1.3 learns the
// server's. Old TLS is the server's fault only when its own maximum is old.
func (p *prober) noteOldTLS(ctx context.Context, negotiated uint16, ev string) {
	clientMax := clientParams(p.cfg.ClientMaxTLS).max
	serverMax, known := negotiated, negotiated < clientMax
	if !known {
		if w := p.freshHandshake(ctx, wideParams); w.ok() {
			serverMax, known = w.state.Version, true
			w.conn.Close()
		}
	}
	switch {
	case known && serverMax < tls.VersionTLS12:
		p.note(SeverityWarning, rootcause.TLSProtocolTooOld,
			fmt.Sprintf("the server speaks at most %s, which current mail clients refuse", tlsVersionName(serverMax)),
			ev, defaultFix(rootcause.TLSProtocolTooOld, p.svc))
	case known:
		p.note(SeverityWarning, rootcause.TLSClientOutdated,
			fmt.Sprintf("the connection uses %s only because the client allows nothing newer; the server speaks %s, and servers that require TLS 1.2 will refuse this client", tlsVersionName(negotiated), tlsVersionName(serverMax)),
			fmt.Sprintf("%s; with TLS 1.0–1.3 allowed, the server negotiated %s", ev, tlsVersionName(serverMax)),
			fmt.Sprintf("The mail client allows at most %s: update it, or enable TLS 1.2 in its (or the operating system's) settings.", tlsVersionName(clientMax)))
	default:
		p.note(SeverityWarning, "",
			fmt.Sprintf("the connection uses %s, the highest version the client allows; whether the server speaks a newer one could not be tested", tlsVersionName(negotiated)),
			ev, fmt.Sprintf("The mail client allows at most %s: update it, or enable TLS 1.2 in its (or the operating system's) settings.", tlsVersionName(clientMax)))
	}
}

// tlsFailure classifies a handshake that failed without stalling.
func (p *prober) tlsFailure(ctx context.Context, st *stepRec, h hsResult, starttls bool) {
	ev := h.describe()
	want := map[string]wire.Protocol{settings.ProtocolSMTP: wire.ProtoSMTP, settings.ProtocolIMAP: wire.ProtoIMAP, settings.ProtocolPOP3: wire.ProtoPOP3}[p.proto]
	if h.plaintext != nil {
		sn := wire.Sniff(h.plaintext)
		switch {
		case starttls:
			st.fail(rootcause.STARTTLSHandshakeFailed, "after STARTTLS was accepted, "+ev,
				"the server accepted STARTTLS but then did not speak TLS", "")
		case sn.Protocol == want:
			fix := fmt.Sprintf("Port %d speaks plaintext %s first: in the mail client set the %s security to STARTTLS for port %d", p.svc.Port, protoWord(p.svc), role(p.svc), p.svc.Port)
			if c, ok := p.srvFor(ctx, settings.SecurityTLS); ok {
				fix += fmt.Sprintf(", or use %s with SSL/TLS (published by %s)", c.hostPortOnly(), c.source)
			} else {
				fix += fmt.Sprintf(", or use port %d with SSL/TLS", settings.StandardPort(p.proto, settings.SecurityTLS))
			}
			st.fail(rootcause.PortSecurityMismatchTLSOnPlain, fmt.Sprintf("the client sent a TLS ClientHello, the server answered with its plaintext greeting %q", sn.Line),
				fmt.Sprintf("port %d speaks plaintext %s, but the settings say SSL/TLS", p.svc.Port, protoWord(p.svc)), fix+".")
		default:
			p.wrongProtocol(ctx, st, sn)
		}
		return
	}
	if h.alert != nil || h.kind == nkEOF || h.kind == nkReset {
		if w := p.freshHandshake(ctx, wideParams); w.ok() {
			v := w.state.Version
			clientMax := tlsVersionOf(p.cfg.ClientMaxTLS)
			switch {
			case v < tls.VersionTLS12 && (clientMax == 0 || clientMax >= tls.VersionTLS12):
				st.fail(rootcause.TLSProtocolTooOld, fmt.Sprintf("%s; with TLS 1.0–1.3 allowed, the server negotiated %s", ev, tlsVersionName(v)),
					fmt.Sprintf("the server speaks at most %s; the client requires TLS 1.2 or newer", tlsVersionName(v)), "")
			case clientMax != 0 && v > clientMax:
				st.fail(rootcause.TLSClientOutdated, fmt.Sprintf("%s; with TLS 1.0–1.3 allowed, the server negotiated %s", ev, tlsVersionName(v)),
					fmt.Sprintf("the client speaks at most %s, but the server requires a newer version (it chose %s)", tlsVersionName(clientMax), tlsVersionName(v)),
					fmt.Sprintf("The mail client allows at most %s, the server needs TLS 1.2 or newer: update the mail client, or enable TLS 1.2 in its (or the operating system's) settings.", tlsVersionName(clientMax)))
			default:
				st.fail(rootcause.Intermittent, fmt.Sprintf("%s; a second handshake succeeded (%s)", ev, w.describe()),
					"the TLS handshake failed once and succeeded on the next connection", "")
			}
			w.conn.Close()
			return
		}
		if h.alert != nil {
			if w := p.freshHandshake(ctx, tlsParams{min: tls.VersionTLS10, max: tls.VersionTLS13, insecureCiphers: true}); w.ok() {
				w.conn.Close()
				st.fail(rootcause.TLSProtocolTooOld, fmt.Sprintf("%s; the handshake works only with obsolete cipher suites (%s)", ev, w.describe()),
					"the server offers only obsolete cipher suites that current clients refuse", "")
				return
			}
		}
	}
	switch {
	case starttls:
		st.fail(rootcause.STARTTLSHandshakeFailed, "after STARTTLS was accepted, "+ev, "the server accepted STARTTLS, then the TLS handshake failed", "")
	case h.alert != nil && h.alert.Description == wire.AlertUnrecognizedName:
		st.fail(rootcause.TLSCertHostnameMismatch, ev, fmt.Sprintf("the server has no certificate for the name %s (TLS alert unrecognized_name)", p.svc.Host), "")
	case h.alert != nil:
		st.fail(rootcause.TLSProtocolTooOld, ev+"; no TLS version or cipher suite from 1.0 to 1.3 was accepted",
			"the server and a current client agree on no TLS version or cipher suite", "")
	case h.kind == nkEOF || h.kind == nkReset:
		st.fail(rootcause.TCPReset, ev, fmt.Sprintf("the connection to %s port %d is cut during the TLS handshake", p.svc.Host, p.svc.Port), "")
	default:
		st.fail(rootcause.TLSProtocolTooOld, ev, "the TLS handshake failed", "")
	}
}

// freshHandshake opens a new connection, runs the plaintext dialogue up to
// STARTTLS when the service uses it, and handshakes with params.
func (p *prober) freshHandshake(ctx context.Context, params tlsParams) hsResult {
	conn, _, err := p.dial(ctx, p.svc.Host, p.addrs, p.svc.Port, p.cfg.ConnectTimeout)
	if err != nil {
		return hsResult{err: err, kind: netErrKind(err)}
	}
	if p.svc.Security == settings.SecurityStartTLS {
		s := newSession(ctx, conn, p.cfg.ReplyTimeout)
		defer s.stop()
		if err := p.preTLS(s); err != nil {
			conn.Close()
			return hsResult{err: err, kind: netErrKind(err)}
		}
	}
	h := handshake(ctx, conn, p.svc.Host, params, p.cfg.ReplyTimeout)
	if !h.ok() {
		conn.Close()
	}
	return h
}

// preTLS runs greeting, capabilities and STARTTLS on a fresh session, for
// the repeated handshakes.
func (p *prober) preTLS(s *session) error {
	switch p.proto {
	case settings.ProtocolSMTP:
		if rep, err := s.readReply(); err != nil || rep.Code != 220 {
			return fmt.Errorf("greeting: %w", errOr(err, rep.String()))
		}
		if rep, err := s.smtpCmd("EHLO " + s.ehloName()); err != nil || rep.Code != 250 {
			return fmt.Errorf("EHLO: %w", errOr(err, rep.String()))
		}
		if rep, err := s.smtpCmd("STARTTLS"); err != nil || rep.Code != 220 {
			return fmt.Errorf("STARTTLS: %w", errOr(err, rep.String()))
		}
	case settings.ProtocolIMAP:
		if _, err := s.readLine(); err != nil {
			return err
		}
		if resp, _, err := s.imapCmd("STARTTLS"); err != nil || resp.Status != "OK" {
			return fmt.Errorf("STARTTLS: %w", errOr(err, resp.Raw))
		}
	case settings.ProtocolPOP3:
		if _, err := s.readLine(); err != nil {
			return err
		}
		if stt, err := s.pop3Cmd("STLS"); err != nil || !stt.OK {
			return fmt.Errorf("STLS: %w", errOr(err, stt.Raw))
		}
	}
	s.raw.SetDeadline(time.Time{})
	return nil
}

type replyError string

// Error returns the refusing reply.
func (e replyError) Error() string { return "refused: " + string(e) }

func errOr(err error, reply string) error {
	if err != nil {
		return err
	}
	return replyError(reply)
}

// srvFor returns the domain's SRV candidate for this protocol with the
// given security.
func (p *prober) srvFor(ctx context.Context, security string) (candidate, bool) {
	d := p.env.domain
	if d.name == "" || !d.wait(ctx) {
		return candidate{}, false
	}
	for _, c := range d.srvCandidates(p.proto) {
		if c.security == security {
			return c, true
		}
	}
	return candidate{}, false
}

func (c candidate) hostPortOnly() string { return fmt.Sprintf("%s port %d", c.host, c.port) }

// judgeWrongAddress turns a hostname mismatch into DNS_WRONG_ADDRESS when
// the server is evidently another organisation's: its certificate is valid
// and trusted but names only another registrable domain, the name was not
// an alias (CNAME) into that domain, and the greeting names that domain too
// (or the host resolved elsewhere than the settings say).
func (p *prober) judgeWrongAddress() {
	v := p.cert
	if v == nil || v.Code != rootcause.TLSCertHostnameMismatch || !v.Trusted || p.greeting == "" {
		return
	}
	hostDom := certcheck.RegistrableDomain(p.svc.Host)
	var certDoms []string
	for _, n := range v.Names {
		if strings.Contains(n, " ") {
			n = strings.Fields(n)[0]
		}
		if _, err := netip.ParseAddr(n); err == nil {
			continue
		}
		d := certcheck.RegistrableDomain(strings.TrimPrefix(n, "*."))
		if d == hostDom {
			return
		}
		if !slices.Contains(certDoms, d) {
			certDoms = append(certDoms, d)
		}
	}
	if len(certDoms) == 0 {
		return
	}
	for _, c := range p.cnames {
		if slices.Contains(certDoms, certcheck.RegistrableDomain(c)) {
			return
		}
	}
	greetNames := false
	for _, d := range greetingDomains(p.greeting) {
		greetNames = greetNames || slices.Contains(certDoms, d)
	}
	addrMismatch := p.svc.Address != "" && !slices.ContainsFunc(p.addrs, func(a netip.Addr) bool { return a.String() == p.svc.Address })
	if !greetNames && !addrMismatch {
		return
	}
	var addrs []string
	for _, a := range p.addrs {
		addrs = append(addrs, a.String())
	}
	summary := fmt.Sprintf("%s resolves to %s, a server of another organisation: its valid certificate names only %s and its greeting says %q",
		p.svc.Host, strings.Join(addrs, ", "), strings.Join(v.Names, ", "), p.greeting)
	fix := fmt.Sprintf("You reached another organisation's server. Flush the DNS cache, look for a stale %s entry in the hosts file, and check the DNS record of %s (it may be wrong or poisoned).", p.svc.Host, p.svc.Host)
	if p.svc.Address != "" {
		fix += fmt.Sprintf(" The settings expect %s.", p.svc.Address)
	}
	p.recode(p.certStep, rootcause.DNSWrongAddress, summary, fix)
}
