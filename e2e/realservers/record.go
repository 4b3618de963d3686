//go:build e2e

package realservers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/maillab/maillab/settings"
)

// ClientService is one service as a mail client is configured for it.
type ClientService struct {
	// Name is the settings service name (submission, imaps, pop3 ...).
	Name string
	// Protocol is settings.ProtocolSMTP, ProtocolIMAP or ProtocolPOP3.
	Protocol string
	// Security is settings.SecurityNone, SecurityStartTLS or SecurityTLS.
	Security string
	// Host is the server name the client verifies the certificate for.
	Host string
	// Addr is the "host:port" the client dials.
	Addr string
}

// ClientOptions are the account and limits of the recorded client.
type ClientOptions struct {
	// Username and Password log in; an empty Password means the client
	// does not log in.
	Username, Password string
	// From and To are the envelope of the send.
	From, To string
	// Message is the RFC 5322 message to send; nil means no send.
	Message []byte
	// Roots verify the servers' certificates.
	Roots *x509.CertPool
	// MaxTLS is the highest TLS version the client speaks; 0 means 1.3.
	MaxTLS uint16
	// AuthMechs restricts the SASL mechanisms; empty means PLAIN (the
	// recorder logs in with PLAIN or IMAP LOGIN / POP3 USER only).
	AuthMechs []string
	// Timeout bounds each connect, handshake and reply; 0 means 10 s.
	Timeout time.Duration
}

// Outcome says how far a recorded conversation got.
type Outcome struct {
	// Secured is true once TLS was established and verified.
	Secured bool
	// LoggedIn is true after a successful login.
	LoggedIn bool
	// Sent is true when the server accepted the message (250 after DATA).
	Sent bool
}

// ehloName is the name the recorder greets SMTP servers with.
const ehloName = "recorder.maillab.invalid"

// placeholderPassword is sent instead of the real password where the
// server has said that it refuses logins on this connection anyway
// (LOGINDISABLED, RFC 9051 §6.2.3), to record the refusal.
const placeholderPassword = "placeholder-not-the-password"

// Record has the conversation that a careful mail client configured with
// svc and o has with the server, and records it in tr: connect (TLS
// first for implicit TLS), greeting, capabilities, STARTTLS when the
// settings ask for it, login, and for SMTP a send. Where the client
// would stop (STARTTLS not offered, no usable login) it first sends the
// command anyway, without credentials, to record the server's refusal.
// It never sends a password over a connection that is not encrypted.
// An error means the conversation ended abnormally (a timeout, a closed
// connection, a malformed reply); it is noted in tr too.
func Record(ctx context.Context, tr *Transcript, svc ClientService, o ClientOptions) (Outcome, error) {
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	tr.Note("%s: %s client, security %s", svc.Name, strings.ToUpper(svc.Protocol), svc.Security)
	c, err := dial(ctx, tr, svc, o)
	if err != nil || c == nil {
		return Outcome{}, err
	}
	defer c.conn.Close()
	// The per-reply deadlines bound each step; ctx bounds the whole.
	defer context.AfterFunc(ctx, func() { c.raw.Close() })()
	var out Outcome
	switch svc.Protocol {
	case settings.ProtocolSMTP:
		err = c.smtpSession(ctx, svc, o, &out)
	case settings.ProtocolIMAP:
		err = c.imapSession(ctx, svc, o, &out)
	case settings.ProtocolPOP3:
		err = c.pop3Session(ctx, svc, o, &out)
	default:
		err = fmt.Errorf("unknown protocol %q", svc.Protocol)
	}
	if err != nil {
		tr.Note("conversation ended: %s", stableError(err))
		return out, fmt.Errorf("%s %s: %w", svc.Name, svc.Addr, err)
	}
	return out, nil
}

// conv is one recorded connection.
type conv struct {
	tr *Transcript
	// raw is the TCP connection; conn is raw or TLS over it.
	raw     net.Conn
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
	secured bool
	tag     int
}

