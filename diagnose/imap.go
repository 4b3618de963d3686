package diagnose

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/maillab/maillab/diagnose/wire"
	"github.com/maillab/maillab/rootcause"
)

// imapProbe is the IMAP part of a service's plan (RFC 3501 / RFC 9051):
// CAPABILITY, STARTTLS, login, and a read-only fetch.
type imapProbe struct {
	*prober
	caps []string
}

func (p *imapProbe) capabilities(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepCapabilities)
	caps, ok := p.imapCapabilities(st, p.sess, true)
	p.caps = caps
	return st.done(ok)
}

func (p *imapProbe) startTLS(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepStartTLS)
	caps, ok := p.imapStartTLS(ctx, st, p.sess, p.caps)
	p.caps = caps
	return st.done(ok)
}

func (p *imapProbe) auth(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepAuth)
	return st.done(p.imapLogin(ctx, st, p.sess, p.caps))
}

func (p *imapProbe) last(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepFetch)
	p.imapFetch(st, p.sess)
	return st.done(true)
}

func (p *imapProbe) quit() { p.sess.imapCmd("LOGOUT") }

// imapCapabilities takes the capabilities from the greeting's response
// code or asks for them.
func (p *imapProbe) imapCapabilities(st *stepRec, s *session, fromGreeting bool) ([]string, bool) {
	if fromGreeting {
		if g, err := wire.ParseResponse(p.greeting); err == nil {
			if caps, ok := g.Capabilities(); ok {
				st.pass("from the greeting: " + strings.Join(caps, " "))
				return caps, true
			}
		}
	}
	resp, untagged, err := s.imapCmd("CAPABILITY")
	if err != nil {
		p.sessionFailed(st, "CAPABILITY", err)
		return nil, false
	}
	var caps []string
	for _, u := range untagged {
		if c, ok := u.Capabilities(); ok {
			caps = append(caps, c...)
		}
	}
	if c, ok := resp.Capabilities(); ok && len(caps) == 0 {
		caps = c
	}
	if resp.Status != "OK" {
		v := classifyIMAP(stageGreeting, resp)
		st.fail(v.code, resp.Raw, "the server refused CAPABILITY: "+v.meaning, "")
		return nil, false
	}
	st.pass(strings.Join(caps, " "))
	return caps, true
}

// imapStartTLS upgrades with STARTTLS (RFC 3501 §6.2.1) and asks for the
// capabilities again, as the old list must be discarded.
func (p *imapProbe) imapStartTLS(ctx context.Context, st *stepRec, s *session, caps []string) ([]string, bool) {
	if tok := strippedToken(caps, "STARTTLS"); tok != "" {
		p.stripped(st, fmt.Sprintf("the capabilities list %q where STARTTLS would be (rewritten by an inspecting device)", tok))
		return caps, false
	}
	if !slices.Contains(caps, "STARTTLS") {
		p.notOffered(st, "capabilities: "+strings.Join(caps, " "))
		return caps, false
	}
	resp, _, err := s.imapCmd("STARTTLS")
	if err != nil {
		p.sessionFailed(st, "STARTTLS", err)
		return caps, false
	}
	if resp.Status != "OK" {
		p.refused(st, resp.Raw)
		return caps, false
	}
	if !p.startTLSHandshake(ctx, st, s, resp.Raw) {
		return caps, false
	}
	resp, untagged, err := s.imapCmd("CAPABILITY")
	if err != nil || resp.Status != "OK" {
		st2 := p.begin(StepCapabilities)
		if err != nil {
			p.sessionFailed(st2, "CAPABILITY after STARTTLS", err)
		} else {
			v := classifyIMAP(stageGreeting, resp)
			st2.fail(v.code, resp.Raw, "the server refused CAPABILITY after STARTTLS: "+v.meaning, "")
		}
		then := st2.result()
		st.res.then = &then
		return caps, false
	}
	var newCaps []string
	for _, u := range untagged {
		if c, ok := u.Capabilities(); ok {
			newCaps = append(newCaps, c...)
		}
	}
	st.step().Evidence += "; capabilities after TLS: " + strings.Join(newCaps, " ")
	return newCaps, true
}

