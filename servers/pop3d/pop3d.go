// Package pop3d is the lab's POP3 service: the generic server of package
// pop3 with a backend over the lab's mailstore and shared authenticator.
// POP3 sees the INBOX that SMTP delivers to and IMAP reads; a DELE+QUIT
// removes the message for IMAP too.
package pop3d

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
	"github.com/maillab/maillab/servers/pop3"
)

// Config configures New.
type Config struct {
	Hostname          string
	Service           string // "pop3" or "pop3s", for auth requests
	Store             *mailstore.Store
	Auth              auth.Authenticator
	TLSConfig         *tls.Config // enables STLS; nil: not offered
	AllowInsecureAuth bool
	// Mechanisms offered by AUTH besides the built-in PLAIN, e.g. XOAUTH2.
	Mechanisms []string
	// ReadTimeout is the autologout timer (pop3.Server.ReadTimeout); zero
	// means pop3.DefaultReadTimeout.
	ReadTimeout time.Duration
	Logger      *slog.Logger
	// Trace receives every protocol line (credentials already masked).
	Trace func(c *pop3.Conn, fromClient bool, line string)
}

// New returns a POP3 server for the lab.
func New(cfg Config) *pop3.Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &backend{cfg: cfg, locks: map[*mailstore.User]bool{}}
	return &pop3.Server{
		Backend:           b,
		Hostname:          cfg.Hostname,
		TLSConfig:         cfg.TLSConfig,
		AllowInsecureAuth: cfg.AllowInsecureAuth,
		Greeting:          "Dovecot ready.",
		Implementation:    "maillab",
		ReadTimeout:       cfg.ReadTimeout,
		ErrorLog:          logAdapter{cfg.Logger},
		Trace:             cfg.Trace,
	}
}

type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Printf(format string, v ...interface{}) {
	a.l.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (a logAdapter) Println(v ...interface{}) {
	a.l.Debug(strings.TrimSpace(fmt.Sprintln(v...)))
}

type backend struct {
	cfg   Config
	mu    sync.Mutex
	locks map[*mailstore.User]bool // RFC 1939 §8: one session per maildrop
}

func (b *backend) NewSession(c *pop3.Conn) (pop3.Session, error) {
	return &session{b: b, c: c}, nil
}

type session struct {
	b      *backend
	c      *pop3.Conn
	user   *mailstore.User
	locked bool
	uids   map[string]uint32
}

var (
	_ pop3.Session     = (*session)(nil)
	_ pop3.AuthSession = (*session)(nil)
)

func (s *session) authenticate(mech, username, secret string) error {
	_, isTLS := s.c.TLSConnectionState()
	u, err := s.b.cfg.Auth.Authenticate(context.Background(), &auth.Request{
		Protocol:  "pop3",
		Service:   s.b.cfg.Service,
		Mechanism: mech,
		Username:  username,
		Password:  secret,
		TLS:       isTLS,
		Remote:    s.c.RemoteAddr(),
	})
	if err != nil {
		return s.b.reply(err)
	}
	s.user = u
	return nil
}

// Login implements pop3.Session (USER/PASS and AUTH PLAIN).
func (s *session) Login(username, password string) error {
	return s.authenticate("USER", username, password)
}

// AuthMechanisms implements pop3.AuthSession.
func (s *session) AuthMechanisms() []string {
	return append([]string{auth.MechPlain}, s.b.cfg.Mechanisms...)
}

// Auth implements pop3.AuthSession.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech == auth.MechPlain {
		return pop3.PlainServer(s), nil
	}
	if !slices.Contains(s.b.cfg.Mechanisms, mech) {
		return nil, &pop3.Error{Code: pop3.CodeAuth, Message: "Unsupported authentication mechanism."}
	}
	srv := auth.NewSASLServer(mech, func(username, secret string) error {
		return s.authenticate(mech, username, secret)
	})
	if srv == nil {
		return nil, &pop3.Error{Code: pop3.CodeAuth, Message: "Unsupported authentication mechanism."}
	}
	return srv, nil
}

