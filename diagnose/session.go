package diagnose

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/maillab/maillab/diagnose/wire"
)

// Bounds of what one reply may hold. They are far above what real servers
// send and far below what would hurt.
const (
	maxReplyLines    = 200       // SMTP multi-line replies (EHLO lists ~20)
	maxIMAPResponse  = 256 << 10 // one IMAP response with literals
	maxUntagged      = 2000      // untagged responses before a tagged one
	maxPOP3Multiline = 1000      // CAPA lines
)

// session is one connection to a server: the TCP connection, the TLS
// layer once there is one, and a bounded line reader. Every read and write
// has a deadline of timeout from its start.
type session struct {
	raw     net.Conn
	conn    net.Conn
	r       *wire.Reader
	timeout time.Duration
	tls     *tls.ConnectionState
	tag     int
	// secretSent is set once a password went over this connection.
	secretSent bool
	stop       func() bool

	// opened is when the session started (the TCP connection was up).
	opened time.Time
	// armed is when the current wait began.
	armed time.Time
	// cmd describes the last command sent, for the delay findings.
	cmd string
	// lastWait is how long the last complete reply took to arrive.
	lastWait time.Duration
	// slowest is the longest wait for a complete reply, and its command.
	slowest replyWait
}

// replyWait is the wait for the reply to one command.
type replyWait struct {
	cmd string
	d   time.Duration
}

func newSession(ctx context.Context, raw net.Conn, timeout time.Duration) *session {
	s := &session{raw: raw, conn: raw, r: wire.NewReader(raw, 0), timeout: timeout, opened: time.Now()}
	// A cancelled run unblocks every read at once.
	s.stop = context.AfterFunc(ctx, func() { raw.SetDeadline(time.Now()) })
	return s
}

// upgrade switches the session to a TLS connection. Anything the plaintext
// reader had buffered is dropped (RFC 3207 §4.2, RFC 2595 §3.1); the caller
// checks r.Buffered() before.
func (s *session) upgrade(tc *tls.Conn) {
	st := tc.ConnectionState()
	s.tls = &st
	s.conn = tc
	s.r = wire.NewReader(tc, 0)
}

func (s *session) close() {
	if s == nil {
		return
	}
	if s.stop != nil {
		s.stop()
	}
	// The TCP connection first: closing TLS first sends close_notify,
	// which can block for seconds on a link that stopped draining.
	s.raw.Close()
	s.conn.Close()
}

func (s *session) arm() {
	s.armed = time.Now()
	s.conn.SetDeadline(s.armed.Add(s.timeout))
}

// replied records the wait for a complete reply that just arrived.
func (s *session) replied() {
	s.lastWait = time.Since(s.armed)
	if s.lastWait > s.slowest.d {
		s.slowest = replyWait{cmd: s.cmd, d: s.lastWait}
	}
}

// send writes one command line.
func (s *session) send(line string) error {
	// The delay findings name the command without its IMAP tag.
	s.cmd = describeSent(strings.TrimPrefix(line, fmt.Sprintf("a%d ", s.tag)), s.secretSent, s.cmd)
	s.arm()
	_, err := io.WriteString(s.conn, line+"\r\n")
	return err
}

func (s *session) readReply() (wire.Reply, error) {
	s.arm()
	rep, err := wire.ReadReply(s.r, maxReplyLines)
	if err == nil {
		s.replied()
	}
	return rep, err
}

func (s *session) readLine() (string, error) {
	s.arm()
	line, err := s.r.ReadLine()
	if err == nil {
		s.replied()
	}
	return line, err
}

// smtpCmd sends an SMTP command and reads its reply.
func (s *session) smtpCmd(line string) (wire.Reply, error) {
	if err := s.send(line); err != nil {
		return wire.Reply{}, err
	}
	return s.readReply()
}

