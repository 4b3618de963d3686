package diagnose

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/maillab/maillab/diagnose/wire"
	"github.com/maillab/maillab/rootcause"
)

// smtpProbe is the SMTP part of a service's plan: EHLO, STARTTLS, AUTH,
// and a send test.
type smtpProbe struct {
	*prober
	ehlo   wire.EHLO
	authed bool
}

func (p *smtpProbe) capabilities(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepCapabilities)
	ehlo, ok := p.smtpEHLO(st, p.sess)
	p.ehlo = ehlo
	return st.done(ok)
}

func (p *smtpProbe) startTLS(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepStartTLS)
	ehlo, ok := p.smtpStartTLS(ctx, st, p.sess, p.ehlo)
	p.ehlo = ehlo
	return st.done(ok)
}

func (p *smtpProbe) auth(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepAuth)
	authed, ok := p.smtpAuth(ctx, st, p.sess, p.ehlo)
	p.authed = authed
	return st.done(ok)
}

func (p *smtpProbe) last(ctx context.Context) (stepResult, bool) {
	st := p.begin(StepSend)
	p.smtpSend(st, p.sess, p.ehlo, p.authed)
	return st.done(true)
}

func (p *smtpProbe) quit() { p.sess.smtpCmd("QUIT") }

// smtpEHLO sends EHLO (HELO when EHLO is refused, RFC 5321 §4.1.1.1) and
// records the capabilities step.
func (p *smtpProbe) smtpEHLO(st *stepRec, s *session) (wire.EHLO, bool) {
	cmd := "EHLO " + s.ehloName()
	rep, err := s.smtpCmd(cmd)
	if err != nil {
		p.sessionFailed(st, cmd, err)
		return wire.EHLO{}, false
	}
	if rep.Code/100 == 5 && rep.Code != 554 {
		rep2, err := s.smtpCmd("HELO " + s.ehloName())
		if err == nil && rep2.Code == 250 {
			st.pass(fmt.Sprintf("EHLO refused (%s); HELO accepted: no extensions (no STARTTLS, no AUTH)", rep.String()))
			return wire.EHLO{Extensions: map[string][]string{}}, true
		}
	}
	if rep.Code != 250 {
		v := classifySMTPSend(stageGreeting, rep)
		st.fail(v.code, rep.String(), "the server refused EHLO: "+v.meaning, "")
		p.halt = "EHLO refused"
		return wire.EHLO{}, false
	}
	e := wire.ParseEHLO(rep)
	st.pass(fmt.Sprintf("EHLO: %s %s", e.Domain, strings.Join(describeExtensions(e), " ")))
	return e, true
}

func describeExtensions(e wire.EHLO) []string {
	var out []string
	for _, k := range e.Keywords {
		if p := e.Extensions[k]; len(p) > 0 {
			out = append(out, k+" "+strings.Join(p, " "))
		} else {
			out = append(out, k)
		}
	}
	return out
}

// smtpStartTLS upgrades with STARTTLS (RFC 3207) and repeats EHLO, whose
// earlier answer must be discarded (§4.2).
func (p *smtpProbe) smtpStartTLS(ctx context.Context, st *stepRec, s *session, ehlo wire.EHLO) (wire.EHLO, bool) {
	if tok := strippedToken(ehlo.Keywords, "STARTTLS"); tok != "" {
		p.stripped(st, fmt.Sprintf("the EHLO reply lists %q where STARTTLS would be (Cisco ESMTP inspection rewrites it this way)", tok))
		return ehlo, false
	}
	if !ehlo.Has("STARTTLS") {
		if maskedBanner(p.greeting) {
			p.stripped(st, fmt.Sprintf("the greeting is masked (%q) and EHLO lists no STARTTLS: an SMTP inspection device rewrites the session", p.greeting))
			return ehlo, false
		}
		p.notOffered(st, "EHLO lists: "+strings.Join(ehlo.Keywords, " "))
		return ehlo, false
	}
	rep, err := s.smtpCmd("STARTTLS")
	if err != nil {
		p.sessionFailed(st, "STARTTLS", err)
		return ehlo, false
	}
	if rep.Code != 220 {
		p.refused(st, rep.String())
		return ehlo, false
	}
	if !p.startTLSHandshake(ctx, st, s, rep.String()) {
		return ehlo, false
	}
	rep, err = s.smtpCmd("EHLO " + s.ehloName())
	if err != nil || rep.Code != 250 {
		st2 := p.begin(StepCapabilities)
		if err != nil {
			p.sessionFailed(st2, "EHLO after STARTTLS", err)
		} else {
			v := classifySMTPSend(stageGreeting, rep)
			st2.fail(v.code, rep.String(), "the server refused EHLO after STARTTLS: "+v.meaning, "")
		}
		p.halt = "EHLO refused"
		then := st2.result()
		st.res.then = &then
		return ehlo, false
	}
	e := wire.ParseEHLO(rep)
	st.step().Evidence += "; EHLO after TLS: " + strings.Join(describeExtensions(e), " ")
	return e, true
}

