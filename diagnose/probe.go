package diagnose

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/maillab/maillab/diagnose/certcheck"
	"github.com/maillab/maillab/diagnose/dnsprobe"
	"github.com/maillab/maillab/diagnose/wire"
	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/settings"
)

// issue is a failure, warning or note found by a probe.
type issue struct {
	code     rootcause.Code
	service  string
	severity string
	summary  string
	evidence string
	fix      string
	// order breaks ties: the service's index, then the step's.
	svcIdx, stepIdx int
}

// prober probes one service.
type prober struct {
	env   *runEnv
	cfg   *Config
	svc   Service
	proto string
	idx   int
	rep   ServiceReport

	issues []*issue
	// stepIssue maps a step index to its failure issue.
	stepIssue map[int]*issue
	// notForDomain is set when the host is not one of the domain's.
	notForDomain *issue

	addrs  []netip.Addr
	cnames []string
	// cert is the verdict on the certificate, once TLS was negotiated.
	cert *certcheck.Verdict
	// certStep is the index of the step that judged the certificate.
	certStep int
	// untrusted is set when the certificate must not be trusted with a
	// password.
	untrusted bool
	greeting  string
	// altTried is set once alternatives were looked for.
	altTried bool
}

func newProber(env *runEnv, idx int) *prober {
	svc := env.cfg.Services[idx]
	return &prober{
		env:       env,
		cfg:       &env.cfg,
		svc:       svc,
		proto:     svc.Protocol(),
		idx:       idx,
		stepIssue: map[int]*issue{},
		rep:       ServiceReport{Service: svc.Name, Host: svc.Host, Port: svc.Port, Security: svc.Security},
	}
}

// stepRec times one step.
type stepRec struct {
	p     *prober
	idx   int
	start time.Time
	// note is added to the step's evidence when it finishes.
	note string
}

func (p *prober) begin(name string) *stepRec {
	p.rep.Steps = append(p.rep.Steps, Step{Step: name})
	return &stepRec{p: p, idx: len(p.rep.Steps) - 1, start: time.Now()}
}

func (s *stepRec) step() *Step { return &s.p.rep.Steps[s.idx] }

func (s *stepRec) finish(ok bool, evidence string) {
	st := s.step()
	st.OK = ok
	if s.note != "" {
		evidence += "; " + s.note
	}
	st.Evidence = evidence
	st.ElapsedMS = math.Round(float64(time.Since(s.start).Microseconds())/100) / 10
}

// pass records success.
func (s *stepRec) pass(evidence string) { s.finish(true, evidence) }

// skip records a step deliberately not run.
func (s *stepRec) skip(evidence string) {
	s.finish(true, "skipped: "+evidence)
	s.step().Skipped = true
}

// fail records a failure with its code; summary and fix default to the
// catalog's words.
func (s *stepRec) fail(code rootcause.Code, evidence, summary, fix string) *issue {
	s.finish(false, evidence)
	s.step().Code = code
	if summary == "" {
		summary = rootcause.Meaning(code)
	}
	if fix == "" {
		fix = defaultFix(code, s.p.svc)
	}
	is := &issue{code: code, service: s.p.svc.Name, severity: SeverityError, summary: summary, evidence: evidence, fix: fix, svcIdx: s.p.idx, stepIdx: s.idx}
	s.p.issues = append(s.p.issues, is)
	s.p.stepIssue[s.idx] = is
	return is
}

// recode changes the code of a failed step and its issue.
func (p *prober) recode(stepIdx int, code rootcause.Code, summary, fix string) {
	p.rep.Steps[stepIdx].Code = code
	if is := p.stepIssue[stepIdx]; is != nil {
		is.code, is.summary, is.fix = code, summary, fix
	}
}

// note adds a warning or info finding.
func (p *prober) note(severity string, code rootcause.Code, summary, evidence, fix string) {
	p.issues = append(p.issues, &issue{code: code, service: p.svc.Name, severity: severity, summary: summary, evidence: evidence, fix: fix, svcIdx: p.idx, stepIdx: len(p.rep.Steps)})
}

