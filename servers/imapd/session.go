package imapd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

// delim is the hierarchy delimiter of mailbox names (RFC 3501 §5.1.1); the
// mailstore uses the same.
const delim = '/'

// session is one IMAP session over the mailstore. go-imap calls it from
// the connection's goroutine, one command at a time, except Idle, which
// runs in a goroutine of its own that go-imap does not always wait for
// (when reading DONE fails, or the client sends something else): every
// other method therefore waits for a running Idle first (settle).
type session struct {
	c     *conn
	guard *guardConn       // what this session's go-imap reads
	ln    *oneConnListener // hands guard to go-imap
	log   *slog.Logger
	user  *mailstore.User // nil until login; set in the command goroutine

	mu       sync.Mutex
	sel      *view         // the selected mailbox, nil if none
	idleDone chan struct{} // closed when the running Idle returns; nil if none
	closed   bool
}

// settle waits until an Idle goroutine has returned.
func (s *session) settle() {
	s.mu.Lock()
	done := s.idleDone
	s.mu.Unlock()
	if done != nil {
		<-done
	}
}

// selected returns the selected mailbox, once no Idle runs.
func (s *session) selected() *view {
	s.settle()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sel
}

// setSelected replaces the selected mailbox and returns the previous one.
func (s *session) setSelected(v *view) *view {
	s.settle()
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.sel
	s.sel = v
	return old
}

// Close implements imapserver.Session. go-imap calls it last, when the
// connection ends.
func (s *session) Close() error {
	s.settle()
	s.mu.Lock()
	s.closed = true
	sel := s.sel
	s.sel = nil
	s.mu.Unlock()
	if sel != nil {
		sel.close()
	}
	s.c.sessionEnded(s)
	return nil
}

// --- Not authenticated state -------------------------------------------

// Login implements imapserver.Session for LOGIN (RFC 3501 §6.2.3).
// go-imap has already refused it with PRIVACYREQUIRED on a plaintext
// connection unless Config.AllowInsecureAuth is set.
func (s *session) Login(username, password string) error {
	return s.authenticate("LOGIN", username, password)
}

// AuthenticateMechanisms implements imapserver.SessionSASL: the AUTH=
// capabilities (RFC 3501 §6.2.2).
func (s *session) AuthenticateMechanisms() []string {
	return slices.Clone(s.c.srv.mechs)
}

// Authenticate implements imapserver.SessionSASL.
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	mech = strings.ToUpper(mech)
	if !slices.Contains(s.c.srv.mechs, mech) {
		// RFC 3501 §6.2.2: "NO - authenticate failure: unsupported
		// authentication mechanism".
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Unsupported authentication mechanism " + mech}
	}
	reached := false
	inner := auth.NewSASLServer(mech, func(username, secret string) error {
		reached = true
		// A refusal keeps its *auth.Error reachable through Unwrap, so
		// the OAuth mechanisms still send their JSON error challenge for
		// InvalidToken first (RFC 7628 §3.2.2).
		return s.authenticate(mech, username, secret)
	})
	return &saslServer{inner: inner, mapErr: func(err error) error {
		if reached {
			return err // the answer of authenticate
		}
		if auth.KindOf(err) != 0 {
			// Refused by the mechanism itself, e.g. a PLAIN
			// authorization identity that is not the user (RFC 4616 §2).
			s.log.Info("login refused by the mechanism", "mechanism", mech, "err", err)
			return &loginError{reply: AuthError(err), cause: err}
		}
		// The client's message broke the mechanism's syntax: "BAD -
		// arguments invalid, authentication exchange cancelled".
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug,
			Text: "Malformed " + mech + " authentication data"}
	}}, nil
}

