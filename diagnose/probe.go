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

// issue is a failure, warning or note, as assemble orders them. Failures
// are derived from the steps' results; notes are kept by the step that
// made them.
type issue struct {
	code     rootcause.Code
	service  string
	severity string
	summary  string
	evidence string
	fix      string
	// order breaks ties: the service's index, then the step's.
	svcIdx, stepIdx int
	// seq is the order in which the prober found it.
	seq int
}

// stepResult is what one step found, the value a step returns and the
// runner records (prober.record): its Step line for the report, its
// failure in words for people, and the notes it made. It is the only
// record of the step: the report's steps, the findings and the root cause
// are all derived from the recorded results (prober.report,
// prober.issues).
type stepResult struct {
	Step
	// summary and fix say the failure in plain words; "" when it passed.
	summary, fix string
	// seq orders the failure among the prober's findings.
	seq int
	// notes are the warnings and notes the step made.
	notes []*issue
	// notForDomain is set on the DNS step when the host is not one of the
	// domain's; whether it is an error depends on whether the service
	// works, decided in assemble.
	notForDomain *issue
	// then is a step the step ran on its own after its end (the
	// capabilities asked again after STARTTLS, when that failed); the
	// runner records it right after this one.
	then *stepResult
}

// stepFunc runs one step of the plan and returns its result, and whether
// the plan goes on.
type stepFunc func(ctx context.Context) (stepResult, bool)

// protoProbe is the protocol-specific part of a service's plan: the steps
// after the greeting, and the polite goodbye once the last one ran.
type protoProbe interface {
	capabilities(ctx context.Context) (stepResult, bool)
	startTLS(ctx context.Context) (stepResult, bool)
	auth(ctx context.Context) (stepResult, bool)
	// last is the fetch (IMAP, POP3) or the send test (SMTP).
	last(ctx context.Context) (stepResult, bool)
	// quit ends the session after the last step.
	quit()
}

// prober probes one service: the runner, and the steps every protocol
// shares (DNS, TCP, TLS, greeting). The protocol's own steps are on its
// probe type (smtpProbe, imapProbe, pop3Probe).
type prober struct {
	env   *runEnv
	cfg   *Config
	svc   Service
	proto string
	idx   int

	// plan is the service's steps in order, computed once (planSteps).
	plan []string
	// results are the recorded results of the steps, in order.
	results []stepResult
	// begun counts the steps begun; a step's index in results is its
	// number.
	begun int
	// cur is the step in progress, which notes attach to.
	cur *stepRec
	// seq numbers failures and notes in the order they were found.
	seq int
	// halt, when set, is why the steps after a failure were not run,
	// where the failing step's default (haltReasons) does not say it.
	halt string

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
	// sess is the service's open session, once connected; greeted is set
	// once it greeted.
	sess    *session
	greeted bool
	// silentTLSTried is set once a silent port was tried with TLS.
	silentTLSTried bool
}

func newProber(env *runEnv, idx int) *prober {
	svc := env.cfg.Services[idx]
	return &prober{
		env:   env,
		cfg:   &env.cfg,
		svc:   svc,
		proto: svc.Protocol(),
		idx:   idx,
		plan:  planSteps(svc),
	}
}

// planSteps returns the steps of a service, in order: the plan its probe
// follows. The runner marks the steps a flow never reached as skipped.
func planSteps(svc Service) []string {
	steps := []string{StepDNS, StepTCP}
	if svc.Security == settings.SecurityTLS {
		steps = append(steps, StepTLS)
	}
	steps = append(steps, StepGreeting, StepCapabilities)
	if svc.Security == settings.SecurityStartTLS {
		steps = append(steps, StepStartTLS)
	}
	last := StepFetch
	if svc.Protocol() == settings.ProtocolSMTP {
		last = StepSend
	}
	return append(steps, StepAuth, last)
}