// imapLogin logs in once, when safe.
func (p *imapProbe) imapLogin(ctx context.Context, st *stepRec, s *session, caps []string) bool {
	defer p.env.gate.finish(p.idx)
	if strings.HasPrefix(p.greeting, "* PREAUTH") {
		st.pass("the server pre-authenticated the connection (PREAUTH)")
		return true
	}
	if proceed, noCreds := p.authGateCheck(ctx, st); !proceed || noCreds {
		return false
	}
	plaintext := s.tls == nil
	mechs := wire.IMAPAuthMechanisms(caps)
	loginOK := !slices.Contains(caps, "LOGINDISABLED")
	if plaintext && !p.cfg.AllowPlaintext {
		p.imapPlainProbe(st, s, caps, mechs, loginOK)
		return false
	}
	if plaintext && !loginOK && len(mechs) == 0 {
		st.fail(rootcause.AuthRequiresTLS, "capabilities: "+strings.Join(caps, " "), "the server disables login without encryption (LOGINDISABLED, RFC 3501 §6.2.3)", "")
		return false
	}
	mech := chooseMech(mechs, p.cfg.AuthMechs)
	useLogin := mech == "" && loginOK && clientAllowsCleartext(p.cfg.AuthMechs)
	if mech == "" && !useLogin {
		if onlyOAuth(mechs) {
			st.fail(rootcause.AuthBasicDisabled, "capabilities: "+strings.Join(caps, " "), "the server offers only OAuth2 logins (no password mechanism)", "")
			return false
		}
		offered := mechs
		if loginOK {
			offered = append(offered, "LOGIN (command)")
		}
		p.mechMismatch(st, offered)
		return false
	}
	if plaintext {
		p.noteCleartext()
	}
	var resp wire.Response
	var err error
	what := "AUTHENTICATE " + mech
	if useLogin {
		what = "LOGIN"
		resp, err = p.imapLoginCmd(s)
	} else {
		resp, err = p.imapAuthenticate(s, mech, slices.Contains(caps, "SASL-IR"))
	}
	if err != nil {
		p.authCut(st, what, err, plaintext)
		return false
	}
	if resp.Status == "OK" {
		st.pass(fmt.Sprintf("%s: %s", what, resp.Raw))
		return true
	}
	p.authFailed(st, classifyIMAP(stageAuth, resp), fmt.Sprintf("%s: %s", what, resp.Raw))
	return false
}

// imapPlainProbe learns without a secret whether the server would take a
// clear-text login: LOGINDISABLED, "AUTHENTICATE PLAIN" answered with a
// continuation (then cancelled with "*", RFC 3501 §6.2.2), and LOGIN with
// the user name only.
func (p *imapProbe) imapPlainProbe(st *stepRec, s *session, caps, mechs []string, loginOK bool) {
	if !loginOK && !slices.Contains(mechs, "PLAIN") && !slices.Contains(mechs, "LOGIN") {
		st.fail(rootcause.AuthRequiresTLS, "capabilities: "+strings.Join(caps, " "), "the server disables login without encryption (LOGINDISABLED, RFC 3501 §6.2.3)", "")
		return
	}
	accepted := ""
	if slices.Contains(mechs, "PLAIN") {
		resp, _, err := s.imapCmd("AUTHENTICATE PLAIN")
		switch {
		case err != nil && (netErrKind(err) == nkReset || netErrKind(err) == nkEOF):
			p.plaintextCut(st, "AUTHENTICATE PLAIN", err)
			return
		case err != nil:
			p.sessionFailed(st, "AUTHENTICATE PLAIN", err)
			return
		case resp.Tag == "+":
			s.send("*")
			tag := fmt.Sprintf("a%d", s.tag)
			if _, _, err := s.imapReadUntil(tag); err != nil && (netErrKind(err) == nkReset || netErrKind(err) == nkEOF) {
				p.plaintextCut(st, "AUTHENTICATE PLAIN", err)
				return
			}
			accepted = "\"AUTHENTICATE PLAIN\" was answered with a continuation request"
		default:
			if v := classifyIMAP(stageAuth, resp); v.code == rootcause.AuthRequiresTLS {
				st.fail(v.code, fmt.Sprintf("\"AUTHENTICATE PLAIN\" (no password sent) was answered %q", resp.Raw), "the server refused the login: "+v.meaning, "")
				return
			}
		}
	}
	if loginOK {
		user, ok := wire.QuoteIMAP(p.cfg.Username)
		if !ok {
			user = "\"maillab-probe\""
		}
		// LOGIN with the user name and no password is a syntax error to
		// the server, never a login attempt; a filter that cuts clear-text
		// logins reacts to the command word.
		resp, _, err := s.imapCmd("LOGIN " + user)
		switch {
		case err != nil && (netErrKind(err) == nkReset || netErrKind(err) == nkEOF):
			p.plaintextCut(st, "LOGIN "+user, err)
			return
		case err != nil:
			p.sessionFailed(st, "LOGIN "+user, err)
			return
		}
		if v := classifyIMAP(stageAuth, resp); v.code == rootcause.AuthRequiresTLS {
			st.fail(v.code, fmt.Sprintf("\"LOGIN %s\" (no password sent) was answered %q", user, resp.Raw), "the server refused the login: "+v.meaning, "")
			return
		}
		if accepted == "" {
			accepted = "the LOGIN command is enabled (no LOGINDISABLED)"
		}
	}
	if accepted == "" {
		st.fail(rootcause.AuthRequiresTLS, "capabilities: "+strings.Join(caps, " "), "the server offers no clear-text login", "")
		return
	}
	p.wouldAcceptPlaintext(st, accepted)
}