// skipRest records the remaining steps of the flow as skipped.
func (p *prober) skipRest(reason string, steps ...string) {
	for _, name := range steps {
		p.begin(name).skip(reason)
	}
}

func (p *prober) label() string {
	return fmt.Sprintf("%s (%s port %d, %s)", p.svc.Name, p.svc.Host, p.svc.Port, securityWord(p.svc.Security))
}

// laterSteps are the steps after the connection, per protocol.
func (p *prober) laterSteps() []string {
	last := StepFetch
	if p.proto == settings.ProtocolSMTP {
		last = StepSend
	}
	return []string{StepAuth, last}
}

// run probes the service layer by layer, stopping at the first failure
// that makes the next layer meaningless.
func (p *prober) run(ctx context.Context) {
	defer p.env.gate.finish(p.idx)
	if !p.stepDNS(ctx) {
		return
	}
	s := p.connect(ctx)
	if s == nil {
		return
	}
	defer s.close()
	switch p.proto {
	case settings.ProtocolSMTP:
		p.smtpFlow(ctx, s)
	case settings.ProtocolIMAP:
		p.imapFlow(ctx, s)
	case settings.ProtocolPOP3:
		p.pop3Flow(ctx, s)
	}
}

// stepDNS resolves the host and checks it against the domain's records.
func (p *prober) stepDNS(ctx context.Context) bool {
	st := p.begin(StepDNS)
	host := p.svc.Host
	if ip, err := netip.ParseAddr(host); err == nil {
		p.addrs = []netip.Addr{ip}
		st.pass(host + " is an IP address; no lookup")
		return true
	}
	hr := p.env.lookupHost(ctx, host)
	desc := hr.Describe()
	switch hr.Outcome {
	case dnsprobe.OK:
		p.addrs, p.cnames = hr.Addrs, hr.CNAMEs
		var addrs []string
		for _, a := range hr.Addrs {
			addrs = append(addrs, a.String())
		}
		ev := fmt.Sprintf("%s → %s", host, strings.Join(addrs, ", "))
		if len(hr.CNAMEs) > 0 {
			ev = fmt.Sprintf("%s → CNAME %s → %s", host, strings.Join(hr.CNAMEs, " → "), strings.Join(addrs, ", "))
		}
		if hr.Server == dnsprobe.HostsSource {
			ev += " (from the hosts file)"
		} else {
			ev += fmt.Sprintf(" (answered by %s)", hr.Server)
		}
		if p.svc.Address != "" && !slices.ContainsFunc(hr.Addrs, func(a netip.Addr) bool { return a.String() == p.svc.Address }) {
			ev += fmt.Sprintf("; the settings expect %s", p.svc.Address)
		}
		if w := p.checkDomain(ctx); w != "" {
			ev += "; " + w
		}
		st.pass(ev)
		return true
	case dnsprobe.NXDomain, dnsprobe.NoData:
		summary := fmt.Sprintf("the %s name %s does not exist in DNS", role(p.svc), host)
		if hr.Outcome == dnsprobe.NoData {
			summary = fmt.Sprintf("the %s name %s exists but has no address (NODATA: no A or AAAA record)", role(p.svc), host)
		}
		fix := defaultFix(rootcause.DNSNXDomain, p.svc)
		if c, ok := p.suggestion(ctx); ok && !strings.EqualFold(c.host, host) {
			fix = fmt.Sprintf("In the mail client, set the %s to %s (published by %s); %q does not exist.", role(p.svc), c.hostPort(p.svc), c.source, host)
		}
		st.fail(rootcause.DNSNXDomain, desc, summary, fix)
	case dnsprobe.ServFail, dnsprobe.BadReply:
		st.fail(rootcause.DNSServFail, desc, fmt.Sprintf("%s answers SERVFAIL for %s: it cannot resolve the name right now", p.env.resolverDesc(), host), "")
	case dnsprobe.Refused:
		st.fail(rootcause.DNSResolverUnreachable, desc, fmt.Sprintf("%s refuses to resolve names for this computer (REFUSED)", p.env.resolverDesc()), "")
	case dnsprobe.Timeout:
		st.fail(rootcause.DNSTimeout, desc, fmt.Sprintf("%s did not answer within %s", p.env.resolverDesc(), p.cfg.Timeout), "")
	default:
		st.fail(rootcause.DNSResolverUnreachable, desc, fmt.Sprintf("%s cannot be reached", p.env.resolverDesc()), "")
	}
	return false
}