// smtpAuth logs in once, if credentials are configured and it is safe.
func (p *smtpProbe) smtpAuth(ctx context.Context, st *stepRec, s *session, ehlo wire.EHLO) (authed, ok bool) {
	defer p.env.gate.finish(p.idx)
	proceed, noCreds := p.authGateCheck(ctx, st)
	if !proceed || noCreds {
		return false, proceed
	}
	plaintext := s.tls == nil
	mechs := ehlo.AuthMechanisms()
	if !ehlo.Has("AUTH") {
		if plaintext && ehlo.Has("STARTTLS") {
			st.fail(rootcause.AuthRequiresTLS, "EHLO offers STARTTLS but no AUTH: the server offers login only after STARTTLS",
				"the server offers login only on an encrypted connection", "")
		} else {
			st.fail(rootcause.AuthMechUnsupported, "EHLO lists no AUTH: "+strings.Join(ehlo.Keywords, " "),
				fmt.Sprintf("the server offers no login at all on port %d", p.svc.Port),
				fmt.Sprintf("Port %d does not accept logins: use the provider's submission port (587 with STARTTLS or 465 with SSL/TLS).", p.svc.Port))
		}
		return false, false
	}
	if plaintext && !p.cfg.AllowPlaintext {
		p.smtpPlainProbe(st, s, mechs)
		return false, false
	}
	if onlyOAuth(mechs) {
		st.fail(rootcause.AuthBasicDisabled, "AUTH "+strings.Join(mechs, " "), "the server offers only OAuth2 logins (no password mechanism)", "")
		return false, false
	}
	mech := chooseMech(mechs, p.cfg.AuthMechs)
	if mech == "" {
		p.mechMismatch(st, mechs)
		return false, false
	}
	if plaintext {
		p.noteCleartext()
	}
	rep, err := p.smtpSASL(s, mech)
	if err != nil {
		p.authCut(st, "AUTH "+mech, err, plaintext)
		return false, false
	}
	if rep.Code == 235 {
		st.pass(fmt.Sprintf("AUTH %s: %s", mech, rep.String()))
		return true, true
	}
	p.authFailed(st, classifySMTPAuth(rep), fmt.Sprintf("AUTH %s: %s", mech, rep.String()))
	return false, false
}

// mechMismatch records no mechanism in common.
func (p *prober) mechMismatch(st *stepRec, server []string) {
	client := p.cfg.AuthMechs
	if len(client) == 0 {
		client = supportedMechs
	}
	st.fail(rootcause.AuthMechUnsupported,
		fmt.Sprintf("the server offers %s; the client allows %s", strings.Join(server, " "), strings.Join(client, " ")),
		"the client and the server have no authentication mechanism in common",
		fmt.Sprintf("In the mail client, set the authentication method to one the server offers (%s); \"normal password\" over an encrypted connection is the usual choice.", strings.Join(server, ", ")))
}