// authenticate asks the Authenticator and turns a refusal into the NO
// reply of AuthError.
func (s *session) authenticate(mech, username, password string) error {
	nc := s.c.imapConnNetConn()
	isTLS := false
	if tc, ok := nc.(*tls.Conn); ok {
		isTLS = tc.ConnectionState().HandshakeComplete
	}
	req := &auth.Request{
		Protocol:  "imap",
		Service:   s.c.srv.cfg.Service,
		Mechanism: mech,
		Username:  username,
		Password:  password,
		TLS:       isTLS,
		Remote:    nc.RemoteAddr(),
	}
	u, err := s.c.srv.cfg.Auth.Authenticate(s.c.ctx, req)
	if err != nil {
		reply := AuthError(err)
		switch {
		case s.c.ctx.Err() != nil:
			// The server is closing the connection; the reply will not
			// be read.
			s.log.Debug("login abandoned: connection closing", "user", username, "err", err)
		case reply.Code == imap.ResponseCodeServerBug:
			s.log.Error("authenticator failed", "user", username, "mechanism", mech, "err", err)
		default:
			s.log.Info("login refused", "user", username, "mechanism", mech, "tls", isTLS, "kind", auth.KindOf(err).String())
		}
		return &loginError{reply: reply, cause: err}
	}
	if u == nil {
		s.log.Error("authenticator returned no account and no error", "user", username)
		return errServerBug
	}
	s.user = u
	s.c.loggedIn.Store(true)
	s.log = s.log.With("user", u.Username)
	s.log.Info("logged in", "mechanism", mech, "tls", isTLS)
	return nil
}

// imapConnNetConn returns the connection as go-imap has it now: a
// *tls.Conn after STARTTLS or on implicit TLS (below the command guard).
func (c *conn) imapConnNetConn() net.Conn {
	c.mu.Lock()
	ic := c.imapConn
	c.mu.Unlock()
	if ic == nil {
		return c.nc
	}
	nc := ic.NetConn()
	if g, ok := nc.(*guardConn); ok {
		return g.Conn // the *tls.Conn of implicit TLS or STARTTLS, below the guard
	}
	return nc
}

// loginError is a refused login: go-imap finds the NO reply through
// errors.As (*imap.Error); the mechanism finds the auth refusal through
// Unwrap.
type loginError struct {
	reply *imap.Error
	cause error
}

func (e *loginError) Error() string { return fmt.Sprintf("login refused: %v", e.cause) }
func (e *loginError) Unwrap() error { return e.cause }

// As lets errors.As(err, **imap.Error) find the reply.
func (e *loginError) As(target any) bool {
	if p, ok := target.(**imap.Error); ok {
		*p = e.reply
		return true
	}
	return false
}

// saslServer maps the errors of an auth mechanism to IMAP replies.
type saslServer struct {
	inner  sasl.Server
	mapErr func(error) error
}

func (s *saslServer) Next(response []byte) ([]byte, bool, error) {
	challenge, done, err := s.inner.Next(response)
	if err != nil {
		err = s.mapErr(err)
	}
	if len(challenge) == 0 {
		// An empty challenge is "+ " (RFC 3501 §6.2.2: the base64 of
		// nothing). go-imap would write "+ =", the notation RFC 4959 §3
		// keeps for an empty initial response from the client.
		challenge = nil
	}
	return challenge, done, err
}

// --- Authenticated state: mailboxes ------------------------------------

// canonicalName spells every form of INBOX, and of names below it, as
// "INBOX" (RFC 3501 §5.1: INBOX is case-insensitive), and drops a trailing
// delimiter (RFC 3501 §6.3.3: a declaration the server may ignore).
func canonicalName(name string) string {
	name = strings.TrimSuffix(name, string(delim))
	if len(name) >= 5 && strings.EqualFold(name[:5], mailstore.Inbox) &&
		(len(name) == 5 || name[5] == delim) {
		name = mailstore.Inbox + name[5:]
	}
	return name
}

// fail logs an unexpected error and returns the reply to send: the RFC
// 5530 code when the store error is one the client caused.
func (s *session) fail(op string, err error, role destination) error {
	if reply := storeError(err, role); reply != nil {
		return reply
	}
	s.log.Error(op+" failed", "err", err)
	return errServerBug
}

func (s *session) mailbox(name string, role destination) (*mailstore.Mailbox, error) {
	mb, err := s.user.Mailbox(canonicalName(name))
	if err != nil {
		return nil, s.fail("open mailbox", err, role)
	}
	return mb, nil
}

