package pop3

import (
	"io"

	"github.com/emersion/go-sasl"
)

// Backend creates a Session for every connection.
type Backend interface {
	// NewSession is called once per connection, after the TLS handshake of
	// an implicit-TLS connection and before the greeting. An error refuses
	// the connection: the greeting becomes "-ERR ..." (an *Error chooses the
	// exact text, e.g. CodeSysTemp "Too many connections") and the
	// connection is closed without calling Logout.
	NewSession(c *Conn) (Session, error)
}

// BackendFunc adapts an ordinary function to the Backend interface.
type BackendFunc func(c *Conn) (Session, error)

// NewSession calls f(c).
func (f BackendFunc) NewSession(c *Conn) (Session, error) {
	return f(c)
}

// Message describes one message of the maildrop snapshot taken at login.
type Message struct {
	// UID is the unique-id listing of the message (RFC 1939 §7 UIDL): 1 to
	// 70 octets in the range 0x21-0x7E, unique in the maildrop and stable
	// across sessions.
	UID string
	// Size is the exact size in octets of the message as it is sent: with
	// CRLF line endings and before dot-stuffing (RFC 1939 §5 LIST, §11).
	Size int64
}

// Session is one client's view of one maildrop. The server calls its
// methods from the connection's goroutine only, never concurrently.
//
// Returning an *Error (see Error) from any method chooses the exact "-ERR"
// reply; any other error is logged and answered "-ERR [SYS/TEMP] ...".
type Session interface {
	// Login checks the credentials of USER/PASS (RFC 1939 §7) and of the
	// built-in SASL PLAIN mechanism (RFC 4616). It is called in the
	// AUTHORIZATION state only, and only where the server's plaintext
	// authentication policy allows it. Wrong credentials should return
	// ErrAuthFailed or another *Error with CodeAuth (RFC 3206 §5), e.g.
	// &Error{Code: CodeAuth, Message: "Password expired."}. A failed Login
	// leaves the session in the AUTHORIZATION state; the client may try
	// again.
	Login(username, password string) error

	// Maildrop returns the snapshot of the maildrop that message numbers
	// refer to for the rest of the session (RFC 1939 §5). It is called once
	// after every successful authentication (Login or AUTH), before the
	// server answers "+OK". An error keeps the session in the
	// AUTHORIZATION state; return &Error{Code: CodeInUse} when the maildrop
	// is locked by another session (RFC 2449 §8.1.1).
	Maildrop() ([]Message, error)

	// Retrieve opens the contents of the message with the given UID for
	// RETR and TOP, in RFC 5322 form; LF or CRLF line endings are both
	// accepted and sent as CRLF, dot-stuffed. The server closes the reader
	// when done; for TOP it stops reading early. A read error in the middle
	// of a transfer closes the connection, because a multi-line response
	// cannot be taken back.
	Retrieve(uid string) (io.ReadCloser, error)

	// Update removes the messages marked with DELE. It is called when the
	// client sends QUIT in the TRANSACTION state (the UPDATE state of
	// RFC 1939 §6), exactly once, with the UIDs in message-number order;
	// deleted may be empty, so that a backend can release its lock. A
	// connection that ends any other way (dropped, timed out, closed by the
	// server) never calls Update and deletes nothing.
	Update(deleted []string) error

	// Logout releases the session. It is called exactly once when the
	// connection ends, however it ends, after Update if Update was called.
	Logout() error
}

// AuthSession is an optional interface for a Session that offers its own
// SASL mechanisms (RFC 5034), such as XOAUTH2 or OAUTHBEARER.
//
// Without it the server offers PLAIN only, routed to Session.Login. With it,
// AuthMechanisms is the whole list: include "PLAIN" and return
// PlainServer(session) from Auth to keep the built-in behaviour.
type AuthSession interface {
	Session

	// AuthMechanisms lists the SASL mechanism names (RFC 4422 §3.1:
	// 1 to 20 characters of A-Z, 0-9, "-" and "_") offered in CAPA and
	// accepted by AUTH. Invalid names are skipped and logged.
	AuthMechanisms() []string

	// Auth returns the server side of one exchange of the mechanism, which
	// is one of AuthMechanisms (upper case). When the returned sasl.Server
	// reports done without error, the session counts as logged in and
	// Maildrop is called. An *Error from Next chooses the reply; any other
	// error from Next is answered "-ERR [AUTH] Authentication failed.".
	Auth(mech string) (sasl.Server, error)
}

var _ Backend = BackendFunc(nil)
