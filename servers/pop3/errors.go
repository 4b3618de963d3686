package pop3

import (
	"errors"
	"strings"
)

// ResponseCode is an extended response code sent in brackets after "-ERR"
// (RFC 2449 §8), such as "AUTH" or "SYS/TEMP". Clients that saw the
// RESP-CODES capability act on it; the empty code sends a plain "-ERR".
type ResponseCode string

// The response codes defined for POP3.
const (
	// CodeInUse: authentication succeeded but the maildrop cannot be
	// locked, for example because another session holds it (RFC 2449 §8.1.1).
	CodeInUse ResponseCode = "IN-USE"
	// CodeLoginDelay: the user logged in too recently (RFC 2449 §8.1.2).
	CodeLoginDelay ResponseCode = "LOGIN-DELAY"
	// CodeSysTemp: a temporary server failure; the client may retry later
	// (RFC 3206 §4).
	CodeSysTemp ResponseCode = "SYS/TEMP"
	// CodeSysPerm: a permanent server failure; retrying will not help and
	// the user should contact the administrator (RFC 3206 §4).
	CodeSysPerm ResponseCode = "SYS/PERM"
	// CodeAuth: the failure is caused by the user's credentials, as opposed
	// to a server problem (RFC 3206 §5).
	CodeAuth ResponseCode = "AUTH"
)

// Error is a protocol failure with the exact text of its "-ERR" reply.
//
// A Backend or Session method (and a sasl.Server from AuthSession.Auth) that
// returns an *Error, possibly wrapped, gets "-ERR [Code] Message" on the
// wire. Any other error is logged to Server.ErrorLog and answered with a
// generic "-ERR [SYS/TEMP] ..." that reveals nothing of the cause.
type Error struct {
	// Code is the bracketed response code; empty sends no code.
	Code ResponseCode
	// Message is the human-readable text after the code. Line breaks are
	// replaced by spaces and the line is cut to the 512-octet limit of
	// RFC 2449 §4.
	Message string
}

// Error returns the reply text, for example "pop3: [AUTH] Authentication failed.".
func (e *Error) Error() string {
	return "pop3: " + e.replyText()
}

// replyText is the text after "-ERR ": the bracketed code and the message,
// both made safe for a single protocol line.
func (e *Error) replyText() string {
	msg := sanitizeLine(e.Message)
	code := sanitizeCode(e.Code)
	switch {
	case code != "" && msg != "":
		return "[" + code + "] " + msg
	case code != "":
		return "[" + code + "]"
	default:
		return msg
	}
}

// sanitizeCode keeps the characters RFC 2449 §9 allows in a resp-code
// (printable ASCII except "]"; "/" separates levels), so a bad Code can never
// break the reply line.
func sanitizeCode(c ResponseCode) string {
	var b strings.Builder
	for i := 0; i < len(c); i++ {
		if ch := c[i]; ch > 0x20 && ch < 0x7f && ch != ']' && ch != '[' {
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// ErrAuthFailed is the usual answer to wrong credentials, with Dovecot's
// wording: "-ERR [AUTH] Authentication failed.". Session.Login returns it
// (or another *Error with CodeAuth) when the user name or password is wrong.
var ErrAuthFailed = &Error{Code: CodeAuth, Message: "Authentication failed."}

// ErrServerClosed is returned by Serve and ServeConn after Close or Shutdown.
var ErrServerClosed = errors.New("pop3: server closed")

// ErrLineTooLong is returned by ServeConn when the client sent a command line
// longer than Server.MaxLineLength (or an AUTH continuation line longer than
// Server.MaxAuthLineLength); the server answered "-ERR" and closed the
// connection.
var ErrLineTooLong = errors.New("pop3: command line too long")

// ErrTooManyBadCommands is returned by ServeConn when the client sent
// Server.MaxBadCommands invalid commands in a row and the server closed the
// connection.
var ErrTooManyBadCommands = errors.New("pop3: too many bad commands")

// errQuit ends a connection after a QUIT reply; it never leaves the package.
var errQuit = errors.New("pop3: quit")

var _ error = (*Error)(nil)