// haltReasons say why the steps after a failing step were not run, by
// the failing step; prober.halt overrides them.
var haltReasons = map[string]string{
	StepDNS:          "no address",
	StepTCP:          "no connection",
	StepTLS:          "no TLS",
	StepGreeting:     "no greeting",
	StepCapabilities: "no capabilities",
	StepStartTLS:     "no TLS",
	StepAuth:         "no login",
}

// haltReasonInterrupted is the reason of steps not run after the run was
// cancelled.
const haltReasonInterrupted = "interrupted (the run was cancelled)"

// protoProbe returns the probe of the service's protocol.
func (p *prober) protoProbe() protoProbe {
	switch p.proto {
	case settings.ProtocolSMTP:
		return &smtpProbe{prober: p}
	case settings.ProtocolIMAP:
		return &imapProbe{prober: p}
	}
	return &pop3Probe{prober: p}
}

// run follows the service's plan layer by layer: each step returns its
// result, which run records; the first step that says not to go on ends
// the run, and the steps of the plan never reached are recorded as
// skipped.
func (p *prober) run(ctx context.Context) {
	defer p.env.gate.finish(p.idx)
	pp := p.protoProbe()
	steps := map[string]stepFunc{
		StepDNS:          p.stepDNS,
		StepTCP:          p.stepTCP,
		StepTLS:          p.stepImplicitTLS,
		StepGreeting:     p.stepGreeting,
		StepCapabilities: pp.capabilities,
		StepStartTLS:     pp.startTLS,
		StepAuth:         pp.auth,
		StepFetch:        pp.last,
		StepSend:         pp.last,
	}
	next := len(p.plan)
	for i, name := range p.plan {
		res, goOn := steps[name](ctx)
		p.record(res)
		if !goOn {
			next = i + 1
			break
		}
	}
	if p.sess != nil {
		if next == len(p.plan) {
			pp.quit()
		}
		if p.greeted {
			p.noteSlowReplies()
		}
		p.sess.close()
	}
	p.skipFrom(next)
}

// record keeps a step's result (and the one it ran after its end).
func (p *prober) record(res stepResult) {
	then := res.then
	res.then = nil
	p.results = append(p.results, res)
	if then != nil {
		p.record(*then)
	}
}

// skipFrom records the steps of the plan from index i on as skipped, with
// the reason of the step that stopped the run.
func (p *prober) skipFrom(i int) {
	if i >= len(p.plan) {
		return
	}
	reason := p.halt
	if reason == "" && len(p.results) > 0 {
		reason = haltReasons[p.results[len(p.results)-1].Step.Step]
	}
	if reason == "" {
		reason = "not reached"
	}
	for _, name := range p.plan[i:] {
		st := p.begin(name)
		st.skip(reason)
		p.record(st.result())
	}
}

// report is the service's part of the Report, from its recorded results.
func (p *prober) report() ServiceReport {
	r := ServiceReport{Service: p.svc.Name, Host: p.svc.Host, Port: p.svc.Port, Security: p.svc.Security, OK: true}
	for _, res := range p.results {
		r.Steps = append(r.Steps, res.Step)
		r.OK = r.OK && res.OK
	}
	return r
}

// stepRec builds the result of the step in progress.
type stepRec struct {
	p     *prober
	idx   int
	start time.Time
	res   stepResult
	// note is added to the step's evidence when it finishes.
	note string
}

// begin starts the step name and makes it the one notes attach to.
func (p *prober) begin(name string) *stepRec {
	st := &stepRec{p: p, idx: p.begun, start: time.Now(), res: stepResult{Step: Step{Step: name}}}
	p.begun++
	p.cur = st
	return st
}

// result ends the step and returns its result, for the runner to record.
func (s *stepRec) result() stepResult {
	if s.p.cur == s {
		s.p.cur = nil
	}
	return s.res
}