// hostPort renders a candidate for a fix, with the security the service
// needs.
func (c candidate) hostPort(s Service) string {
	if c.port == 0 {
		return c.host
	}
	return fmt.Sprintf("%s, port %d, %s", c.host, c.port, securityWord(c.security))
}

// suggestion is the domain's published host for this protocol, preferring
// the same security mode as configured.
func (p *prober) suggestion(ctx context.Context) (candidate, bool) {
	d := p.env.domain
	if d.name == "" || !d.wait(ctx) {
		return candidate{}, false
	}
	for _, c := range d.srvCandidates(p.proto) {
		if c.security == p.svc.Security {
			return c, true
		}
	}
	return d.suggestHost(p.proto)
}

// checkDomain flags a host that is not the domain's (CONFIG_HOST_NOT_FOR_
// DOMAIN); whether that is the root cause is decided at the end, when it is
// known whether the service works.
func (p *prober) checkDomain(ctx context.Context) string {
	d := p.env.domain
	if d.name == "" || !d.wait(ctx) || !d.known() {
		return ""
	}
	if d.ownsHost(p.svc.Host) {
		return ""
	}
	for _, c := range p.cnames {
		if d.ownsHost(c) {
			return ""
		}
	}
	evidence := fmt.Sprintf("%s is not a host of %s (%s)", p.svc.Host, d.name, d.describe(p.proto))
	fix := defaultFix(rootcause.ConfigHostNotForDomain, p.svc)
	if c, ok := p.suggestion(ctx); ok {
		fix = fmt.Sprintf("In the mail client, set the %s to %s (published by %s) instead of %s.", role(p.svc), c.hostPort(p.svc), c.source, p.svc.Host)
	}
	p.notForDomain = &issue{
		code:     rootcause.ConfigHostNotForDomain,
		service:  p.svc.Name,
		summary:  fmt.Sprintf("the %s %s is not a server of the account's domain %s", role(p.svc), p.svc.Host, d.name),
		evidence: evidence,
		fix:      fix,
		svcIdx:   p.idx,
	}
	return "warning: " + evidence
}

// connect opens the TCP connection, negotiates implicit TLS when the
// service uses it, and reads the greeting. It returns nil after a failure.
func (p *prober) connect(ctx context.Context) *session {
	raw, ok := p.stepTCP(ctx)
	if !ok {
		return nil
	}
	s := newSession(ctx, raw, p.cfg.Timeout)
	if p.svc.Security == settings.SecurityTLS {
		if !p.stepImplicitTLS(ctx, s) {
			s.close()
			return nil
		}
	}
	if !p.stepGreeting(ctx, s) {
		s.close()
		return nil
	}
	p.judgeWrongAddress()
	return s
}

// dial connects to the first address that answers, within one timeout in
// all. SMTP connections get a small send buffer so that the DATA timing
// reflects the link, not the kernel's buffer.
func (p *prober) dial(ctx context.Context, host string, addrs []netip.Addr, port int, timeout time.Duration) (net.Conn, string, error) {
	deadline := time.Now().Add(timeout)
	var lastErr error
	var lastAddr string
	for _, a := range addrs {
		if time.Until(deadline) <= 0 {
			break
		}
		addr := dialAddr(a.String(), port)
		d := net.Dialer{Deadline: deadline}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			if tc, ok := c.(*net.TCPConn); ok && p.proto == settings.ProtocolSMTP {
				tc.SetWriteBuffer(smtpSendBuffer)
			}
			return c, addr, nil
		}
		lastErr, lastAddr = err, addr
		if netErrKind(err) == nkTimeout {
			break
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("dial %s: no address", host)
	}
	return nil, lastAddr, lastErr
}

// smtpSendBuffer is SO_SNDBUF for SMTP connections (Linux doubles it).
const smtpSendBuffer = 8 << 10