// dial connects, and for implicit TLS does the handshake; it returns a nil
// conv (and no error) when the handshake or verification failed, which
// is recorded.
func dial(ctx context.Context, tr *Transcript, svc ClientService, o ClientOptions) (*conv, error) {
	d := net.Dialer{Timeout: o.Timeout}
	conn, err := d.DialContext(ctx, "tcp", svc.Addr)
	if err != nil {
		tr.Note("connect failed: %s", stableError(err))
		return nil, fmt.Errorf("dial %s: %w", svc.Addr, err)
	}
	c := &conv{tr: tr, raw: conn, conn: conn, r: bufio.NewReader(conn), timeout: o.Timeout}
	if svc.Security == settings.SecurityTLS {
		ok, err := c.handshake(ctx, svc.Host, o)
		if err != nil || !ok {
			conn.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *conv) arm() { c.conn.SetDeadline(time.Now().Add(c.timeout)) }

// send writes one command line and records it.
func (c *conv) send(line string) error {
	c.tr.Client(line)
	c.arm()
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// handshake runs a TLS client handshake on the connection with the
// client's limits, then verifies the chain against o.Roots for host, and
// records both. It returns false when either failed: a client stops
// there.
func (c *conv) handshake(ctx context.Context, host string, o ClientOptions) (bool, error) {
	cfg := &tls.Config{
		ServerName: host,
		// Verified below, to record why a chain is refused.
		InsecureSkipVerify: true,
		MaxVersion:         o.MaxTLS,
	}
	if o.MaxTLS != 0 && o.MaxTLS < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS10
	}
	capture := &captureConn{Conn: c.conn}
	tc := tls.Client(capture, cfg)
	hctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.tr.Note("TLS handshake failed: %s", stableError(err))
		var rhe tls.RecordHeaderError
		if errors.As(err, &rhe) {
			// The server spoke plaintext: record its first line, as a
			// client that shows the server's answer would.
			if line, ok := capture.firstLine(c.timeout); ok {
				c.tr.Server(line)
			}
		}
		return false, nil
	}
	cs := tc.ConnectionState()
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, cert := range cs.PeerCertificates[1:] {
		inter.AddCert(cert)
	}
	_, verr := leaf.Verify(x509.VerifyOptions{Roots: o.Roots, Intermediates: inter, DNSName: host})
	c.tr.Note("TLS: %s, %d certificate(s), leaf subject %q, issuer %q; verification for %s: %s",
		tls.VersionName(cs.Version), len(cs.PeerCertificates), leaf.Subject.String(), leaf.Issuer.String(), host, describeVerify(verr, leaf))
	if verr != nil {
		return false, nil
	}
	c.conn, c.r, c.secured = tc, bufio.NewReader(tc), true
	return true, nil
}

// captureConn keeps the first MaxLine bytes read through it, so that a
// failed TLS handshake can show what the server sent instead of TLS (the
// TLS client reads more than the record header it rejects).
type captureConn struct {
	net.Conn
	buf []byte
}

// Read reads from the connection and keeps what it read.
func (c *captureConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if room := MaxLine - len(c.buf); room > 0 && n > 0 {
		c.buf = append(c.buf, p[:min(n, room)]...)
	}
	return n, err
}

// firstLine returns the first line the server sent, reading the rest of
// it from the connection within timeout when the handshake stopped
// before its end; ok is false when no complete line arrives.
func (c *captureConn) firstLine(timeout time.Duration) (string, bool) {
	c.Conn.SetReadDeadline(time.Now().Add(timeout))
	defer c.Conn.SetReadDeadline(time.Time{})
	r := bufio.NewReader(io.MultiReader(bytes.NewReader(c.buf), c.Conn))
	line, err := ReadLine(r)
	return line, err == nil
}

// describeVerify names a verification failure by its kind, without the
// times and addresses that change from run to run.
func describeVerify(err error, leaf *x509.Certificate) string {
	var inv x509.CertificateInvalidError
	var host x509.HostnameError
	var ua x509.UnknownAuthorityError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		if time.Now().After(leaf.NotAfter) {
			return "certificate has expired"
		}
		return "certificate is not yet valid"
	case errors.As(err, &host):
		return host.Error()
	case errors.As(err, &ua):
		if bytes.Equal(leaf.RawIssuer, leaf.RawSubject) && leaf.CheckSignatureFrom(leaf) == nil {
			return "self-signed certificate"
		}
		return fmt.Sprintf("signed by an unknown authority %q", leaf.Issuer.String())
	}
	return err.Error()
}