// done returns the step's result and whether the plan goes on.
func (s *stepRec) done(goOn bool) (stepResult, bool) { return s.result(), goOn }

func (s *stepRec) step() *Step { return &s.res.Step }

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
// catalog's words. After the run was cancelled a failure is not the
// server's: the step is recorded as interrupted instead, never as a
// finding.
func (s *stepRec) fail(code rootcause.Code, evidence, summary, fix string) {
	if s.p.env.interrupted() {
		s.skip(haltReasonInterrupted)
		s.p.halt = haltReasonInterrupted
		return
	}
	s.finish(false, evidence)
	s.step().Code = code
	if summary == "" {
		summary = rootcause.Meaning(code)
	}
	if fix == "" {
		fix = defaultFix(code, s.p.svc)
	}
	s.res.summary, s.res.fix = summary, fix
	s.res.seq = s.p.nextSeq()
}

func (p *prober) nextSeq() int {
	p.seq++
	return p.seq
}

// recode changes the code of a recorded failed step: a judgement that
// needs what later steps (or other services) found (derive).
func (p *prober) recode(stepIdx int, code rootcause.Code, summary, fix string) {
	if stepIdx >= len(p.results) || p.results[stepIdx].OK {
		return
	}
	r := &p.results[stepIdx]
	r.Code = code
	r.summary, r.fix = summary, fix
}

// note adds a warning or info finding to the result of the step in
// progress, or else of the last recorded step.
func (p *prober) note(severity string, code rootcause.Code, summary, evidence, fix string) {
	var r *stepResult
	var idx int
	switch {
	case p.cur != nil:
		r, idx = &p.cur.res, p.cur.idx
	case len(p.results) > 0:
		r, idx = &p.results[len(p.results)-1], len(p.results)-1
	default:
		return
	}
	r.notes = append(r.notes, &issue{code: code, service: p.svc.Name, severity: severity, summary: summary, evidence: evidence, fix: fix, svcIdx: p.idx, stepIdx: idx + 1, seq: p.nextSeq()})
}

// issues derives the service's failures and notes from its recorded
// results, in the order they were found. The host-not-for-domain
// judgement is not among them (assemble decides it).
func (p *prober) issues() []*issue {
	var out []*issue
	for i, r := range p.results {
		if !r.OK && r.Code != "" {
			out = append(out, &issue{code: r.Code, service: p.svc.Name, severity: SeverityError, summary: r.summary, evidence: r.Evidence, fix: r.fix, svcIdx: p.idx, stepIdx: i, seq: r.seq})
		}
		out = append(out, r.notes...)
	}
	slices.SortStableFunc(out, func(a, b *issue) int { return a.seq - b.seq })
	return out
}

// notForDomain returns the host-not-for-domain judgement of the DNS step.
func (p *prober) notForDomain() *issue {
	for _, r := range p.results {
		if r.notForDomain != nil {
			return r.notForDomain
		}
	}
	return nil
}

func (p *prober) label() string {
	return fmt.Sprintf("%s (%s port %d, %s)", p.svc.Name, p.svc.Host, p.svc.Port, securityWord(p.svc.Security))
}

