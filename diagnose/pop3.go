package diagnose

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/maillab/maillab/diagnose/wire"
	"github.com/maillab/maillab/rootcause"
)

// pop3Caps is what CAPA said (RFC 2449 §5); known is false when the
// server does not implement CAPA (RFC 1939 servers), in which case USER
// and PASS are assumed.
type pop3Caps struct {
	capa  wire.CAPA
	known bool
}

func (c pop3Caps) names() []string {
	if !c.known {
		return []string{"(no CAPA)"}
	}
	var out []string
	for _, n := range c.capa.Names() {
		if args := c.capa[n]; len(args) > 0 {
			n += " " + strings.Join(args, " ")
		}
		out = append(out, n)
	}
	return out
}

// pop3Probe is the POP3 part of a service's plan: CAPA, STLS, login and
// a read-only STAT/UIDL.
type pop3Probe struct {
	*prober
	caps pop3Caps
}

func (p *pop3Probe) capabilities(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepCapabilities)
	caps, ok := p.pop3CAPA(st, p.sess)
	p.caps = caps
	return st.done(ok)
}

func (p *pop3Probe) startTLS(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepStartTLS)
	caps, ok := p.pop3STLS(ctx, st, p.sess, p.caps)
	p.caps = caps
	return st.done(ok)
}

func (p *pop3Probe) auth(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepAuth)
	return st.done(p.pop3Login(ctx, st, p.sess, p.caps))
}

func (p *pop3Probe) last(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepFetch)
	p.pop3Fetch(st, p.sess)
	return st.done(true)
}

// quit enters the UPDATE state (RFC 1939 §6); nothing was marked deleted,
// so nothing changes.
func (p *pop3Probe) quit() { p.sess.pop3Cmd("QUIT") }

// pop3CAPA asks for the capabilities.
func (p *pop3Probe) pop3CAPA(st *stepRec, s *session) (pop3Caps, bool) {
	c, err := p.readCAPA(s)
	if err != nil {
		p.sessionFailed(st, "CAPA", err)
		return c, false
	}
	if !c.known {
		st.pass("the server does not support CAPA (RFC 1939 only): USER/PASS assumed")
		return c, true
	}
	st.pass(strings.Join(c.names(), ", "))
	return c, true
}

func (p *prober) readCAPA(s *session) (pop3Caps, error) {
	stt, err := s.pop3Cmd("CAPA")
	if err != nil {
		return pop3Caps{}, err
	}
	if !stt.OK {
		return pop3Caps{}, nil
	}
	s.arm()
	lines, err := wire.ReadMultiline(s.r, maxPOP3Multiline)
	if err != nil {
		return pop3Caps{}, err
	}
	return pop3Caps{capa: wire.ParseCAPA(lines), known: true}, nil
}

// pop3STLS upgrades with STLS (RFC 2595 §4) and asks CAPA again.
func (p *pop3Probe) pop3STLS(ctx context.Context, st *stepRec, s *session, caps pop3Caps) (pop3Caps, bool) {
	if caps.known {
		if tok := strippedToken(caps.capa.Names(), "STLS"); tok != "" {
			p.stripped(st, fmt.Sprintf("CAPA lists %q where STLS would be (rewritten by an inspecting device)", tok))
			return caps, false
		}
		if !caps.capa.Has("STLS") {
			p.notOffered(st, "CAPA: "+strings.Join(caps.names(), ", "))
			return caps, false
		}
	}
	stt, err := s.pop3Cmd("STLS")
	if err != nil {
		p.sessionFailed(st, "STLS", err)
		return caps, false
	}
	if !stt.OK {
		if !caps.known {
			p.notOffered(st, "the server has no CAPA and answered STLS with "+strconv.Quote(stt.Raw))
			return caps, false
		}
		p.refused(st, stt.Raw)
		return caps, false
	}
	if !p.startTLSHandshake(ctx, st, s, stt.Raw) {
		return caps, false
	}
	c, err := p.readCAPA(s)
	if err != nil {
		st2 := p.begin(StepCapabilities)
		p.sessionFailed(st2, "CAPA after STLS", err)
		then := st2.result()
		st.res.then = &then
		return caps, false
	}
	st.step().Evidence += "; CAPA after TLS: " + strings.Join(c.names(), ", ")
	return c, true
}

