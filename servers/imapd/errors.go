package imapd

import (
	"errors"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

// Texts of login refusals. Clients show them to the user, and the lab's
// diagnoser and trainers read them, so they say what to do.
const (
	textAuthFailed        = "Authentication failed"
	textPasswordExpired   = "Password expired; change it in the web portal"
	textAccountDisabled   = "Account disabled; contact your administrator"
	textTemporarilyLocked = "Account temporarily locked after too many failed logins; try again later"
	textBasicAuthDisabled = "Application-specific password required: basic authentication is disabled, sign in with OAuth2 (XOAUTH2/OAUTHBEARER)"
	textInvalidToken      = "Invalid credentials (Failure)"
	textTemporaryFailure  = "Temporary authentication failure"
	textServerBug         = "Internal server error"
	textOverQuota         = "Quota exceeded (mailbox for user is full)"
)

// AuthError maps the error of an auth.Authenticator to the NO reply of
// LOGIN or AUTHENTICATE, with the response code of RFC 5530 that a client
// (and the lab's diagnoser) can act on. It returns nil for a nil error.
// An error that is not an *auth.Error of a known kind is a failure of the
// lab, not a refusal: it maps to NO [SERVERBUG], and the caller logs it.
func AuthError(err error) *imap.Error {
	if err == nil {
		return nil
	}
	no := func(code imap.ResponseCode, text string) *imap.Error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	var ae *auth.Error
	if !errors.As(err, &ae) {
		return no(imap.ResponseCodeServerBug, textServerBug)
	}
	switch ae.Kind {
	case auth.InvalidCredentials:
		return no(imap.ResponseCodeAuthenticationFailed, textAuthFailed)
	case auth.PasswordExpired:
		return no(imap.ResponseCodeExpired, textPasswordExpired)
	case auth.AccountDisabled:
		return no(imap.ResponseCodeContactAdmin, textAccountDisabled)
	case auth.TemporarilyLocked:
		text := textTemporarilyLocked
		if d := oneLine(ae.Detail); d != "" {
			text += " (" + d + ")"
		}
		return no(imap.ResponseCodeUnavailable, text)
	case auth.BasicAuthDisabled:
		// [ALERT] (RFC 3501 §7.1): the client must show the text to the
		// user, who has to change the account's sign-in method.
		return no(imap.ResponseCodeAlert, textBasicAuthDisabled)
	case auth.InvalidToken:
		return no(imap.ResponseCodeAuthenticationFailed, textInvalidToken)
	case auth.TemporaryFailure:
		return no(imap.ResponseCodeUnavailable, textTemporaryFailure)
	}
	return no(imap.ResponseCodeServerBug, textServerBug)
}

// oneLine makes s safe as resp-text: no CR or LF (RFC 3501 §9, "text").
func oneLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s))
}

// Errors of mailbox operations (RFC 5530 response codes).
var (
	errServerBug = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: textServerBug}
	errReadOnly  = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Mailbox is read-only (selected with EXAMINE)"}
)

// destination says how a missing mailbox is reported: APPEND, COPY and
// MOVE must answer TRYCREATE so that the client can create it and retry
// (RFC 3501 §6.3.11, §6.4.7); every other command answers NONEXISTENT.
type destination bool

const (
	asSource      destination = false
	asDestination destination = true
)

// storeError maps a mailstore error to a NO reply. Errors the client
// cannot cause come back as nil: the caller logs them and answers
// errServerBug.
func storeError(err error, role destination) *imap.Error {
	no := func(code imap.ResponseCode, text string) *imap.Error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	switch {
	case errors.Is(err, mailstore.ErrOverQuota):
		return no(imap.ResponseCodeOverQuota, textOverQuota)
	case errors.Is(err, mailstore.ErrKeywordLimit):
		// RFC 5530 §3 names this very case: "the number of flags on a
		// single message or the number of flags used in a mailbox".
		return no(imap.ResponseCodeLimit, "Too many keywords ("+oneLine(strings.TrimPrefix(err.Error(), mailstore.ErrKeywordLimit.Error()+": "))+")")
	case errors.Is(err, mailstore.ErrNoSuchMailbox) && role == asDestination:
		return no(imap.ResponseCodeTryCreate, "Mailbox does not exist")
	case errors.Is(err, mailstore.ErrNoSuchMailbox):
		return no(imap.ResponseCodeNonExistent, "Mailbox does not exist")
	case errors.Is(err, mailstore.ErrMailboxExists):
		return no(imap.ResponseCodeAlreadyExists, "Mailbox already exists")
	case errors.Is(err, mailstore.ErrInvalidName):
		return no(imap.ResponseCodeCannot, "Invalid mailbox name")
	}
	return nil
}