// stableError describes err without the addresses and ports of a
// *net.OpError, which change from run to run.
func stableError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		if op.Op == "remote error" {
			return "remote error: " + op.Err.Error()
		}
		return op.Op + ": " + op.Err.Error()
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, net.ErrClosed):
		return err.Error()
	}
	return err.Error()
}

// wantMech returns the first of the client's mechanisms (PLAIN when it
// has none) that the server offers, or "" and the client's first.
func wantMech(o ClientOptions, offered []string) (mech, first string) {
	want := o.AuthMechs
	if len(want) == 0 {
		want = []string{"PLAIN"}
	}
	for _, m := range want {
		if slices.ContainsFunc(offered, func(s string) bool { return strings.EqualFold(s, m) }) {
			return strings.ToUpper(m), strings.ToUpper(want[0])
		}
	}
	return "", strings.ToUpper(want[0])
}

// plainResponse is the SASL PLAIN initial response (RFC 4616 §2).
func plainResponse(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// ---- SMTP (RFC 5321, RFC 3207 STARTTLS, RFC 4954 AUTH) ----

func (c *conv) smtpReply() (SMTPReply, error) {
	c.arm()
	return ReadSMTPReply(c.r, c.tr.Server)
}

func (c *conv) smtpCmd(line string) (SMTPReply, error) {
	if err := c.send(line); err != nil {
		return SMTPReply{}, err
	}
	return c.smtpReply()
}

// smtpQuit ends the session politely (RFC 5321 §4.1.1.10).
func (c *conv) smtpQuit() error {
	_, err := c.smtpCmd("QUIT")
	return err
}

func (c *conv) smtpSession(ctx context.Context, svc ClientService, o ClientOptions, out *Outcome) error {
	out.Secured = c.secured
	greet, err := c.smtpReply()
	if err != nil {
		return err
	}
	if greet.Code != 220 {
		return c.smtpQuit()
	}
	ehlo, err := c.smtpCmd("EHLO " + ehloName)
	if err != nil {
		return err
	}
	if svc.Security == settings.SecurityStartTLS {
		if !ehlo.Has("STARTTLS") {
			c.tr.Note("EHLO does not offer STARTTLS; the client requires it (sent anyway to record the reply)")
			if _, err := c.smtpCmd("STARTTLS"); err != nil {
				return err
			}
			return c.smtpQuit()
		}
		rep, err := c.smtpCmd("STARTTLS")
		if err != nil {
			return err
		}
		if rep.Code != 220 {
			return c.smtpQuit()
		}
		// RFC 3207 §4.2: forget everything learned before TLS.
		if ok, err := c.handshake(ctx, svc.Host, o); err != nil || !ok {
			return err
		}
		out.Secured = true
		if ehlo, err = c.smtpCmd("EHLO " + ehloName); err != nil {
			return err
		}
	}
	if o.Password != "" {
		ok, err := c.smtpAuth(ehlo, o)
		if err != nil || !ok {
			if err == nil {
				err = c.smtpQuit()
			}
			return err
		}
		out.LoggedIn = true
	}
	if o.Message != nil {
		sent, err := c.smtpSend(ehlo, o)
		if err != nil {
			return err
		}
		out.Sent = sent
	}
	return c.smtpQuit()
}

// smtpAuth logs in with AUTH PLAIN (RFC 4954 §4, RFC 4616) when the
// connection is encrypted. Otherwise, or when no mechanism is in common,
// it starts AUTH without credentials to record the server's answer and
// cancels a challenge with "*".
func (c *conv) smtpAuth(ehlo SMTPReply, o ClientOptions) (bool, error) {
	params, offered := ehlo.Param("AUTH")
	mechs := strings.Fields(strings.ToUpper(params))
	mech, first := wantMech(o, mechs)
	switch {
	case !offered:
		c.tr.Note("EHLO does not offer AUTH (sent anyway, without credentials, to record the reply)")
		return false, c.smtpAuthProbe(first)
	case mech == "":
		c.tr.Note("no SASL mechanism in common: client %s, server %s (sent anyway, without credentials)", strings.Join(o.AuthMechs, " "), strings.Join(mechs, " "))
		return false, c.smtpAuthProbe(first)
	case !c.secured:
		c.tr.Note("the connection is not encrypted: AUTH is started without credentials and cancelled")
		return false, c.smtpAuthProbe(mech)
	case mech != "PLAIN":
		c.tr.Note("the recorder speaks PLAIN only; %s is started and cancelled", mech)
		return false, c.smtpAuthProbe(mech)
	}
	ir := plainResponse(o.Username, o.Password)
	c.tr.Mask(ir)
	rep, err := c.smtpCmd("AUTH PLAIN " + ir)
	if err != nil {
		return false, err
	}
	return rep.Code == 235, nil
}

// smtpAuthProbe sends "AUTH mech" without an initial response and answers
// a 334 challenge with "*" (RFC 4954 §4: cancel).
func (c *conv) smtpAuthProbe(mech string) error {
	rep, err := c.smtpCmd("AUTH " + mech)
	if err != nil {
		return err
	}
	if rep.Code == 334 {
		_, err = c.smtpCmd("*")
	}
	return err
}

// smtpSend sends o.Message. When the server refuses MAIL FROM with SIZE
// (RFC 1870 §6), it tries again without SIZE to record the refusal after
// DATA as well.
func (c *conv) smtpSend(ehlo SMTPReply, o ClientOptions) (bool, error) {
	mail := fmt.Sprintf("MAIL FROM:<%s>", o.From)
	if ehlo.Has("SIZE") {
		rep, err := c.smtpCmd(fmt.Sprintf("%s SIZE=%d", mail, len(o.Message)))
		if err != nil {
			return false, err
		}
		switch {
		case rep.Code/100 == 2:
			return c.smtpTransaction("", o)
		case rep.Code != 552:
			return false, nil
		}
		c.tr.Note("again without SIZE, to record the refusal after DATA")
		if _, err := c.smtpCmd("RSET"); err != nil {
			return false, err
		}
	}
	return c.smtpTransaction(mail, o)
}

// smtpTransaction sends MAIL (unless mail is ""), RCPT and DATA.
func (c *conv) smtpTransaction(mail string, o ClientOptions) (bool, error) {
	if mail != "" {
		rep, err := c.smtpCmd(mail)
		if err != nil || rep.Code/100 != 2 {
			return false, err
		}
	}
	rep, err := c.smtpCmd(fmt.Sprintf("RCPT TO:<%s>", o.To))
	if err != nil || rep.Code/100 != 2 {
		return false, err
	}
	rep, err = c.smtpCmd("DATA")
	if err != nil || rep.Code != 354 {
		return false, err
	}
	data := dotStuff(o.Message)
	c.tr.Client(fmt.Sprintf("<message: %d bytes, dot-stuffed, ending in CRLF.CRLF>", len(data)))
	c.arm()
	if _, err := c.conn.Write(data); err != nil {
		return false, fmt.Errorf("send message: %w", err)
	}
	rep, err = c.smtpReply()
	if err != nil {
		return false, err
	}
	return rep.Code == 250, nil
}

// dotStuff returns msg in the DATA wire form (RFC 5321 §4.5.2): CRLF line
// ends, a leading "." doubled, then ".".
func dotStuff(msg []byte) []byte {
	var b bytes.Buffer
	text := strings.ReplaceAll(string(msg), "\r\n", "\n")
	text = strings.TrimSuffix(text, "\n")
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, ".") {
			b.WriteByte('.')
		}
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

// ---- IMAP (RFC 9051 / RFC 3501) ----

func (c *conv) nextTag() string {
	c.tag++
	return fmt.Sprintf("a%d", c.tag)
}

func (c *conv) imapRead(tag string) (IMAPStatus, []string, error) {
	c.arm()
	return ReadIMAPResponse(c.r, tag, c.tr.Server)
}

func (c *conv) imapCmd(cmd string) (IMAPStatus, []string, error) {
	tag := c.nextTag()
	if err := c.send(tag + " " + cmd); err != nil {
		return IMAPStatus{}, nil, err
	}
	return c.imapRead(tag)
}

func (c *conv) imapLogout() error {
	_, _, err := c.imapCmd("LOGOUT")
	return err
}

// imapQuote returns s as an IMAP quoted string (RFC 9051 §4.3).
func imapQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (c *conv) imapSession(ctx context.Context, svc ClientService, o ClientOptions, out *Outcome) error {
	out.Secured = c.secured
	greet, _, err := c.imapRead("*")
	if err != nil {
		return err
	}
	if greet.Status == "BYE" {
		return nil
	}
	st, un, err := c.imapCmd("CAPABILITY")
	if err != nil {
		return err
	}
	caps := IMAPCapabilities(st, un)
	if svc.Security == settings.SecurityStartTLS {
		if !slices.Contains(caps, "STARTTLS") {
			c.tr.Note("CAPABILITY does not list STARTTLS; the client requires it (sent anyway to record the reply)")
			if _, _, err := c.imapCmd("STARTTLS"); err != nil {
				return err
			}
			return c.imapLogout()
		}
		st, _, err := c.imapCmd("STARTTLS")
		if err != nil {
			return err
		}
		if st.Status != "OK" {
			return c.imapLogout()
		}
		// RFC 9051 §6.2.1: capabilities must be asked again after TLS.
		if ok, err := c.handshake(ctx, svc.Host, o); err != nil || !ok {
			return err
		}
		out.Secured = true
		if st, un, err = c.imapCmd("CAPABILITY"); err != nil {
			return err
		}
		caps = IMAPCapabilities(st, un)
	}
	if o.Password != "" {
		ok, err := c.imapLogin(caps, o)
		if err != nil {
			return err
		}
		if ok {
			out.LoggedIn = true
			if _, _, err := c.imapCmd("STATUS INBOX (MESSAGES)"); err != nil {
				return err
			}
		}
	}
	return c.imapLogout()
}

// imapLogin logs in with LOGIN over an encrypted connection. On a
// plaintext connection it sends LOGIN only when the server announced
// LOGINDISABLED, with a placeholder password, to record the refusal.
func (c *conv) imapLogin(caps []string, o ClientOptions) (bool, error) {
	var offered []string
	for _, cp := range caps {
		if m, ok := strings.CutPrefix(cp, "AUTH="); ok {
			offered = append(offered, m)
		}
	}
	loginDisabled := slices.Contains(caps, "LOGINDISABLED")
	if !loginDisabled && !slices.Contains(offered, "PLAIN") {
		offered = append(offered, "PLAIN") // LOGIN is PLAIN's equivalent
	}
	mech, first := wantMech(o, offered)
	switch {
	case !c.secured && loginDisabled:
		// RFC 9051 §6.2.3: the client must not send LOGIN; a careless one
		// does, and AUTHENTICATE is refused the same way.
		c.tr.Note("LOGINDISABLED on a plaintext connection: AUTHENTICATE is started without credentials, then LOGIN is sent with a placeholder password, to record the refusals")
		if err := c.imapAuthProbe(first); err != nil {
			return false, err
		}
		st, _, err := c.imapCmd(fmt.Sprintf("LOGIN %s %s", imapQuote(o.Username), imapQuote(placeholderPassword)))
		return st.Status == "OK", err
	case mech == "":
		c.tr.Note("no SASL mechanism in common: client %s, server %s (started anyway, without credentials)", strings.Join(o.AuthMechs, " "), strings.Join(offered, " "))
		return false, c.imapAuthProbe(first)
	case !c.secured:
		c.tr.Note("the connection is not encrypted: the recorder does not send the password")
		return false, nil
	}
	c.tr.Mask(imapQuote(o.Password))
	st, _, err := c.imapCmd(fmt.Sprintf("LOGIN %s %s", imapQuote(o.Username), imapQuote(o.Password)))
	return st.Status == "OK", err
}

// imapAuthProbe starts AUTHENTICATE mech and cancels a continuation with
// "*" (RFC 9051 §6.2.2).
func (c *conv) imapAuthProbe(mech string) error {
	tag := c.nextTag()
	if err := c.send(tag + " AUTHENTICATE " + mech); err != nil {
		return err
	}
	st, _, err := c.imapRead(tag)
	if err != nil || st.Tag != "+" {
		return err
	}
	if err := c.send("*"); err != nil {
		return err
	}
	_, _, err = c.imapRead(tag)
	return err
}

// ---- POP3 (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH) ----

func (c *conv) pop3Status() (bool, error) {
	c.arm()
	line, err := ReadLine(c.r)
	if line != "" {
		c.tr.Server(line)
	}
	if err != nil {
		return false, err
	}
	ok, _, err := ParsePOP3Status(line)
	return ok, err
}

func (c *conv) pop3Cmd(line string) (bool, error) {
	if err := c.send(line); err != nil {
		return false, err
	}
	return c.pop3Status()
}

func (c *conv) pop3CAPA() ([]string, error) {
	ok, err := c.pop3Cmd("CAPA")
	if err != nil || !ok {
		return nil, err
	}
	c.arm()
	lines, err := ReadPOP3Multi(c.r, c.tr.Server)
	var caps []string
	for _, l := range lines {
		caps = append(caps, strings.ToUpper(l))
	}
	return caps, err
}

func (c *conv) pop3Quit() error {
	_, err := c.pop3Cmd("QUIT")
	return err
}

// pop3Has reports whether a CAPA line is keyword or starts with it.
func pop3Has(caps []string, keyword string) bool {
	return slices.ContainsFunc(caps, func(l string) bool {
		k, _, _ := strings.Cut(l, " ")
		return k == keyword
	})
}

func (c *conv) pop3Session(ctx context.Context, svc ClientService, o ClientOptions, out *Outcome) error {
	out.Secured = c.secured
	ok, err := c.pop3Status()
	if err != nil || !ok {
		return err
	}
	caps, err := c.pop3CAPA()
	if err != nil {
		return err
	}
	if svc.Security == settings.SecurityStartTLS {
		if !pop3Has(caps, "STLS") {
			c.tr.Note("CAPA does not list STLS; the client requires it (sent anyway to record the reply)")
			if _, err := c.pop3Cmd("STLS"); err != nil {
				return err
			}
			return c.pop3Quit()
		}
		ok, err := c.pop3Cmd("STLS")
		if err != nil {
			return err
		}
		if !ok {
			return c.pop3Quit()
		}
		if ok, err := c.handshake(ctx, svc.Host, o); err != nil || !ok {
			return err
		}
		out.Secured = true
		// RFC 2595 §4: the client must discard what it knew; ask again.
		if caps, err = c.pop3CAPA(); err != nil {
			return err
		}
	}
	if o.Password != "" {
		ok, err := c.pop3Login(caps, o)
		if err != nil {
			return err
		}
		out.LoggedIn = ok
	}
	return c.pop3Quit()
}

// pop3Login logs in with USER/PASS over an encrypted connection. On a
// plaintext connection it sends USER alone, to record the server's
// answer, and never PASS.
func (c *conv) pop3Login(caps []string, o ClientOptions) (bool, error) {
	var offered []string
	for _, l := range caps {
		if rest, ok := strings.CutPrefix(l, "SASL "); ok {
			offered = append(offered, strings.Fields(rest)...)
		}
	}
	if pop3Has(caps, "USER") && !slices.Contains(offered, "PLAIN") {
		offered = append(offered, "PLAIN") // USER/PASS is PLAIN's equivalent
	}
	mech, first := wantMech(o, offered)
	switch {
	case mech == "" && len(o.AuthMechs) > 0:
		c.tr.Note("no SASL mechanism in common: client %s, server %s (started anyway, without credentials)", strings.Join(o.AuthMechs, " "), strings.Join(offered, " "))
		return false, c.pop3AuthProbe(first)
	case !c.secured:
		c.tr.Note("the connection is not encrypted: USER is sent to record the answer, PASS is not")
		_, err := c.pop3Cmd("USER " + o.Username)
		return false, err
	}
	ok, err := c.pop3Cmd("USER " + o.Username)
	if err != nil || !ok {
		return false, err
	}
	c.tr.Mask(o.Password)
	return c.pop3Cmd("PASS " + o.Password)
}

// pop3AuthProbe sends "AUTH mech" without an initial response and
// cancels a challenge ("+ ...") with "*" (RFC 5034 §4).
func (c *conv) pop3AuthProbe(mech string) error {
	if err := c.send("AUTH " + mech); err != nil {
		return err
	}
	c.arm()
	line, err := ReadLine(c.r)
	if line != "" {
		c.tr.Server(line)
	}
	if err != nil {
		return err
	}
	if line == "+" || strings.HasPrefix(line, "+ ") {
		_, err = c.pop3Cmd("*")
		return err
	}
	_, _, err = ParsePOP3Status(line)
	return err
}
