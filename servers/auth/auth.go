// Package auth decides logins for every protocol of the lab. SMTP, IMAP and
// POP3 all ask the same Authenticator, so an authentication policy (a
// lockout counter, an expired password, "OAuth only") holds across
// protocols the way it does at a real provider. Each server maps the kinds
// of *Error to its own wire reply.
package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/maillab/maillab/servers/mailstore"
)

// Request is one login attempt.
type Request struct {
	// Protocol is "smtp", "imap" or "pop3".
	Protocol string
	// Service is the lab service name, e.g. "submission" or "imaps".
	Service string
	// Mechanism is the SASL mechanism ("PLAIN", "LOGIN", "XOAUTH2",
	// "OAUTHBEARER") or "USER" (POP3 USER/PASS) or "LOGIN" (IMAP LOGIN).
	Mechanism string
	// Username and Password as the client sent them. For OAuth mechanisms
	// Password holds the bearer token.
	Username string
	Password string
	// TLS reports whether the connection is encrypted.
	TLS bool
	// Remote is the client's address.
	Remote net.Addr
}

// IsOAuth reports whether the request uses a token mechanism.
func (r *Request) IsOAuth() bool {
	return r.Mechanism == "XOAUTH2" || r.Mechanism == "OAUTHBEARER"
}

// Kind classifies a refused login.
type Kind int

// Kinds of refusal. Servers map them to protocol replies.
const (
	// InvalidCredentials: unknown user or wrong password.
	InvalidCredentials Kind = iota + 1
	// PasswordExpired: the password is right but must be changed.
	PasswordExpired
	// AccountDisabled: an administrator locked the account.
	AccountDisabled
	// TemporarilyLocked: too many failed logins; retry after a while.
	TemporarilyLocked
	// BasicAuthDisabled: passwords are not accepted; OAuth2 or an app
	// password is required.
	BasicAuthDisabled
	// InvalidToken: an OAuth bearer token was refused.
	InvalidToken
	// TemporaryFailure: the authentication service is unavailable.
	TemporaryFailure
)

var kindNames = map[Kind]string{
	InvalidCredentials: "invalid credentials",
	PasswordExpired:    "password expired",
	AccountDisabled:    "account disabled",
	TemporarilyLocked:  "account temporarily locked",
	BasicAuthDisabled:  "basic authentication disabled",
	InvalidToken:       "invalid token",
	TemporaryFailure:   "temporary failure",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a refused login. Detail is extra text for the reply (e.g. "try
// again in 15 minutes"); servers add their own standard wording.
type Error struct {
	Kind   Kind
	Detail string
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return e.Kind.String() + ": " + e.Detail
	}
	return e.Kind.String()
}

// Is makes errors.Is(err, &Error{Kind: k}) match on kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind
}

// KindOf returns the kind of a refusal, or 0 if err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// Authenticator decides a login. It returns the account on success and an
// *Error for a refusal; any other error is a failure of the lab itself.
type Authenticator interface {
	Authenticate(ctx context.Context, req *Request) (*mailstore.User, error)
}

// Func adapts a function to Authenticator.
type Func func(ctx context.Context, req *Request) (*mailstore.User, error)

// Authenticate calls f.
func (f Func) Authenticate(ctx context.Context, req *Request) (*mailstore.User, error) {
	return f(ctx, req)
}

// Middleware wraps an Authenticator with a policy; faults are middleware.
type Middleware func(next Authenticator) Authenticator

// Chain applies middleware so that the first one listed sees a request
// first.
func Chain(base Authenticator, mws ...Middleware) Authenticator {
	for i := len(mws) - 1; i >= 0; i-- {
		base = mws[i](base)
	}
	return base
}

// Store authenticates against the accounts of a mailstore: user names
// compare case-insensitively, passwords exactly, OAuth tokens against
// Tokens (a bearer token per user name, keyed in lower case; nil accepts
// none).
type Store struct {
	Store  *mailstore.Store
	Tokens map[string]string
}

var _ Authenticator = (*Store)(nil)

// Authenticate implements Authenticator.
func (s *Store) Authenticate(_ context.Context, req *Request) (*mailstore.User, error) {
	u, err := s.Store.User(req.Username)
	if errors.Is(err, mailstore.ErrNoSuchUser) {
		if req.IsOAuth() {
			return nil, &Error{Kind: InvalidToken}
		}
		return nil, &Error{Kind: InvalidCredentials}
	}
	if err != nil {
		return nil, err
	}
	if req.IsOAuth() {
		want, ok := s.Tokens[strings.ToLower(u.Username)]
		if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(req.Password)) != 1 {
			return nil, &Error{Kind: InvalidToken}
		}
		return u, nil
	}
	if subtle.ConstantTimeCompare([]byte(u.Password), []byte(req.Password)) != 1 {
		return nil, &Error{Kind: InvalidCredentials}
	}
	return u, nil
}