// stepTCP connects; on refusal or timeout it probes the alternatives (and,
// after a timeout, the same port once more) concurrently.
func (p *prober) stepTCP(ctx context.Context) (net.Conn, bool) {
	st := p.begin(StepTCP)
	conn, addr, err := p.dial(ctx, p.svc.Host, p.addrs, p.svc.Port, p.cfg.Timeout)
	if err == nil {
		st.pass(fmt.Sprintf("connected to %s in %s", addr, time.Since(st.start).Round(100*time.Microsecond)))
		return conn, true
	}
	kind := netErrKind(err)
	elapsed := time.Since(st.start).Round(time.Millisecond)
	var retry net.Conn
	done := make(chan struct{})
	if kind == nkTimeout {
		// One lost SYN is not a firewall: try once more, alongside the
		// alternatives.
		go func() {
			defer close(done)
			c, _, err := p.dial(ctx, p.svc.Host, p.addrs, p.svc.Port, p.cfg.Timeout/2)
			if err == nil {
				retry = c
			}
		}()
	} else {
		close(done)
	}
	alts := p.probeAlternatives(ctx)
	<-done
	if retry != nil {
		st.fail(rootcause.Intermittent, fmt.Sprintf("first connect to %s timed out after %s, the second attempt connected", addr, elapsed),
			fmt.Sprintf("connections to %s port %d sometimes time out", p.svc.Host, p.svc.Port), "")
		return retry, true
	}
	code, what := rootcause.TCPRefused, "refused the connection"
	switch kind {
	case nkTimeout:
		code, what = rootcause.TCPTimeout, fmt.Sprintf("did not answer within %s (no SYN-ACK, no RST)", p.cfg.Timeout)
	case nkReset:
		code, what = rootcause.TCPReset, "reset the connection while it was being opened"
	case nkUnreachable:
		what = "is unreachable (" + errnoText(err) + "): a firewall rejects the connection"
	case nkRefused:
		what = "refused the connection (RST: nothing listens on the port, or a firewall rejects it)"
	default:
		what = "could not be connected: " + err.Error()
	}
	evidence := fmt.Sprintf("%s %s", addr, what)
	fix := defaultFix(code, p.svc)
	if len(alts) > 0 {
		evidence += "; working alternatives: " + describeAlts(alts)
		fix = p.altFix(alts[0], fix)
	} else if p.triedAlternatives() {
		evidence += "; no alternative port answered either"
	}
	st.fail(code, evidence, fmt.Sprintf("%s port %d %s", p.svc.Host, p.svc.Port, what), fix)
	p.skipRest("no connection", p.connSteps()...)
	return nil, false
}

// connSteps are the steps that need a connection, per security mode.
func (p *prober) connSteps() []string {
	var steps []string
	if p.svc.Security == settings.SecurityTLS {
		steps = append(steps, StepTLS)
	}
	steps = append(steps, StepGreeting, StepCapabilities)
	if p.svc.Security == settings.SecurityStartTLS {
		steps = append(steps, StepStartTLS)
	}
	return append(steps, p.laterSteps()...)
}

// errnoText names the errno behind err ("no route to host").
func errnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return netErrKind(err).String()
}