// smtpPlainProbe learns, without sending a secret, whether the server
// would take a login in clear text: "AUTH PLAIN" without an initial
// response, cancelled with "*" if the server asks for it (RFC 4954 §4).
func (p *smtpProbe) smtpPlainProbe(st *stepRec, s *session, mechs []string) {
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		cmd := "AUTH " + mech
		rep, err := s.smtpCmd(cmd)
		if err != nil {
			if k := netErrKind(err); k == nkReset || k == nkEOF {
				p.plaintextCut(st, cmd, err)
				return
			}
			p.sessionFailed(st, cmd, err)
			return
		}
		switch {
		case rep.Code == 334:
			s.smtpCmd("*")
			p.wouldAcceptPlaintext(st, fmt.Sprintf("%q was answered %q", cmd, rep.String()))
			return
		case rep.Code == 504 && mech == "PLAIN":
			continue
		}
		v := classifySMTPAuth(rep)
		if v.code == rootcause.AuthMechUnsupported {
			continue
		}
		if v.code != rootcause.AuthRequiresTLS && v.code != rootcause.AuthBasicDisabled {
			// A refusal of the bare command that is not about TLS: the
			// server would not take a clear-text login either way.
			v = verdict{code: rootcause.AuthRequiresTLS, meaning: "the server refuses logins without encryption"}
		}
		st.fail(v.code, fmt.Sprintf("%q (no password sent) was answered %q", cmd, rep.String()), "the server refused the login: "+v.meaning, "")
		return
	}
	p.mechMismatch(st, mechs)
}

// smtpSASL runs one AUTH exchange (RFC 4954 §4) and returns the final
// reply.
func (p *smtpProbe) smtpSASL(s *session, mech string) (wire.Reply, error) {
	c := newSASL(mech, p.cfg.Username, p.cfg.Password)
	line := "AUTH " + mech
	if ir := c.initial(); ir != nil {
		line += " " + b64(ir)
		s.secretSent = true
	}
	rep, err := s.smtpCmd(line)
	for i := 0; i < 4 && err == nil && rep.Code == 334; i++ {
		chal, derr := decodeChallenge(strings.Join(rep.Lines, ""))
		var resp []byte
		if derr == nil {
			resp, derr = c.next(chal)
		}
		if derr != nil {
			// RFC 4954 §4: "*" cancels the exchange.
			return s.smtpCmd("*")
		}
		s.secretSent = true
		rep, err = s.smtpCmd(b64(resp))
	}
	return rep, err
}

// smtpSend sends the test message: MAIL FROM with SIZE (RFC 1870), RCPT
// TO, DATA, timing the transfer to tell a slow link from a slow server.
func (p *smtpProbe) smtpSend(st *stepRec, s *session, ehlo wire.EHLO, authed bool) {
	msg := p.message()
	from := p.cfg.account()
	to := p.cfg.SendTo
	if to == "" {
		to = from
	}
	if limit, ok := ehlo.Size(); ok && int64(len(msg)) > limit {
		st.fail(rootcause.SMTPMessageTooLarge, fmt.Sprintf("the message has %d bytes; EHLO announces SIZE %d", len(msg), limit),
			fmt.Sprintf("the message (%d bytes) is larger than the server's limit of %d bytes", len(msg), limit),
			fmt.Sprintf("The server accepts messages up to %d bytes (%s); this one has %d. Send it without the large attachment, or share the file by link.", limit, humanBytes(limit), len(msg)))
		return
	}
	mail := fmt.Sprintf("MAIL FROM:<%s>", from)
	if ehlo.Has("SIZE") {
		mail += fmt.Sprintf(" SIZE=%d", len(msg))
	}
	steps := []struct {
		cmd   string
		stage stage
		want  int
	}{{mail, stageMail, 250}, {fmt.Sprintf("RCPT TO:<%s>", to), stageRcpt, 250}, {"DATA", stageData, 354}}
	var transcript []string
	for _, c := range steps {
		rep, err := s.smtpCmd(c.cmd)
		if err != nil {
			p.sessionFailed(st, c.cmd, err)
			return
		}
		transcript = append(transcript, c.cmd+" → "+rep.String())
		if rep.Code/100 != c.want/100 {
			v := classifySMTPSend(c.stage, rep)
			ev := strings.Join(transcript, "; ")
			summary := "the server refused the message: " + v.meaning
			fix := ""
			if v.code == rootcause.SMTPRelayDenied && !authed {
				summary = v.meaning + " (the client did not log in)"
			}
			if v.rule == "rcpt-unknown" {
				fix = fmt.Sprintf("Check the recipient address %s: the server says it does not accept it.", to)
			}
			st.fail(v.code, ev, summary, fix)
			return
		}
	}
	start := time.Now()
	writes, total, err := writeData(s, msg)
	elapsed := time.Since(start)
	n := written(writes)
	if err != nil {
		if netErrKind(err) == nkTimeout {
			p.linkSlow(st, estimateLink(writes), n, total, len(msg))
			return
		}
		p.sessionFailed(st, "the message data", err)
		return
	}
	s.cmd = "the end of the message data"
	rep, err := s.readReply()
	if err != nil {
		if netErrKind(err) == nkTimeout {
			st.fail(rootcause.ServerSlow, fmt.Sprintf("all %d bytes were sent in %s, then no reply within %s", n, elapsed.Round(time.Millisecond), p.cfg.ReplyTimeout),
				fmt.Sprintf("the server did not confirm the message within %s", p.cfg.ReplyTimeout), "")
			return
		}
		p.sessionFailed(st, "the message data", err)
		return
	}
	transcript = append(transcript, fmt.Sprintf("%d bytes in %s → %s", n, elapsed.Round(100*time.Microsecond), rep.String()))
	if rep.Code != 250 {
		v := classifySMTPSend(stageDataEnd, rep)
		st.fail(v.code, strings.Join(transcript, "; "), "the server refused the message: "+v.meaning, "")
		return
	}
	st.pass(strings.Join(transcript, "; "))
}

