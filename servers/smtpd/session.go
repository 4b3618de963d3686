package smtpd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

type session struct {
	s    *Server
	conn *smtp.Conn
	user *mailstore.User
	from string
	to   []string
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

func (se *session) isTLS() bool {
	_, ok := se.conn.TLSConnectionState()
	return ok
}

func (se *session) remote() net.Addr {
	if c := se.conn.Conn(); c != nil {
		return c.RemoteAddr()
	}
	return nil
}

func (se *session) envelope() *Envelope {
	env := &Envelope{
		Service: se.s.cfg.Service,
		Remote:  se.remote(),
		TLS:     se.isTLS(),
		Helo:    se.conn.Hostname(),
		From:    se.from,
		To:      slices.Clone(se.to),
	}
	if se.user != nil {
		env.Authenticated = se.user.Username
	}
	return env
}

// authAllowedNow reports whether AUTH may run on this connection now.
func (se *session) authAllowedNow() bool {
	return se.s.cfg.Mode == ModeSubmission && (se.isTLS() || se.s.cfg.AllowInsecureAuth)
}

// AuthMechanisms implements smtp.AuthSession: the EHLO reply lists AUTH
// only where it may be used (RFC 4954 §4: servers may hide AUTH before
// TLS; Postfix's smtpd_tls_auth_only does).
func (se *session) AuthMechanisms() []string {
	if !se.authAllowedNow() {
		return nil
	}
	return se.s.cfg.Mechanisms
}

// Errors with Postfix's wording.
var (
	errAuthNotEnabled = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Error: authentication not enabled"}
	errMustStartTLS   = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	errAuthRequired   = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errUnknownMech    = &smtp.SMTPError{Code: 504, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Unrecognized authentication type"}
	errTempLocal      = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Error: queue file write error"}
	// errDataTimeout: the message did not arrive within DataTimeout
	// (RFC 5321 §4.5.3.2.6); 421 tells the client to go away.
	errDataTimeout = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Error: timeout exceeded while receiving the message"}
)

// Auth implements smtp.AuthSession.
func (se *session) Auth(mech string) (sasl.Server, error) {
	switch {
	case se.s.cfg.Mode != ModeSubmission:
		return nil, errAuthNotEnabled
	case !se.authAllowedNow():
		// RFC 3207 §4 and RFC 4954 §6: 530 5.7.0 when TLS is required.
		return nil, errMustStartTLS
	case !slices.ContainsFunc(se.s.cfg.Mechanisms, func(m string) bool { return strings.EqualFold(m, mech) }):
		return nil, errUnknownMech
	}
	mech = strings.ToUpper(mech)
	srv := auth.NewSASLServer(mech, func(username, secret string) error {
		u, err := se.s.cfg.Auth.Authenticate(context.Background(), &auth.Request{
			Protocol:  "smtp",
			Service:   se.s.cfg.Service,
			Mechanism: mech,
			Username:  username,
			Password:  secret,
			TLS:       se.isTLS(),
			Remote:    se.remote(),
		})
		if err != nil {
			return err
		}
		se.user = u
		return nil
	})
	if srv == nil {
		return nil, errUnknownMech
	}
	return &smtpSASL{inner: srv, s: se.s}, nil
}

// smtpSASL turns auth refusals into SMTP replies. go-smtp only honours an
// unwrapped *smtp.SMTPError, so the conversion happens here, at the edge.
type smtpSASL struct {
	inner sasl.Server
	s     *Server
}

func (a *smtpSASL) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := a.inner.Next(resp)
	if err != nil {
		return ch, done, a.s.authReply(err)
	}
	return ch, done, nil
}

// AuthReply returns the SMTP reply for a refused login.
func AuthReply(err error) *smtp.SMTPError {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		if auth.IsMalformed(err) {
			return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Cannot decode response"}
		}
		return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
	}
	detail := func(def string) string {
		if ae.Detail != "" {
			return def + "; " + ae.Detail
		}
		return def
	}
	switch ae.Kind {
	case auth.InvalidCredentials:
		// RFC 4954 §6: 535 5.7.8 Authentication credentials invalid.
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: detail("Error: authentication failed: authentication failure")}
	case auth.PasswordExpired:
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: detail("Error: authentication failed: password expired, change it in the web portal")}
	case auth.AccountDisabled:
		// RFC 7372 §3.3: X.7.13 User Account Disabled, with reply 525.
		return &smtp.SMTPError{Code: 525, EnhancedCode: smtp.EnhancedCode{5, 7, 13}, Message: detail("User account disabled, contact your administrator")}
	case auth.TemporarilyLocked:
		return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: detail("Too many failed authentication attempts, account temporarily locked")}
	case auth.BasicAuthDisabled:
		// RFC 4954 §6: 534 5.7.9 Authentication mechanism is too weak.
		return &smtp.SMTPError{Code: 534, EnhancedCode: smtp.EnhancedCode{5, 7, 9}, Message: detail("Application-specific password required: basic authentication is disabled, sign in with OAuth2 (XOAUTH2 or OAUTHBEARER)")}
	case auth.InvalidToken:
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: detail("Username and Password not accepted")}
	}
	return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: detail("Temporary authentication failure")}
}

func (s *Server) authReply(err error) *smtp.SMTPError {
	var ae *auth.Error
	if !errors.As(err, &ae) && !auth.IsMalformed(err) {
		s.cfg.Logger.Error("authentication error", "service", s.cfg.Service, "err", err)
	}
	return AuthReply(err)
}