// imapLoginCmd sends LOGIN with quoted strings, or synchronizing literals
// for values that cannot be quoted (RFC 3501 §4.3).
func (p *imapProbe) imapLoginCmd(s *session) (wire.Response, error) {
	uq, uok := wire.QuoteIMAP(p.cfg.Username)
	pq, pok := wire.QuoteIMAP(p.cfg.Password)
	s.secretSent = true
	if uok && pok {
		resp, _, err := s.imapCmd("LOGIN " + uq + " " + pq)
		return resp, err
	}
	s.tag++
	tag := fmt.Sprintf("a%d", s.tag)
	if err := s.send(fmt.Sprintf("%s LOGIN {%d}", tag, len(p.cfg.Username))); err != nil {
		return wire.Response{}, err
	}
	resp, _, err := s.imapReadUntil(tag)
	if err != nil || resp.Tag != "+" {
		return resp, err
	}
	if err := s.send(fmt.Sprintf("%s {%d}", p.cfg.Username, len(p.cfg.Password))); err != nil {
		return wire.Response{}, err
	}
	resp, _, err = s.imapReadUntil(tag)
	if err != nil || resp.Tag != "+" {
		return resp, err
	}
	if err := s.send(p.cfg.Password); err != nil {
		return wire.Response{}, err
	}
	resp, _, err = s.imapReadUntil(tag)
	return resp, err
}

// imapAuthenticate runs AUTHENTICATE (RFC 3501 §6.2.2), with the initial
// response in the command when the server has SASL-IR (RFC 4959).
func (p *imapProbe) imapAuthenticate(s *session, mech string, saslIR bool) (wire.Response, error) {
	c := newSASL(mech, p.cfg.Username, p.cfg.Password)
	s.tag++
	tag := fmt.Sprintf("a%d", s.tag)
	line := tag + " AUTHENTICATE " + mech
	ir := c.initial()
	if ir != nil && saslIR {
		line += " " + b64(ir)
		ir = nil
		s.secretSent = true
	}
	if err := s.send(line); err != nil {
		return wire.Response{}, err
	}
	for i := 0; i < 5; i++ {
		resp, _, err := s.imapReadUntil(tag)
		if err != nil || resp.Tag != "+" {
			return resp, err
		}
		var out []byte
		if ir != nil {
			out, ir = ir, nil
		} else {
			chal, derr := decodeChallenge(resp.Text)
			if derr == nil {
				out, derr = c.next(chal)
			}
			if derr != nil {
				if err := s.send("*"); err != nil {
					return wire.Response{}, err
				}
				continue
			}
		}
		s.secretSent = true
		if err := s.send(b64(out)); err != nil {
			return wire.Response{}, err
		}
	}
	return wire.Response{}, fmt.Errorf("%w: AUTHENTICATE did not end after 5 rounds", wire.ErrTooManyLines)
}

// imapFetch opens INBOX read-only (EXAMINE never changes \Recent or flags)
// and fetches the last message's envelope.
func (p *imapProbe) imapFetch(st *stepRec, s *session) {
	resp, untagged, err := s.imapCmd("EXAMINE INBOX")
	if err != nil {
		p.sessionFailed(st, "EXAMINE INBOX", err)
		return
	}
	if resp.Status != "OK" {
		v := classifyIMAP(stageSelect, resp)
		st.fail(v.code, "EXAMINE INBOX: "+resp.Raw, "the server refused to open INBOX: "+v.meaning, "")
		return
	}
	exists := 0
	for _, u := range untagged {
		if u.Keyword() == "EXISTS" {
			exists = u.Number
		}
		if u.Code == "OVERQUOTA" || (u.Status == "NO" && u.Code != "") {
			v := classifyIMAP(stageSelect, u)
			if v.code == rootcause.MailboxFull {
				st.fail(v.code, "EXAMINE INBOX: "+u.Raw, "the mailbox is over its quota", "")
				return
			}
		}
	}
	ev := fmt.Sprintf("EXAMINE INBOX: %d messages", exists)
	if exists > 0 {
		cmd := fmt.Sprintf("FETCH %d (ENVELOPE)", exists)
		resp, _, err := s.imapCmd(cmd)
		if err != nil {
			p.sessionFailed(st, cmd, err)
			return
		}
		if resp.Status != "OK" {
			v := classifyIMAP(stageFetch, resp)
			st.fail(v.code, cmd+": "+resp.Raw, "the server refused to fetch a message: "+v.meaning, "")
			return
		}
		ev += "; " + cmd + ": " + resp.Raw
	}
	st.pass(ev)
}