// imapCmd sends "TAG command" and reads untagged responses up to the tagged
// one. A continuation request ("+") ends the read too; tagged is then the
// continuation.
func (s *session) imapCmd(command string) (tagged wire.Response, untagged []wire.Response, err error) {
	s.tag++
	tag := fmt.Sprintf("a%d", s.tag)
	if err := s.send(tag + " " + command); err != nil {
		return wire.Response{}, nil, err
	}
	return s.imapReadUntil(tag)
}

// imapReadUntil reads responses until the tagged response of tag or a
// continuation request, within one deadline.
func (s *session) imapReadUntil(tag string) (wire.Response, []wire.Response, error) {
	s.arm()
	var untagged []wire.Response
	for {
		resp, err := wire.ReadResponse(s.r, maxIMAPResponse)
		if err != nil {
			return resp, untagged, err
		}
		switch {
		case resp.Tag == tag, resp.Tag == "+":
			s.replied()
			return resp, untagged, nil
		case resp.Tag == "*" && resp.Status == "BYE":
			// The server is closing; keep the BYE as the answer.
			s.replied()
			return resp, untagged, nil
		}
		if len(untagged) >= maxUntagged {
			return resp, untagged, fmt.Errorf("%w: more than %d untagged responses", wire.ErrTooManyLines, maxUntagged)
		}
		if resp.Tag == "*" {
			untagged = append(untagged, resp)
		}
	}
}

// pop3Cmd sends a POP3 command and reads the status line.
func (s *session) pop3Cmd(line string) (wire.Status, error) {
	if err := s.send(line); err != nil {
		return wire.Status{}, err
	}
	l, err := s.readLine()
	if err != nil {
		return wire.Status{Raw: l}, err
	}
	return wire.ParseStatus(l)
}

// ehloName is the name the diagnoser gives in EHLO: an address literal of
// its own end of the connection (RFC 5321 §4.1.4), which no server rejects
// as a bad host name.
func (s *session) ehloName() string {
	if a, ok := s.raw.LocalAddr().(*net.TCPAddr); ok {
		if ip4 := a.IP.To4(); ip4 != nil {
			return "[" + ip4.String() + "]"
		}
		return "[IPv6:" + a.IP.String() + "]"
	}
	return "[127.0.0.1]"
}

// Command verbs as describeSent knows them: the login commands, whose
// arguments are secret (SMTP AUTH, RFC 4954; IMAP AUTHENTICATE and LOGIN,
// RFC 3501 §6.2; POP3 USER, PASS and AUTH, RFC 1939 §7 and RFC 5034), and
// the other commands the probes send.
var (
	loginVerbs = []string{"AUTH", "AUTHENTICATE", "LOGIN", "USER", "PASS"}
	otherVerbs = []string{"EHLO", "HELO", "STARTTLS", "MAIL", "RCPT", "DATA", "QUIT", "RSET", "NOOP",
		"CAPABILITY", "EXAMINE", "SELECT", "FETCH", "LOGOUT", "CAPA", "STLS", "STAT", "UIDL", "LIST", "TOP", "RETR"}
)

// describeSent names a command line (without its IMAP tag) for the delay
// findings, never with a secret in it: a login command by its verb (and
// SASL mechanism); another command of the probes whole, or only by its verb
// once a secret went over the connection; any other line (a SASL response,
// a literal, a password, a "*" cancelling an exchange) continues the
// command before it, prev.
func describeSent(line string, secretSent bool, prev string) string {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return prev
	}
	verb := strings.ToUpper(fields[0])
	switch {
	case slices.Contains(loginVerbs, verb):
		if (verb == "AUTH" || verb == "AUTHENTICATE") && len(fields) > 1 && isMechanismName(fields[1]) {
			return verb + " " + strings.ToUpper(fields[1])
		}
		return verb
	case slices.Contains(otherVerbs, verb) && !secretSent:
		return line
	case slices.Contains(otherVerbs, verb):
		return verb
	}
	return prev
}

// isMechanismName reports whether s is a SASL mechanism name (RFC 4422
// §3.1: upper-case letters, digits, hyphens and underscores).
func isMechanismName(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