// stepGreeting reads the server's first words and checks they are the
// expected protocol.
func (p *prober) stepGreeting(ctx context.Context, s *session) bool {
	st := p.begin(StepGreeting)
	s.arm()
	first, err := s.r.Peek(512)
	if err != nil {
		return p.greetingFailed(ctx, st, s, nil, err)
	}
	sn := wire.Sniff(first)
	want := map[string]wire.Protocol{settings.ProtocolSMTP: wire.ProtoSMTP, settings.ProtocolIMAP: wire.ProtoIMAP, settings.ProtocolPOP3: wire.ProtoPOP3}[p.proto]
	switch {
	case sn.Protocol == wire.ProtoTLS && p.svc.Security != settings.SecurityTLS:
		st.fail(rootcause.PortSecurityMismatchPlainOnTLS, fmt.Sprintf("the server spoke first with a %s", sn.Line),
			fmt.Sprintf("port %d speaks TLS from the first byte, but the settings say %s", p.svc.Port, securityWord(p.svc.Security)),
			p.fixSecurity(settings.SecurityTLS))
		p.skipRest("wrong security mode", p.afterGreeting()...)
		return false
	case sn.Protocol != want && sn.Protocol != wire.ProtoUnknown:
		p.wrongProtocol(ctx, st, sn, p.afterGreeting()...)
		return false
	case sn.Protocol == wire.ProtoUnknown && bytesLookBinary(first):
		p.wrongProtocol(ctx, st, sn, p.afterGreeting()...)
		return false
	}
	var text string
	var refused *verdict
	switch p.proto {
	case settings.ProtocolSMTP:
		rep, rerr := s.readReply()
		text, err = rep.String(), rerr
		if err == nil && rep.Code != 220 {
			v := classifySMTPSend(stageGreeting, rep)
			refused = &v
		}
	case settings.ProtocolIMAP:
		var resp wire.Response
		resp, err = wire.ReadResponse(s.r, maxIMAPResponse)
		text = resp.Raw
		if err == nil && resp.Status != "OK" && resp.Status != "PREAUTH" {
			v := classifyIMAP(stageGreeting, resp)
			refused = &v
		}
	case settings.ProtocolPOP3:
		var line string
		line, err = s.r.ReadLine()
		text = line
		if err == nil {
			var stt wire.Status
			stt, err = wire.ParseStatus(line)
			if err == nil && !stt.OK {
				v := classifyPOP3(stageGreeting, stt)
				refused = &v
			}
		}
	}
	if err != nil {
		return p.greetingFailed(ctx, st, s, []byte(text), err)
	}
	p.greeting = text
	if refused != nil {
		st.fail(refused.code, text, fmt.Sprintf("the server refused the session at its greeting: %s", refused.meaning), "")
		p.skipRest("the server refused the session", p.afterGreeting()...)
		return false
	}
	ev := text
	if w := p.greetingDomainWarning(text); w != "" && p.svc.Security != settings.SecurityTLS {
		p.note(SeverityWarning, "", w, text, "Check that "+p.svc.Host+" is the right server; a stale hosts entry or a wrong DNS record can send the client elsewhere.")
	}
	st.pass(ev)
	return true
}

// afterGreeting are the steps after the greeting.
func (p *prober) afterGreeting() []string {
	steps := []string{StepCapabilities}
	if p.svc.Security == settings.SecurityStartTLS {
		steps = append(steps, StepStartTLS)
	}
	return append(steps, p.laterSteps()...)
}

// greetingFailed classifies a greeting that did not arrive whole.
func (p *prober) greetingFailed(ctx context.Context, st *stepRec, s *session, partial []byte, err error) bool {
	defer p.skipRest("no greeting", p.afterGreeting()...)
	switch kind := netErrKind(err); kind {
	case nkTimeout:
		got := s.r.BytesRead()
		if got > 0 || len(partial) > 0 {
			st.fail(rootcause.ServerSlow, fmt.Sprintf("only %d bytes of the greeting arrived within %s: %q", max(int(got), len(partial)), p.cfg.Timeout, wire.Printable(partial)),
				fmt.Sprintf("the server sends its greeting too slowly (not complete within %s)", p.cfg.Timeout), "")
			return false
		}
		if p.svc.Security != settings.SecurityTLS {
			// A silent plaintext port may be an implicit-TLS port waiting
			// for a ClientHello (RFC 8314 §3).
			if h := p.tryTLSOnSilentPort(ctx); h.ok() {
				st.fail(rootcause.PortSecurityMismatchPlainOnTLS,
					fmt.Sprintf("no greeting within %s; a TLS handshake on a new connection succeeded (%s)", p.cfg.Timeout, h.describe()),
					fmt.Sprintf("port %d expects SSL/TLS from the first byte, but the settings say %s", p.svc.Port, securityWord(p.svc.Security)),
					p.fixSecurity(settings.SecurityTLS))
				return false
			}
		}
		st.fail(rootcause.ServerSlow, fmt.Sprintf("connected, but no greeting within %s", p.cfg.Timeout),
			fmt.Sprintf("the server accepts the connection but does not greet within %s", p.cfg.Timeout), "")
	case nkReset, nkEOF:
		what := "reset the connection (RST)"
		if kind == nkEOF {
			what = "closed the connection (FIN)"
		}
		ev := fmt.Sprintf("the server %s before or during its greeting", what)
		if len(partial) > 0 {
			ev += fmt.Sprintf("; received %q", wire.Printable(partial))
		}
		st.fail(rootcause.TCPReset, ev, fmt.Sprintf("the connection to %s port %d is cut right after it opens", p.svc.Host, p.svc.Port), "")
	case nkTooLong, nkMalformed:
		// The deferred skipRest covers the later steps.
		p.wrongProtocol(ctx, st, wire.Sniffed{Protocol: wire.ProtoUnknown, Line: wire.Printable(partial[:min(len(partial), 120)]) + " (" + err.Error() + ")"})
	default:
		st.fail(rootcause.TCPReset, "reading the greeting failed: "+err.Error(), "", "")
	}
	return false
}