// stepDNS resolves the host and checks it against the domain's records.
func (p *prober) stepDNS(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepDNS)
	host := p.svc.Host
	if ip, err := netip.ParseAddr(host); err == nil {
		p.addrs = []netip.Addr{ip}
		st.pass(host + " is an IP address; no lookup")
		return st.done(true)
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
		if w := p.checkDomain(ctx, st); w != "" {
			ev += "; " + w
		}
		st.pass(ev)
		return st.done(true)
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
		st.fail(rootcause.DNSTimeout, desc, fmt.Sprintf("%s did not answer within %s", p.env.resolverDesc(), p.cfg.ConnectTimeout), "")
	default:
		st.fail(rootcause.DNSResolverUnreachable, desc, fmt.Sprintf("%s cannot be reached", p.env.resolverDesc()), "")
	}
	return st.done(false)
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
func (p *prober) checkDomain(ctx context.Context, st *stepRec) string {
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
	st.res.notForDomain = &issue{
		code:     rootcause.ConfigHostNotForDomain,
		service:  p.svc.Name,
		summary:  fmt.Sprintf("the %s %s is not a server of the account's domain %s", role(p.svc), p.svc.Host, d.name),
		evidence: evidence,
		fix:      fix,
		svcIdx:   p.idx,
	}
	return "warning: " + evidence
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
func (p *prober) stepTCP(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepTCP)
	conn, addr, err := p.dial(ctx, p.svc.Host, p.addrs, p.svc.Port, p.cfg.ConnectTimeout)
	if err == nil {
		st.pass(fmt.Sprintf("connected to %s in %s", addr, time.Since(st.start).Round(100*time.Microsecond)))
		p.sess = newSession(ctx, conn, p.cfg.ReplyTimeout)
		return st.done(true)
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
			c, _, err := p.dial(ctx, p.svc.Host, p.addrs, p.svc.Port, p.cfg.ConnectTimeout/2)
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
		p.sess = newSession(ctx, retry, p.cfg.ReplyTimeout)
		return st.done(true)
	}
	code, what := rootcause.TCPRefused, "refused the connection"
	switch kind {
	case nkTimeout:
		code, what = rootcause.TCPTimeout, fmt.Sprintf("did not answer within %s (no SYN-ACK, no RST)", p.cfg.ConnectTimeout)
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
	return st.done(false)
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
func (p *prober) stepGreeting(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepGreeting)
	ok := p.greet(ctx, st, p.sess)
	if ok {
		p.greeted = true
	}
	return st.done(ok)
}

// greet reads and judges the greeting for the greeting step st.
func (p *prober) greet(ctx context.Context, st *stepRec, s *session) bool {
	first, err := p.awaitGreeting(ctx, st, s)
	if st.step().Code != "" || st.step().Skipped {
		// The silent port turned out to be an implicit-TLS port.
		return false
	}
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
		p.halt = "wrong security mode"
		return false
	case sn.Protocol != want && sn.Protocol != wire.ProtoUnknown:
		p.wrongProtocol(ctx, st, sn)
		p.halt = "wrong protocol"
		return false
	case sn.Protocol == wire.ProtoUnknown && bytesLookBinary(first):
		p.wrongProtocol(ctx, st, sn)
		p.halt = "wrong protocol"
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
	// The reads of the greeting are not a command's reply.
	s.slowest, s.lastWait = replyWait{}, 0
	if d := time.Since(s.opened); d >= p.cfg.SlowReply {
		p.noteDelay(fmt.Sprintf("the greeting came %s after the connection opened", d.Round(time.Millisecond)), d,
			"a server greets late when it looks up the client's address in DNS first (Postfix, Exim) and that lookup is slow, or when it is loaded")
	}
	if refused != nil {
		st.fail(refused.code, text, fmt.Sprintf("the server refused the session at its greeting: %s", refused.meaning), "")
		p.halt = "the server refused the session"
		return false
	}
	ev := text
	if w := p.greetingDomainWarning(text); w != "" && p.svc.Security != settings.SecurityTLS {
		p.note(SeverityWarning, "", w, text, "Check that "+p.svc.Host+" is the right server; a stale hosts entry or a wrong DNS record can send the client elsewhere.")
	}
	st.pass(ev)
	return true
}

// greetingFailed classifies a greeting that did not arrive whole.
func (p *prober) greetingFailed(ctx context.Context, st *stepRec, s *session, partial []byte, err error) bool {
	switch kind := netErrKind(err); kind {
	case nkTimeout:
		got := s.r.BytesRead()
		if got > 0 || len(partial) > 0 {
			st.fail(rootcause.ServerSlow, fmt.Sprintf("only %d bytes of the greeting arrived within %s: %q", max(int(got), len(partial)), p.cfg.ReplyTimeout, wire.Printable(partial)),
				fmt.Sprintf("the server sends its greeting too slowly (not complete within %s)", p.cfg.ReplyTimeout), "")
			return false
		}
		if p.svc.Security != settings.SecurityTLS && !p.silentTLSTried {
			if h := p.tryTLSOnSilentPort(ctx); h.ok() {
				p.silentIsTLS(st, p.cfg.ReplyTimeout, h)
				return false
			}
		}
		st.fail(rootcause.ServerSlow, fmt.Sprintf("connected, but no greeting within %s", p.cfg.ReplyTimeout),
			fmt.Sprintf("the server accepts the connection but does not greet within %s", p.cfg.ReplyTimeout), "")
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
		p.wrongProtocol(ctx, st, wire.Sniffed{Protocol: wire.ProtoUnknown, Line: wire.Printable(partial[:min(len(partial), 120)]) + " (" + err.Error() + ")"})
	default:
		st.fail(rootcause.TCPReset, "reading the greeting failed: "+err.Error(), "", "")
	}
	return false
}

// awaitGreeting waits for the first bytes of the greeting, within the
// reply timeout. A plaintext port still silent after the connect timeout
// may be an implicit-TLS port waiting for a ClientHello (RFC 8314 §3): a
// TLS handshake is tried on a new connection then, and when it succeeds
// the step is recorded as failed with PORT_SECURITY_MISMATCH_PLAIN_ON_TLS
// at once, rather than after the whole reply timeout; otherwise the wait
// goes on.
func (p *prober) awaitGreeting(ctx context.Context, st *stepRec, s *session) ([]byte, error) {
	s.arm()
	if p.svc.Security == settings.SecurityTLS || p.cfg.ConnectTimeout >= p.cfg.ReplyTimeout {
		return s.r.Peek(512)
	}
	s.conn.SetReadDeadline(s.armed.Add(p.cfg.ConnectTimeout))
	first, err := s.r.Peek(512)
	if err == nil || netErrKind(err) != nkTimeout || p.env.interrupted() {
		return first, err
	}
	if s.r.BytesRead() == 0 {
		p.silentTLSTried = true
		if h := p.tryTLSOnSilentPort(ctx); h.ok() {
			p.silentIsTLS(st, p.cfg.ConnectTimeout, h)
			return nil, nil
		}
	}
	s.conn.SetReadDeadline(s.armed.Add(p.cfg.ReplyTimeout))
	return s.r.Peek(512)
}

// silentIsTLS records a port that gave no greeting within waited but
// completed a TLS handshake on a new connection.
func (p *prober) silentIsTLS(st *stepRec, waited time.Duration, h hsResult) {
	st.fail(rootcause.PortSecurityMismatchPlainOnTLS,
		fmt.Sprintf("no greeting within %s; a TLS handshake on a new connection succeeded (%s)", waited, h.describe()),
		fmt.Sprintf("port %d expects SSL/TLS from the first byte, but the settings say %s", p.svc.Port, securityWord(p.svc.Security)),
		p.fixSecurity(settings.SecurityTLS))
}

// tryTLSOnSilentPort attempts a TLS handshake on a fresh connection.
func (p *prober) tryTLSOnSilentPort(ctx context.Context) hsResult {
	conn, _, err := p.dial(ctx, p.svc.Host, p.addrs, p.svc.Port, p.cfg.ConnectTimeout)
	if err != nil {
		return hsResult{err: err, kind: netErrKind(err)}
	}
	defer conn.Close()
	return handshake(ctx, conn, p.svc.Host, wideParams, p.cfg.ConnectTimeout)
}

// wrongProtocol records that the port speaks something else, and looks for
// the right port.
func (p *prober) wrongProtocol(ctx context.Context, st *stepRec, sn wire.Sniffed) {
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