// Create implements imapserver.Session (RFC 3501 §6.3.3). Missing
// superior names are created too, as the RFC recommends.
func (s *session) Create(name string, _ *imap.CreateOptions) error {
	name = canonicalName(name)
	if name == mailstore.Inbox {
		return storeError(mailstore.ErrMailboxExists, asSource)
	}
	if _, err := s.user.Mailbox(name); err == nil {
		return storeError(mailstore.ErrMailboxExists, asSource)
	}
	if err := s.user.CreateMailbox(name); err != nil {
		return s.fail("create", err, asSource)
	}
	s.createSuperiors(name)
	return nil
}

// createSuperiors creates the missing levels above a valid name.
func (s *session) createSuperiors(name string) {
	for i, r := range name {
		if r != delim || i == 0 {
			continue
		}
		err := s.user.CreateMailbox(name[:i])
		if err != nil && !errors.Is(err, mailstore.ErrMailboxExists) {
			s.log.Error("create superior mailbox", "name", name[:i], "err", err)
		}
	}
}

// Delete implements imapserver.Session (RFC 3501 §6.3.4). Mailboxes below
// the deleted one stay; LIST then shows the deleted name as \Noselect.
func (s *session) Delete(name string) error {
	name = canonicalName(name)
	if name == mailstore.Inbox {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "INBOX cannot be deleted"}
	}
	err := s.user.DeleteMailbox(name)
	if errors.Is(err, mailstore.ErrNoSuchMailbox) && hasChildren(s.user.Mailboxes(), name) {
		// RFC 3501 §6.3.4: deleting a \Noselect name with inferiors is
		// an error.
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeHasChildren,
			Text: "Mailbox has inferior mailboxes and holds no messages of its own"}
	}
	if err != nil {
		return s.fail("delete", err, asSource)
	}
	return nil
}

// Rename implements imapserver.Session (RFC 3501 §6.3.5): inferior names
// move along, superior names of the new name are created, and renaming
// INBOX moves its messages and leaves it empty.
func (s *session) Rename(from, to string, _ *imap.RenameOptions) error {
	from, to = canonicalName(from), canonicalName(to)
	if _, err := s.user.Mailbox(from); err != nil {
		return s.fail("rename", err, asSource)
	}
	if to == mailstore.Inbox {
		return storeError(mailstore.ErrMailboxExists, asSource)
	}
	if _, err := s.user.Mailbox(to); err == nil {
		return storeError(mailstore.ErrMailboxExists, asSource)
	}
	if strings.HasPrefix(to, from+string(delim)) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
			Text: "Cannot move a mailbox below itself"}
	}
	var children []string
	if from != mailstore.Inbox { // inferiors of INBOX stay (RFC 3501 §6.3.5)
		for _, name := range s.user.Mailboxes() {
			if strings.HasPrefix(name, from+string(delim)) {
				children = append(children, name)
			}
		}
	}
	if err := s.user.RenameMailbox(from, to); err != nil {
		return s.fail("rename", err, asSource)
	}
	s.createSuperiors(to)
	for _, child := range children {
		if err := s.user.RenameMailbox(child, to+strings.TrimPrefix(child, from)); err != nil {
			return s.fail("rename", err, asSource)
		}
	}
	return nil
}

// Subscribe implements imapserver.Session (RFC 3501 §6.3.6); the server
// may, and does, check that the mailbox exists.
func (s *session) Subscribe(name string) error {
	name = canonicalName(name)
	if _, err := s.user.Mailbox(name); err != nil {
		return s.fail("subscribe", err, asSource)
	}
	s.user.SetSubscribed(name, true)
	return nil
}

// Unsubscribe implements imapserver.Session (RFC 3501 §6.3.7).
func (s *session) Unsubscribe(name string) error {
	name = canonicalName(name)
	if !s.user.Subscribed(name) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "Mailbox is not subscribed"}
	}
	s.user.SetSubscribed(name, false)
	return nil
}

// Status implements imapserver.Session (RFC 3501 §6.3.10, RFC 8438 SIZE).
// Every item go-imap parses is answered: it writes the pointers without a
// nil check.
func (s *session) Status(name string, opts *imap.StatusOptions) (*imap.StatusData, error) {
	name = canonicalName(name)
	mb, err := s.mailbox(name, asSource)
	if err != nil {
		return nil, err
	}
	return statusData(name, mb, opts), nil
}