// tryTLSOnSilentPort attempts a TLS handshake on a fresh connection.
func (p *prober) tryTLSOnSilentPort(ctx context.Context) hsResult {
	conn, _, err := p.dial(ctx, p.svc.Host, p.addrs, p.svc.Port, p.cfg.Timeout)
	if err != nil {
		return hsResult{err: err, kind: netErrKind(err)}
	}
	defer conn.Close()
	return handshake(ctx, conn, p.svc.Host, wideParams, p.cfg.Timeout)
}

// wrongProtocol records that the port speaks something else, and looks for
// the right port.
func (p *prober) wrongProtocol(ctx context.Context, st *stepRec, sn wire.Sniffed, skip ...string) {
	found := string(sn.Protocol)
	if found == "" {
		found = "an unknown protocol"
	}
	ev := fmt.Sprintf("port %d answered %s: %q", p.svc.Port, found, sn.Line)
	fix := defaultFix(rootcause.WrongProtocol, p.svc)
	if alts := p.probeAlternatives(ctx); len(alts) > 0 {
		ev += "; working alternatives: " + describeAlts(alts)
		fix = p.altFix(alts[0], fix)
	}
	st.fail(rootcause.WrongProtocol, ev, fmt.Sprintf("%s port %d speaks %s, not %s", p.svc.Host, p.svc.Port, found, protoWord(p.svc)), fix)
	p.skipRest("wrong protocol", skip...)
}

// fixSecurity tells to switch the security mode, with the port the
// domain publishes for it when known.
func (p *prober) fixSecurity(security string) string {
	return fmt.Sprintf("In the mail client, set the %s security to %s for port %d.", role(p.svc), securityWord(security), p.svc.Port)
}

// hostNameRE finds host names in greetings.
var hostNameRE = regexp.MustCompile(`(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\b`)

// greetingDomains returns the registrable domains of host names in a
// greeting.
func greetingDomains(text string) []string {
	var out []string
	for _, h := range hostNameRE.FindAllString(text, 20) {
		d := certcheck.RegistrableDomain(h)
		if !strings.Contains(d, ".") || slices.Contains(out, d) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// greetingDomainWarning says when a greeting names only another
// organisation's domain.
func (p *prober) greetingDomainWarning(text string) string {
	if net.ParseIP(p.svc.Host) != nil {
		return ""
	}
	doms := greetingDomains(text)
	if len(doms) == 0 {
		return ""
	}
	own := certcheck.RegistrableDomain(p.svc.Host)
	mine := []string{own}
	for _, c := range p.cnames {
		mine = append(mine, certcheck.RegistrableDomain(c))
	}
	if p.env.domain.name != "" {
		mine = append(mine, certcheck.RegistrableDomain(p.env.domain.name))
	}
	for _, d := range doms {
		if slices.Contains(mine, d) {
			return ""
		}
	}
	return fmt.Sprintf("the greeting of %s names %s, another organisation's domain than %s", p.svc.Host, strings.Join(doms, ", "), own)
}

func bytesLookBinary(b []byte) bool {
	for _, c := range b[:min(len(b), 64)] {
		if c == 0 || (c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c >= 0x80 {
			return true
		}
	}
	return false
}