// Mail implements smtp.Session.
func (se *session) Mail(from string, opts *smtp.MailOptions) error {
	if se.s.cfg.Mode == ModeSubmission && se.user == nil {
		if !se.isTLS() && !se.s.cfg.AllowInsecureAuth && se.s.cfg.TLSConfig != nil {
			return errMustStartTLS
		}
		// RFC 4954 §6: 530 5.7.0 Authentication required.
		return errAuthRequired
	}
	se.from = from
	for _, c := range se.s.cfg.Checks {
		if err := c.CheckMail(context.Background(), se.envelope()); err != nil {
			se.from = ""
			return err
		}
	}
	return nil
}

func (se *session) isLocal(addr string) bool {
	_, domain, ok := strings.Cut(addr, "@")
	if !ok {
		return false
	}
	return slices.ContainsFunc(se.s.cfg.LocalDomains, func(d string) bool { return strings.EqualFold(d, domain) })
}

// Rcpt implements smtp.Session.
func (se *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	for _, c := range se.s.cfg.Checks {
		if err := c.CheckRcpt(context.Background(), se.envelope(), to); err != nil {
			return err
		}
	}
	if se.isLocal(to) {
		u, err := se.s.cfg.Store.UserByAddress(to)
		if err != nil {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
				Message: fmt.Sprintf("<%s>: Recipient address rejected: User unknown in virtual mailbox table", to)}
		}
		if u.OverQuota(1) {
			return overQuota(to)
		}
	} else if se.user == nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: fmt.Sprintf("<%s>: Relay access denied", to)}
	}
	se.to = append(se.to, to)
	return nil
}

func overQuota(to string) *smtp.SMTPError {
	// Dovecot's wording; RFC 3463 X.2.2 mailbox full.
	return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2},
		Message: fmt.Sprintf("<%s> Quota exceeded (mailbox for user is full)", to)}
}

// Data implements smtp.Session.
func (se *session) Data(r io.Reader) error {
	// go-smtp's deadline for the DATA line still runs; the message gets
	// its own (RFC 5321 §4.5.3.2.6).
	if c := se.conn.Conn(); c != nil {
		c.SetReadDeadline(time.Now().Add(se.s.cfg.DataTimeout))
	}
	// The Received field is written first and the message read after it
	// into one buffer, the one the mailboxes keep: the body is not copied
	// again to put the field in front of it.
	msg, err := readMessage(r, se.receivedHeader())
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errDataTimeout
	}
	if err != nil {
		// go-smtp's ErrDataTooLarge is an *SMTPError (552 5.3.4); pass it
		// through unwrapped.
		return err
	}
	body := msg.body()
	env := se.envelope()
	for _, c := range se.s.cfg.Checks {
		if err := c.CheckData(context.Background(), env, body); err != nil {
			return err
		}
	}
	var remote []string
	for _, to := range se.to {
		if !se.isLocal(to) {
			remote = append(remote, to)
			continue
		}
		if err := se.s.cfg.Store.Deliver(to, msg.data); err != nil {
			if errors.Is(err, mailstore.ErrOverQuota) {
				return overQuota(to)
			}
			se.s.cfg.Logger.Error("delivery failed", "rcpt", to, "err", err)
			return errTempLocal
		}
	}
	if len(remote) > 0 && se.s.cfg.Relay != nil {
		if err := se.s.cfg.Relay(se.from, remote, msg.data); err != nil {
			se.s.cfg.Logger.Error("relay failed", "err", err)
			return errTempLocal
		}
	}
	return nil
}

// message is a received message: the Received field the server added,
// then the client's message, in one slice.
type message struct {
	data      []byte
	headerLen int
}

// body is the message as the client sent it.
func (m message) body() []byte { return m.data[m.headerLen:] }

// chunkSize is the unit readMessage reads in: big enough for few reads,
// small enough that a message of a few KiB costs little.
const chunkSize = 32 << 10

// chunks recycles readMessage's read buffers between messages.
var chunks = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// readMessage reads r to its end into one exactly sized slice that starts
// with header. The length is not known in advance (a client's SIZE
// parameter is its estimate, RFC 1870 §3, and trusting it would let a
// client make the server allocate 25 MiB for nothing), so the message is
// read into pooled chunks and copied once into its final slice; unlike
// io.ReadAll, no growing slice is copied again at each growth, and the
// mailbox keeps no spare capacity. On an error it returns what was read.
func readMessage(r io.Reader, header []byte) (message, error) {
	var (
		full  []*[]byte // filled chunks
		last  *[]byte   // the chunk being filled
		n     int       // octets in last
		total = len(header)
		err   error
	)
	for err == nil {
		if last == nil || n == chunkSize {
			if last != nil {
				full = append(full, last)
			}
			last, n = chunks.Get().(*[]byte), 0
		}
		var m int
		m, err = r.Read((*last)[n:])
		n += m
		total += m
	}
	if err == io.EOF {
		err = nil
	}
	data := make([]byte, 0, total)
	data = append(data, header...)
	for _, c := range full {
		data = append(data, *c...)
		chunks.Put(c)
	}
	data = append(data, (*last)[:n]...)
	chunks.Put(last)
	return message{data: data, headerLen: len(header)}, err
}

// receivedHeader is the trace field every SMTP server adds (RFC 5321
// §4.4), with the RFC 3848 protocol type.
func (se *session) receivedHeader() []byte {
	proto := "ESMTP"
	if se.isTLS() {
		proto += "S"
	}
	if se.user != nil {
		proto += "A"
	}
	ip := "unknown"
	if tcp, ok := se.remote().(*net.TCPAddr); ok {
		ip = tcp.IP.String()
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s with %s;\r\n\t%s\r\n",
		se.conn.Hostname(), ip, se.s.cfg.Hostname, proto, time.Now().Format(time.RFC1123Z))
	return b.Bytes()
}

// Reset implements smtp.Session.
func (se *session) Reset() {
	se.from = ""
	se.to = nil
}

// Logout implements smtp.Session.
func (se *session) Logout() error { return nil }
