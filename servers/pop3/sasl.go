package pop3

import (
	"encoding/base64"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"
)

// backendError marks an error of Session.Login seen through a SASL
// mechanism, so that it is answered like a failed Login (SYS/TEMP, logged)
// rather than like a failed exchange (AUTH).
type backendError struct{ err error }

func (e *backendError) Error() string { return e.err.Error() }
func (e *backendError) Unwrap() error { return e.err }

// PlainServer returns the server side of SASL PLAIN (RFC 4616) that checks
// credentials with s.Login: the mechanism the server offers by itself. An
// AuthSession that lists "PLAIN" among other mechanisms can return it from
// Auth. A non-empty authorization identity must equal the user name.
func PlainServer(s Session) sasl.Server {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return &Error{Code: CodeAuth, Message: "Authorization identity must match the user name."}
		}
		err := s.Login(username, password)
		var pe *Error
		if err == nil || errors.As(err, &pe) {
			return err
		}
		return &backendError{err}
	})
}

// saslMechanisms lists the mechanisms offered now: none while the plaintext
// authentication policy forbids logging in, the AuthSession's list if the
// session has one, else PLAIN.
func (c *Conn) saslMechanisms() []string {
	if !c.authAllowed() {
		return nil
	}
	as, ok := c.Session().(AuthSession)
	if !ok {
		return []string{sasl.Plain}
	}
	var mechs []string
	for _, m := range as.AuthMechanisms() {
		m = strings.ToUpper(m)
		if !validMechanism(m) {
			c.server.logf("AuthMechanisms for %v: invalid SASL mechanism name %q skipped (RFC 4422 §3.1)", c.RemoteAddr(), m)
			continue
		}
		if !slices.Contains(mechs, m) {
			mechs = append(mechs, m)
		}
	}
	return mechs
}

// saslServer returns the server side of mech, one of saslMechanisms.
func (c *Conn) saslServer(mech string) (sasl.Server, error) {
	sess := c.Session()
	if as, ok := sess.(AuthSession); ok {
		srv, err := as.Auth(mech)
		if err == nil && srv == nil {
			err = fmt.Errorf("AuthSession.Auth(%q) returned no sasl.Server", mech)
		}
		return srv, err
	}
	return PlainServer(sess), nil
}

// handleAuth runs a SASL exchange (RFC 5034 §4).
func (c *Conn) handleAuth(cmd command) error {
	if !c.authAllowed() {
		c.status(false, insecureAuthText)
		return nil
	}
	mechs := c.saslMechanisms()
	if len(cmd.args) == 0 {
		// Not in RFC 5034, but widely used (Outlook): a bare AUTH lists
		// the mechanisms as a multi-line response.
		c.multiline("", mechs, "<mechanisms: "+strings.Join(mechs, ", ")+">")
		return nil
	}
	if !c.wantArgs(cmd, 1, 2) {
		return nil
	}
	c.user, c.haveUser = "", false
	mech := strings.ToUpper(cmd.args[0])
	if !slices.Contains(mechs, mech) {
		c.status(false, "Unsupported authentication mechanism.")
		return nil
	}
	var response []byte // nil: no initial response
	if len(cmd.args) == 2 {
		ir := cmd.args[1]
		if ir == "=" {
			response = []byte{} // RFC 5034 §4: "=" is an empty initial response
		} else {
			var err error
			if response, err = decodeSASL(ir); err != nil {
				c.status(false, "Invalid base64 data in initial response.")
				return nil
			}
		}
	}
	srv, err := c.saslServer(mech)
	if err != nil {
		c.replyError("auth "+mech, err)
		return nil
	}
	for {
		challenge, done, err := c.saslNext(srv, response)
		if err != nil {
			c.replyAuthError(mech, err)
			return nil
		}
		if done {
			break
		}
		// RFC 5034 §4: "+", a space and the Base64 challenge (empty for an
		// empty challenge).
		line := "+ " + base64.StdEncoding.EncodeToString(challenge)
		c.writeLine(line)
		c.trace(false, line)
		if err := c.bw.Flush(); err != nil {
			return fmt.Errorf("write reply: %w", err)
		}
		raw, err := c.readLine(c.server.maxAuthLineLength())
		if err != nil {
			return c.readFailed(err)
		}
		if c.saslLeft > 0 {
			c.saslLeft--
		}
		if string(raw) == "*" {
			c.saslLeft = 0
			c.trace(true, "*")
			c.status(false, "Authentication cancelled.") // RFC 5034 §4: "*" MUST get -ERR
			return nil
		}
		c.trace(true, "****")
		if response, err = decodeSASL(string(raw)); err != nil {
			c.status(false, "Invalid base64 data.")
			return nil
		}
	}
	c.openMaildrop()
	return nil
}

// saslNext calls srv.Next and turns a panic of the mechanism into an error:
// a broken mechanism fails the exchange, not the connection.
func (c *Conn) saslNext(srv sasl.Server, response []byte) (challenge []byte, done bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.server.logf("panic in SASL mechanism for %v: %v\n%s", c.RemoteAddr(), r, debug.Stack())
			challenge, done, err = nil, false, &backendError{fmt.Errorf("panic: %v", r)}
		}
	}()
	return srv.Next(response)
}

// replyAuthError answers a failed SASL exchange: an *Error as it says, a
// backend failure as an internal error, and anything else (a malformed
// response, a mechanism's own rejection) as "[AUTH] Authentication failed.".
func (c *Conn) replyAuthError(mech string, err error) {
	var pe *Error
	var be *backendError
	switch {
	case errors.As(err, &pe):
		c.status(false, pe.replyText())
	case errors.As(err, &be):
		c.replyError("auth "+mech, be.err)
	default:
		c.status(false, ErrAuthFailed.replyText())
	}
}

var _ error = (*backendError)(nil)

// traceCommand returns a command line as Trace may see it. A client may
// send its SASL responses right behind its AUTH command, in the same write
// (the bytes are on the wire before the server's "+", RFC 5034 §4); if the
// server refuses the AUTH without reading them (unknown mechanism, bad
// initial response, wrong state), they arrive here as commands. So the
// responses the mechanism needs are counted on the client's stream alone
// and masked, whatever the server answered. A response is Base64, which
// has no space (RFC 4648 §4): a line with one is a command.
func (c *Conn) traceCommand(line string) string {
	if c.saslLeft > 0 && !strings.ContainsAny(line, " \t") {
		c.saslLeft--
		if line == "*" {
			c.saslLeft = 0
			return line
		}
		return "****"
	}
	c.saslLeft = saslResponsesOwed(line)
	return maskCommand(line)
}

// saslResponsesOwed is how many SASL responses follow a command line of
// the form "AUTH mechanism [initial-response]" (RFC 5034 §4): PLAIN (RFC
// 4616) and most mechanisms send one message, LOGIN (draft-murchison-
// sasl-login) two, SCRAM (RFC 5802) and DIGEST-MD5 (RFC 2831) two; the
// initial response is one of them. Any other line owes none.
func saslResponsesOwed(line string) int {
	fields := strings.Fields(line)
	if len(fields) < 2 || len(fields) > 3 || !strings.EqualFold(fields[0], "AUTH") {
		return 0
	}
	n := 1
	switch m := strings.ToUpper(fields[1]); {
	case m == "LOGIN", m == "DIGEST-MD5", strings.HasPrefix(m, "SCRAM-"):
		n = 2
	}
	return n - (len(fields) - 2)
}