// Reply maps a refused login to a POP3 reply (RFC 2449 §8, RFC 3206).
func Reply(err error) *pop3.Error {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		return &pop3.Error{Code: pop3.CodeSysTemp, Message: "Temporary authentication failure."}
	}
	msg := func(s string) string {
		if ae.Detail != "" {
			return s + " (" + ae.Detail + ")"
		}
		return s
	}
	switch ae.Kind {
	case auth.InvalidCredentials, auth.InvalidToken:
		return &pop3.Error{Code: pop3.CodeAuth, Message: msg("Authentication failed.")}
	case auth.PasswordExpired:
		return &pop3.Error{Code: pop3.CodeAuth, Message: msg("Password expired, change it in the web portal.")}
	case auth.AccountDisabled:
		return &pop3.Error{Code: pop3.CodeSysPerm, Message: msg("Account disabled, contact your administrator.")}
	case auth.TemporarilyLocked:
		return &pop3.Error{Code: pop3.CodeAuth, Message: msg("Account temporarily locked after too many failed logins, try again later.")}
	case auth.BasicAuthDisabled:
		return &pop3.Error{Code: pop3.CodeAuth, Message: msg("Application-specific password required: basic authentication is disabled, sign in with OAuth2.")}
	}
	return &pop3.Error{Code: pop3.CodeSysTemp, Message: msg("Temporary authentication failure.")}
}

func (b *backend) reply(err error) error {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		b.cfg.Logger.Error("pop3 authentication error", "err", err)
	}
	return Reply(err)
}

// Maildrop implements pop3.Session: lock the maildrop and list INBOX.
func (s *session) Maildrop() ([]pop3.Message, error) {
	s.b.mu.Lock()
	if s.b.locks[s.user] {
		s.b.mu.Unlock()
		return nil, &pop3.Error{Code: pop3.CodeInUse, Message: "Mailbox is locked by another POP3 session."}
	}
	s.b.locks[s.user] = true
	s.locked = true
	s.b.mu.Unlock()
	mb, err := s.user.Mailbox(mailstore.Inbox)
	if err != nil {
		return nil, err
	}
	s.uids = map[string]uint32{}
	var out []pop3.Message
	validity := mb.UIDValidity()
	for _, m := range mb.Messages() {
		// RFC 1939 §7: unique and stable; UIDVALIDITY makes a rebuilt
		// mailbox's ids differ from the old ones.
		uid := strconv.FormatUint(uint64(validity), 10) + "." + strconv.FormatUint(uint64(m.UID), 10)
		s.uids[uid] = m.UID
		out = append(out, pop3.Message{UID: uid, Size: crlfSize(m.Data)})
	}
	return out, nil
}

// crlfSize is the size of data as sent, with every line ending CRLF.
func crlfSize(data []byte) int64 {
	n := int64(len(data))
	for i, c := range data {
		if c == '\n' && (i == 0 || data[i-1] != '\r') {
			n++
		}
	}
	return n
}

// Retrieve implements pop3.Session.
func (s *session) Retrieve(uid string) (io.ReadCloser, error) {
	id, ok := s.uids[uid]
	if !ok {
		return nil, &pop3.Error{Message: "No such message."}
	}
	mb, err := s.user.Mailbox(mailstore.Inbox)
	if err != nil {
		return nil, err
	}
	m, err := mb.Message(id)
	if errors.Is(err, mailstore.ErrNoSuchMessage) {
		return nil, &pop3.Error{Message: "Message was deleted by another session."}
	}
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(m.Data)), nil
}

// Update implements pop3.Session: RFC 1939 §6 UPDATE state.
func (s *session) Update(deleted []string) error {
	if len(deleted) == 0 {
		return nil
	}
	mb, err := s.user.Mailbox(mailstore.Inbox)
	if err != nil {
		return err
	}
	uids := make([]uint32, 0, len(deleted))
	for _, d := range deleted {
		if id, ok := s.uids[d]; ok {
			uids = append(uids, id)
		}
	}
	_, err = mb.Expunge(uids)
	return err
}

// Logout implements pop3.Session.
func (s *session) Logout() error {
	if s.locked {
		s.b.mu.Lock()
		delete(s.b.locks, s.user)
		s.b.mu.Unlock()
	}
	return nil
}