// linkSlow records a message that could not be sent within the timeout,
// with the link's rate measured once the buffers on the way were full.
func (p *smtpProbe) linkSlow(st *stepRec, e linkEstimate, sent, total, size int) {
	rate := humanBytes(int64(e.rate)) + "/s"
	if e.upper {
		rate = "at most " + rate
	}
	ev := fmt.Sprintf("after %s only %d of %d bytes of the message were sent", e.elapsed.Round(time.Millisecond), sent, total)
	switch {
	case e.buffered == 0:
		ev += fmt.Sprintf(" (%s)", rate)
	case e.drained == 0:
		ev += fmt.Sprintf("; the first %d bytes went into socket buffers at once, then nothing more went out in the last %s (%s over the whole transfer)",
			e.buffered, e.window.Round(time.Millisecond), rate)
	default:
		ev += fmt.Sprintf("; the first %d bytes went into socket buffers at once; in the last %s, with them full, %d bytes went out (%s)",
			e.buffered, e.window.Round(time.Millisecond), e.drained, rate)
	}
	st.fail(rootcause.LinkSlow, ev,
		fmt.Sprintf("the link carries %s: the %s message cannot be sent within %s", rate, humanBytes(int64(size)), p.cfg.ReplyTimeout),
		fmt.Sprintf("The connection to %s carries %s, too slow for this %s message. Check for bandwidth limits or a throttled line, send from a faster network, or make the message smaller.", p.svc.Host, rate, humanBytes(int64(size))))
}

// dataChunk is the size of each write of the message data: small, so that
// the writes that wait for the link time it finely (estimateLink errs by
// up to one write).
const dataChunk = 1024

// blockedWrite is how long a write must take to count as waiting for the
// link: copying one chunk into a socket buffer with room takes
// microseconds.
const blockedWrite = 2 * time.Millisecond

// chunkWrite is one write of the message data.
type chunkWrite struct {
	// n is how many bytes the connection accepted.
	n          int
	start, end time.Time
	// complete is false for a write cut short by an error.
	complete bool
}

// written sums the bytes the writes delivered.
func written(writes []chunkWrite) int {
	n := 0
	for _, w := range writes {
		n += w.n
	}
	return n
}

// writeData writes the dot-stuffed message and the final "." in chunks
// within one timeout, and returns every write with its timing and the
// size of the whole.
func writeData(s *session, msg []byte) ([]chunkWrite, int, error) {
	data := dotStuff(msg)
	s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	writes := make([]chunkWrite, 0, len(data)/dataChunk+1)
	for off := 0; off < len(data); {
		end := min(off+dataChunk, len(data))
		w := chunkWrite{start: time.Now()}
		var err error
		w.n, err = s.conn.Write(data[off:end])
		w.end, w.complete = time.Now(), err == nil
		writes = append(writes, w)
		off += w.n
		if err != nil {
			return writes, len(data), err
		}
	}
	return writes, len(data), nil
}