// pop3Login logs in once, when safe.
func (p *pop3Probe) pop3Login(ctx context.Context, st *stepRec, s *session, caps pop3Caps) bool {
	defer p.env.gate.finish(p.idx)
	if proceed, noCreds := p.authGateCheck(ctx, st); !proceed || noCreds {
		return false
	}
	plaintext := s.tls == nil
	var mechs []string
	userOK := true
	if caps.known {
		mechs = caps.capa.SASL()
		userOK = caps.capa.Has("USER")
	}
	if plaintext && !p.cfg.AllowPlaintext {
		p.pop3PlainProbe(st, s, caps, mechs, userOK)
		return false
	}
	mech := chooseMech(mechs, p.cfg.AuthMechs)
	useUser := mech == "" && userOK && clientAllowsCleartext(p.cfg.AuthMechs)
	if mech == "" && !useUser {
		if onlyOAuth(mechs) {
			st.fail(rootcause.AuthBasicDisabled, "CAPA: "+strings.Join(caps.names(), ", "), "the server offers only OAuth2 logins (no password mechanism)", "")
			return false
		}
		offered := mechs
		if userOK {
			offered = append(offered, "USER/PASS")
		}
		if len(offered) == 0 {
			code := rootcause.AuthMechUnsupported
			if plaintext && caps.capa.Has("STLS") {
				code = rootcause.AuthRequiresTLS
			}
			st.fail(code, "CAPA: "+strings.Join(caps.names(), ", "), "the server offers no way to log in on this connection", "")
			return false
		}
		p.mechMismatch(st, offered)
		return false
	}
	if plaintext {
		p.noteCleartext()
	}
	what := "AUTH " + mech
	var stt wire.Status
	var err error
	if useUser {
		what = "USER/PASS"
		stt, err = p.pop3UserPass(s)
	} else {
		stt, err = p.pop3SASL(s, mech)
	}
	if err != nil {
		p.authCut(st, what, err, plaintext)
		return false
	}
	if stt.OK {
		st.pass(fmt.Sprintf("%s: %s", what, stt.Raw))
		return true
	}
	v := classifyPOP3(stageAuth, stt)
	if useUser && v.code == rootcause.AuthMechUnsupported && onlyOAuth(mechs) {
		// Dovecot with auth_mechanisms = xoauth2 oauthbearer still lists
		// USER, then answers PASS "-ERR [AUTH] Unsupported authentication
		// mechanism." (recorded in e2e/testdata/recorded/oauth-only.txt):
		// the password itself is what the server no longer takes.
		v = verdict{code: rootcause.AuthBasicDisabled, rule: "pop3-user-oauth-only",
			meaning: "USER/PASS is refused as an unsupported mechanism and the server's SASL offers only OAuth2 (" + strings.Join(mechs, " ") + ")"}
	}
	p.authFailed(st, v, fmt.Sprintf("%s: %s", what, stt.Raw))
	return false
}

