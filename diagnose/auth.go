package diagnose

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/settings"
)

// reportedGateWait is the shortest wait at the login gate that the auth
// step's evidence mentions.
const reportedGateWait = 100 * time.Millisecond

// authGateCheck runs the checks every protocol makes before a login: are
// there credentials, is the certificate trustworthy, has another service's
// login already been refused. It returns false after recording the auth
// step (and skipping what follows) when no login may be tried. ok=true with
// noCreds=true means "no login configured, go on without".
func (p *prober) authGateCheck(ctx context.Context, st *stepRec) (ok, noCreds bool) {
	if !p.cfg.hasCredentials() {
		if p.proto == settings.ProtocolSMTP {
			st.skip("no user name or password configured: the client sends without logging in")
			return true, true
		}
		st.skip("no user name or password configured")
		return false, true
	}
	if p.untrusted {
		st.skip("the server's certificate is not trusted, so the password could be read by whoever holds its key")
		return false, false
	}
	waitStart := time.Now()
	waitedFor, ok := p.env.gate.wait(ctx, p.idx)
	if waited := time.Since(waitStart); waited >= reportedGateWait && len(waitedFor) > 0 {
		// The wait is not the server's time: the step's clock restarts,
		// and the evidence says why the login started late.
		st.start = time.Now()
		st.note = fmt.Sprintf("the login waited %s for %s to log in first (one login at a time, so that a wrong password cannot count several times toward a lockout)",
			waited.Round(time.Millisecond), strings.Join(waitedFor, ", "))
	}
	if !ok {
		st.skip("the run was cancelled")
		return false, false
	}
	if by := p.env.gate.burnedBy(); by != "" {
		st.skip(fmt.Sprintf("the same credentials were refused on %s; another attempt would risk a lockout", by))
		return false, false
	}
	return true, false
}

// authFailed records a refused login and, for refusals that count toward a
// lockout, forbids further attempts with the same credentials.
func (p *prober) authFailed(st *stepRec, v verdict, evidence string) {
	fix := defaultFix(v.code, p.svc)
	if v.code == rootcause.AuthFailed && hasUpper(p.cfg.Username) {
		fix += fmt.Sprintf(" The user name %q has capital letters; some servers compare user names case-sensitively, so try it in lower case.", p.cfg.Username)
	}
	st.fail(v.code, evidence, "the server refused the login: "+v.meaning, fix)
	if s := p.sess; s != nil && s.lastWait >= p.cfg.SlowReply {
		p.noteDelay(fmt.Sprintf("the server answered the refused login after %s", s.lastWait.Round(time.Millisecond)), s.lastWait,
			"refused logins are delayed by the server against password guessing (Dovecot's auth_failure_delay is 2 s, longer when several logins fail at once)")
		if s.slowest.d == s.lastWait {
			s.slowest = replyWait{}
		}
	}
	switch v.code {
	case rootcause.AuthFailed, rootcause.AuthAccountLocked, rootcause.AuthPasswordExpired:
		p.env.gate.burn(p.svc.Name)
	}
}

// authCut records a connection that broke after the login was sent.
func (p *prober) authCut(st *stepRec, what string, err error, plaintext bool) {
	p.env.gate.burn(p.svc.Name)
	kind := netErrKind(err)
	switch {
	case (kind == nkReset || kind == nkEOF) && plaintext:
		st.fail(rootcause.PlaintextAuthBlocked, fmt.Sprintf("the connection was %s right after %q was sent in clear text", cutWord(kind), what),
			"something on the way cuts the connection when a login is sent without encryption", "")
	case kind == nkReset || kind == nkEOF:
		st.fail(rootcause.TCPReset, fmt.Sprintf("the connection was %s after %q", cutWord(kind), what), "the connection is cut during the login", "")
	case kind == nkTimeout:
		st.fail(rootcause.ServerSlow, fmt.Sprintf("no answer to %q within %s (some servers, such as Dovecot, delay answers to an address after failed logins)", what, p.cfg.ReplyTimeout), "the server does not answer the login in time", "")
	default:
		st.fail(rootcause.WrongProtocol, fmt.Sprintf("the answer to %q is not valid: %v", what, err), "the server's answer to the login is not valid protocol", "")
	}
}

// plaintextCut records a connection cut right after a credential-free
// login command in clear text: a filter that blocks clear-text logins.
func (p *prober) plaintextCut(st *stepRec, what string, err error) {
	st.fail(rootcause.PlaintextAuthBlocked,
		fmt.Sprintf("the connection was %s right after %q was sent in clear text (no password was sent); the same connection had worked until then", cutWord(netErrKind(err)), what),
		"something on the way cuts the connection when a login command is sent without encryption", "")
}