func statusData(name string, mb *mailstore.Mailbox, opts *imap.StatusOptions) *imap.StatusData {
	st := mb.Status()
	data := &imap.StatusData{Mailbox: name, UIDNext: imap.UID(st.UIDNext), UIDValidity: st.UIDValidity}
	if opts.NumMessages {
		data.NumMessages = &st.Messages
	}
	if opts.NumUnseen {
		data.NumUnseen = &st.Unseen
	}
	if opts.NumDeleted {
		data.NumDeleted = &st.Deleted
	}
	if opts.Size {
		data.Size = &st.Size
	}
	if opts.NumRecent {
		// The lab keeps no \Recent state (dropped by IMAP4rev2).
		var zero uint32
		data.NumRecent = &zero
	}
	if opts.DeletedStorage {
		var n int64
		for _, m := range mb.Messages() {
			if slices.Contains(m.Flags, mailstore.FlagDeleted) {
				n += m.Size()
			}
		}
		data.DeletedStorage = &n
	}
	return data
}

// Append implements imapserver.Session (RFC 3501 §6.3.11).
func (s *session) Append(name string, r imap.LiteralReader, opts *imap.AppendOptions) (*imap.AppendData, error) {
	mb, err := s.mailbox(name, asDestination)
	if err != nil {
		return nil, err
	}
	if s.user.OverQuota(r.Size()) {
		// Refuse before buffering the literal; go-imap discards it.
		return nil, storeError(mailstore.ErrOverQuota, asDestination)
	}
	// The literal's size is known (and bounded by AppendLimit): one
	// buffer of that size, not io.ReadAll's doublings.
	data := make([]byte, r.Size())
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("read APPEND literal: %w", err)
	}
	uid, err := mb.AppendOwned(data, storableFlags(opts.Flags), opts.Time)
	if err != nil {
		return nil, s.fail("append", err, asDestination)
	}
	// APPENDUID (RFC 4315 §3).
	return &imap.AppendData{UID: imap.UID(uid), UIDValidity: mb.UIDValidity()}, nil
}

// storableFlags drops the flags a client cannot set: \Recent (RFC 3501
// §2.3.2) and the \* of PERMANENTFLAGS.
func storableFlags(flags []imap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) || f == imap.FlagWildcard {
			continue
		}
		out = append(out, string(f))
	}
	return out
}

// Namespace implements imapserver.SessionNamespace (RFC 2342): one
// personal namespace, no others.
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

// Poll implements imapserver.Session: after a command, tell the client
// what changed in the selected mailbox (RFC 3501 §7).
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if v := s.selected(); v != nil {
		return v.flush(w, allowExpunge)
	}
	return nil
}

// Idle implements imapserver.Session (RFC 2177): send updates as they
// happen until the client says DONE. When the server shuts down, say BYE.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.settle() // an earlier Idle that go-imap stopped waiting for
	s.mu.Lock()
	select {
	case <-stop: // a late start: the IDLE command is over already
		s.mu.Unlock()
		return nil
	default:
	}
	if s.closed || s.idleDone != nil {
		s.mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	s.idleDone = done
	v := s.sel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.idleDone = nil
		s.mu.Unlock()
		close(done)
	}()

	var wake <-chan struct{}
	if v != nil {
		wake = v.wake
		if err := v.flush(w, true); err != nil {
			return err
		}
	}
	for {
		select {
		case <-stop:
			return nil
		case <-s.c.srv.done:
			s.c.bye(s.c.srv.cfg.Hostname + " IMAP server shutting down")
			return nil
		case <-wake:
			if err := v.flush(w, true); err != nil {
				return err
			}
		}
	}
}

var (
	_ imapserver.SessionSASL      = (*session)(nil)
	_ imapserver.SessionNamespace = (*session)(nil)
	_ imapserver.SessionMove      = (*session)(nil)
	_ sasl.Server                 = (*saslServer)(nil)
)