// pop3PlainProbe learns without a secret whether the server would take a
// clear-text login: CAPA without USER and SASL, or USER alone (the user
// name is no secret) answered -ERR.
func (p *pop3Probe) pop3PlainProbe(st *stepRec, s *session, caps pop3Caps, mechs []string, userOK bool) {
	if caps.known && !userOK && len(mechs) == 0 {
		st.fail(rootcause.AuthRequiresTLS, "CAPA: "+strings.Join(caps.names(), ", "),
			"the server offers no login without encryption (CAPA lists neither USER nor SASL mechanisms)", "")
		return
	}
	accepted := ""
	if slices.Contains(mechs, "PLAIN") {
		// RFC 5034 §4: AUTH without an initial response gets "+ ", and
		// "*" cancels; no secret is sent. A filter that cuts clear-text
		// logins may react to AUTH rather than USER.
		line, err := "", s.send("AUTH PLAIN")
		if err == nil {
			line, err = s.readLine()
		}
		if err == nil && strings.HasPrefix(line, "+") && !strings.HasPrefix(strings.ToUpper(line), "+OK") {
			// A continuation: cancel it.
			accepted = fmt.Sprintf("\"AUTH PLAIN\" was answered %q", line)
			if err = s.send("*"); err == nil {
				_, err = s.readLine()
			}
		} else if err == nil {
			if stt, perr := wire.ParseStatus(line); perr == nil && !stt.OK {
				if v := classifyPOP3(stageAuth, stt); v.code == rootcause.AuthRequiresTLS {
					st.fail(v.code, fmt.Sprintf("\"AUTH PLAIN\" (no password sent) was answered %q", stt.Raw), "the server refused the login: "+v.meaning, "")
					return
				}
			}
		}
		if err != nil {
			if k := netErrKind(err); k == nkReset || k == nkEOF {
				p.plaintextCut(st, "AUTH PLAIN", err)
				return
			}
			p.sessionFailed(st, "AUTH PLAIN", err)
			return
		}
	}
	if caps.known && !userOK {
		if accepted != "" {
			p.wouldAcceptPlaintext(st, accepted)
			return
		}
		st.fail(rootcause.AuthRequiresTLS, "CAPA: "+strings.Join(caps.names(), ", "),
			"the server offers no clear-text login on this connection", "")
		return
	}
	cmd := "USER " + p.cfg.Username
	stt, err := s.pop3Cmd(cmd)
	if err != nil {
		if k := netErrKind(err); k == nkReset || k == nkEOF {
			p.plaintextCut(st, cmd, err)
			return
		}
		p.sessionFailed(st, cmd, err)
		return
	}
	if stt.OK {
		p.wouldAcceptPlaintext(st, fmt.Sprintf("%q was answered %q", cmd, stt.Raw))
		return
	}
	v := classifyPOP3(stageAuth, stt)
	if v.code != rootcause.AuthRequiresTLS {
		v = verdict{code: rootcause.AuthRequiresTLS, meaning: "the server refuses logins without encryption"}
	}
	st.fail(v.code, fmt.Sprintf("%q (no password sent) was answered %q", cmd, stt.Raw), "the server refused the login: "+v.meaning, "")
}

// pop3UserPass logs in with USER and PASS (RFC 1939 §7).
func (p *pop3Probe) pop3UserPass(s *session) (wire.Status, error) {
	stt, err := s.pop3Cmd("USER " + p.cfg.Username)
	if err != nil || !stt.OK {
		return stt, err
	}
	s.secretSent = true
	return s.pop3Cmd("PASS " + p.cfg.Password)
}

// pop3SASL runs AUTH (RFC 5034) with an initial response when the
// mechanism has one.
func (p *pop3Probe) pop3SASL(s *session, mech string) (wire.Status, error) {
	c := newSASL(mech, p.cfg.Username, p.cfg.Password)
	line := "AUTH " + mech
	if ir := c.initial(); ir != nil {
		line += " " + b64(ir)
		s.secretSent = true
	}
	if err := s.send(line); err != nil {
		return wire.Status{}, err
	}
	for i := 0; i < 5; i++ {
		l, err := s.readLine()
		if err != nil {
			return wire.Status{Raw: l}, err
		}
		if !strings.HasPrefix(l, "+ ") && l != "+" {
			return wire.ParseStatus(l)
		}
		chal, derr := decodeChallenge(strings.TrimPrefix(l, "+"))
		var out []byte
		if derr == nil {
			out, derr = c.next(chal)
		}
		if derr != nil {
			if err := s.send("*"); err != nil {
				return wire.Status{}, err
			}
			continue
		}
		s.secretSent = true
		if err := s.send(b64(out)); err != nil {
			return wire.Status{}, err
		}
	}
	return wire.Status{}, fmt.Errorf("%w: AUTH did not end after 5 rounds", wire.ErrTooManyLines)
}

// pop3Fetch runs STAT and UIDL of the last message: read-only.
func (p *pop3Probe) pop3Fetch(st *stepRec, s *session) {
	stt, err := s.pop3Cmd("STAT")
	if err != nil {
		p.sessionFailed(st, "STAT", err)
		return
	}
	if !stt.OK {
		v := classifyPOP3(stageFetch, stt)
		st.fail(v.code, "STAT: "+stt.Raw, "the server refused STAT: "+v.meaning, "")
		return
	}
	ev := "STAT: " + stt.Raw
	fields := strings.Fields(stt.Text)
	if len(fields) >= 1 {
		if n, err := strconv.Atoi(fields[0]); err == nil && n > 0 {
			cmd := fmt.Sprintf("UIDL %d", n)
			u, err := s.pop3Cmd(cmd)
			if err != nil {
				p.sessionFailed(st, cmd, err)
				return
			}
			ev += "; " + cmd + ": " + u.Raw
		}
	}
	st.pass(ev)
}