// linkEstimate is the rate of a link, measured from a transfer that did
// not finish.
type linkEstimate struct {
	// rate is in bytes per second.
	rate float64
	// upper is set when rate is only an upper bound.
	upper bool
	// buffered are the bytes accepted before the first write that had to
	// wait for the link: what the buffers on the way took at once.
	buffered int
	// drained are the bytes accepted over window, the end of the
	// transfer, while the buffers were full.
	drained int
	window  time.Duration
	// elapsed is the time of the whole transfer.
	elapsed time.Duration
}

// estimateLink measures the link from the writes of a transfer cut short
// by its deadline. The first writes only fill buffers (this computer's
// socket buffer, the receiver's, and any on the way), which take data at
// once and would overstate the rate. Once a write has had to wait for the
// link they are full, and they are full at the deadline (the last write
// was waiting): from then on the connection accepts only what the link
// carries away. The rate is measured over the second half of the
// transfer, from the end of the last write that ended before its middle
// (and after the first wait), so that a pause of this process while the
// buffers were still filling (a garbage collection, a busy machine),
// which looks like a wait, cannot start the measurement early. It may err
// by the room the buffers had when the window opened (less than what the
// link frees at a time) and by a TLS record written only in part. When
// the first wait ended after the middle, the rate is measured from its
// start and is an upper bound (the buffers had room for part of that
// write); when nothing was accepted in the window (a stalled link, or a
// receiver that reopens its TCP window only after reading much of it),
// the whole transfer's bytes over its time bound the rate, as they do
// when no write waited at all.
func estimateLink(writes []chunkWrite) linkEstimate {
	if len(writes) == 0 {
		return linkEstimate{}
	}
	first, last := writes[0], writes[len(writes)-1]
	e := linkEstimate{elapsed: last.end.Sub(first.start)}
	whole := func() linkEstimate {
		e.upper = true
		e.rate = perSecond(written(writes), e.elapsed)
		return e
	}
	k := slices.IndexFunc(writes, func(w chunkWrite) bool { return w.end.Sub(w.start) >= blockedWrite })
	if k < 0 {
		e.drained, e.window = written(writes), e.elapsed
		return whole()
	}
	e.buffered = written(writes[:k])
	mid := first.start.Add(e.elapsed / 2)
	from := -1 // the last write from the first wait on that ended by mid
	for i := k; i < len(writes)-1 && !writes[i].end.After(mid); i++ {
		from = i
	}
	if from >= 0 {
		e.drained = written(writes[from+1:])
		e.window = last.end.Sub(writes[from].end)
	} else {
		e.upper = true
		e.drained = written(writes[k:])
		e.window = last.end.Sub(writes[k].start)
	}
	if e.drained == 0 {
		return whole()
	}
	e.rate = perSecond(e.drained, e.window)
	return e
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// dotStuff converts a message to the DATA wire form (RFC 5321 §4.5.2):
// CRLF line ends, a leading "." doubled, and the terminating ".".
func dotStuff(msg []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(msg) + 64)
	lines := bytes.Split(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")), []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for _, l := range lines {
		if bytes.HasPrefix(l, []byte(".")) {
			b.WriteByte('.')
		}
		b.Write(l)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

// message returns the message of the send test.
func (p *smtpProbe) message() []byte {
	if len(p.cfg.Message) > 0 {
		return p.cfg.Message
	}
	from := p.cfg.account()
	to := p.cfg.SendTo
	if to == "" {
		to = from
	}
	var id [8]byte
	rand.Read(id[:])
	return []byte(fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: maillab diagnose test message\r\nDate: %s\r\nMessage-ID: <%s@maillab.invalid>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThis message was sent by \"maillab diagnose\" to check that this account can send mail.\r\nIt can be deleted.\r\n",
		from, to, p.cfg.Now().Format(time.RFC1123Z), hex.EncodeToString(id[:])))
}

func humanBytes(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%d kB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