// wouldAcceptPlaintext records that the server would take the password
// over an unencrypted connection, which the diagnoser did not do.
func (p *prober) wouldAcceptPlaintext(st *stepRec, evidence string) {
	st.skip(fmt.Sprintf("the server would accept the password without encryption (%s); not sent: rerun with --allow-plaintext to test the login", evidence))
	p.note(SeverityWarning, "", "the server accepts passwords over an unencrypted connection on this port; the login was not tested",
		evidence, fmt.Sprintf("Set the %s security to STARTTLS or SSL/TLS so that the password is encrypted.", role(p.svc)))
	p.halt = "login not tested"
}

// noteCleartext records that a password was sent in clear text because
// the user allowed it.
func (p *prober) noteCleartext() {
	p.note(SeverityInfo, "", "the password was sent without encryption, as --allow-plaintext permits", "",
		fmt.Sprintf("Use STARTTLS or SSL/TLS for the %s.", role(p.svc)))
}

// sessionFailed records a failure in the middle of a session (no reply,
// reset, garbage).
func (p *prober) sessionFailed(st *stepRec, what string, err error) {
	kind := netErrKind(err)
	switch kind {
	case nkTimeout:
		st.fail(rootcause.ServerSlow, fmt.Sprintf("no complete answer to %s within %s", what, p.cfg.ReplyTimeout),
			fmt.Sprintf("the server does not answer %s within %s", what, p.cfg.ReplyTimeout), "")
	case nkReset, nkEOF:
		st.fail(rootcause.TCPReset, fmt.Sprintf("the connection was %s after %s (no credentials had been sent)", cutWord(kind), what),
			fmt.Sprintf("the connection to %s port %d is cut after %s", p.svc.Host, p.svc.Port, what), "")
	default:
		st.fail(rootcause.WrongProtocol, fmt.Sprintf("the answer to %s is not valid %s: %v", what, protoWord(p.svc), err),
			fmt.Sprintf("the server's answer to %s is not valid %s", what, protoWord(p.svc)), "")
	}
}

func cutWord(k netKind) string {
	if k == nkEOF {
		return "closed"
	}
	return "reset"
}

func hasUpper(s string) bool {
	for _, r := range s {
		if unicode.IsUpper(r) {
			return true
		}
	}
	return false
}

// strippedToken returns a capability that is a rewritten STARTTLS/STLS: a
// run of X's of the keyword's length, possibly ending in another letter,
// as Cisco ESMTP/IMAP inspection writes them ("XXXXXXXA", "XXXXXXXX").
func strippedToken(caps []string, keyword string) string {
	for _, c := range caps {
		c = strings.ToUpper(c)
		xs := len(c) - len(strings.TrimLeft(c, "X"))
		rest := c[xs:]
		if xs < 3 {
			continue
		}
		if rest == "" || (len(rest) == 1 && rest[0] >= 'A' && rest[0] <= 'Z' && len(c) == len(keyword)) {
			return c
		}
	}
	return ""
}

// maskedBanner reports a greeting whose text is asterisks, which Cisco
// "fixup smtp"/ESMTP inspection writes over the real banner.
func maskedBanner(greeting string) bool {
	return strings.Count(greeting, "*") >= 8 && strings.Trim(strings.TrimPrefix(strings.TrimPrefix(greeting, "220-"), "220 "), "* 0") == ""
}

// noteDelay records a reply that arrived late but within the reply
// timeout: a finding with the measured delay, never the root cause
// (docs/diagnose-timing.md). reason says why servers do it, if known.
func (p *prober) noteDelay(what string, d time.Duration, reason string) {
	severity := SeverityInfo
	if d >= p.cfg.ReplyTimeout/2 {
		// Close to where clients give up: a little more load and they do.
		severity = SeverityWarning
	}
	summary := fmt.Sprintf("%s, within the %s a mail client waits", what, p.cfg.ReplyTimeout)
	if reason != "" {
		summary += ": " + reason
	}
	p.note(severity, "", summary, fmt.Sprintf("measured delay %s; reply timeout %s", d.Round(time.Millisecond), p.cfg.ReplyTimeout),
		"Nothing to change in the mail client for this delay. If it grows towards the client's timeout, the administrator should check the server's load and its DNS lookups of clients.")
}

// noteSlowReplies reports the slowest command reply of the session when it
// took SlowReply or more.
func (p *prober) noteSlowReplies() {
	s := p.sess
	if s == nil || s.slowest.d < p.cfg.SlowReply || p.env.interrupted() {
		return
	}
	p.noteDelay(fmt.Sprintf("the server took %s to answer %s", s.slowest.d.Round(time.Millisecond), s.slowest.cmd), s.slowest.d, "")
}
