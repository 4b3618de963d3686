package pop3d

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
	"github.com/maillab/maillab/servers/pop3"
)

const password = "9bHs4xNcQe3r"

// start serves the lab's POP3 backend on 127.0.0.1 (plaintext, AUTH
// allowed without TLS for the script) over a store where bob has two
// messages; authn replaces the store authenticator when set.
func start(t *testing.T, authn auth.Authenticator) (addr string, store *mailstore.Store) {
	t.Helper()
	store, err := mailstore.Open(mailstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddUser("bob@example.test", "bob@example.test", password); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"one", "two"} {
		// LF line endings on purpose: POP3 sizes count CRLF (RFC 1939 §11).
		if err := store.Deliver("bob@example.test", []byte("Subject: "+subj+"\n\nbody "+subj+"\n")); err != nil {
			t.Fatal(err)
		}
	}
	if authn == nil {
		authn = &auth.Store{Store: store}
	}
	s := New(Config{Hostname: "mail.example.test", Service: "pop3", Store: store, Auth: authn, AllowInsecureAuth: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil && !errors.Is(err, pop3.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), store
}

// script is a scripted POP3 client: each step sends a line and checks
// the first line of the reply.
type script struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *script {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	s := &script{t: t, c: c, r: bufio.NewReader(c)}
	s.expect("+OK Dovecot ready.")
	return s
}

func (s *script) line() string {
	s.t.Helper()
	l, err := s.r.ReadString('\n')
	if err != nil {
		s.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

func (s *script) expect(want string) string {
	s.t.Helper()
	got := s.line()
	if !strings.HasPrefix(got, want) {
		s.t.Fatalf("reply %q, want %q...", got, want)
	}
	return got
}

func (s *script) cmd(line, want string) string {
	s.t.Helper()
	if _, err := s.c.Write([]byte(line + "\r\n")); err != nil {
		s.t.Fatal(err)
	}
	return s.expect(want)
}

// multi reads a multi-line response body up to its "." line (RFC 1939 §3).
func (s *script) multi() []string {
	s.t.Helper()
	var body []string
	for {
		l := s.line()
		if l == "." {
			return body
		}
		body = append(body, strings.TrimPrefix(l, "."))
	}
}

// TestMaildrop: a full session over the lab store: login, sizes with
// CRLF line endings, RETR, DELE, and QUIT's UPDATE removing the message
// from the INBOX IMAP sees (RFC 1939 §6).
func TestMaildrop(t *testing.T) {
	addr, store := start(t, nil)
	s := dial(t, addr)
	s.cmd("USER bob@example.test", "+OK")
	s.cmd("PASS "+password, "+OK")
	s.cmd("STAT", "+OK 2 ") // sizes below
	s.cmd("LIST", "+OK")
	list := s.multi()
	wantSize := len("Subject: one\r\n\r\nbody one\r\n")
	if len(list) != 2 || list[0] != "1 "+strconv.Itoa(wantSize) {
		t.Errorf("LIST = %q, want 2 messages, the first of %d octets (CRLF)", list, wantSize)
	}
	s.cmd("UIDL", "+OK")
	uidl := s.multi()
	if len(uidl) != 2 || uidl[0] == uidl[1] {
		t.Errorf("UIDL = %q, want two distinct ids", uidl)
	}
	s.cmd("RETR 2", "+OK")
	if body := strings.Join(s.multi(), "\n"); !strings.Contains(body, "Subject: two") {
		t.Errorf("RETR 2 = %q, want message two", body)
	}
	s.cmd("DELE 1", "+OK")
	s.cmd("QUIT", "+OK")
	u, err := store.User("bob@example.test")
	if err != nil {
		t.Fatal(err)
	}
	mb, err := u.Mailbox(mailstore.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	msgs := mb.Messages()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Subject: two") {
		t.Errorf("INBOX after DELE 1 and QUIT: %d messages, want only message two", len(msgs))
	}
}

// TestMaildropLocked: a second session of the same user gets [IN-USE]
// while the first holds the maildrop (RFC 2449 §8.1.1), and the lock is
// released at QUIT.
func TestMaildropLocked(t *testing.T) {
	addr, _ := start(t, nil)
	first := dial(t, addr)
	first.cmd("USER bob@example.test", "+OK")
	first.cmd("PASS "+password, "+OK")
	second := dial(t, addr)
	second.cmd("USER bob@example.test", "+OK")
	second.cmd("PASS "+password, "-ERR [IN-USE] Mailbox is locked by another POP3 session.")
	first.cmd("QUIT", "+OK")
	third := dial(t, addr)
	third.cmd("USER bob@example.test", "+OK")
	third.cmd("PASS "+password, "+OK")
}

// TestLoginRefusals: each kind of refused login becomes its RFC 3206
// response code and the wording real clients show.
func TestLoginRefusals(t *testing.T) {
	tests := []struct {
		kind auth.Kind
		want string
	}{
		{auth.InvalidCredentials, "-ERR [AUTH] Authentication failed."},
		{auth.PasswordExpired, "-ERR [AUTH] Password expired"},
		{auth.AccountDisabled, "-ERR [SYS/PERM] Account disabled"},
		{auth.TemporarilyLocked, "-ERR [AUTH] Account temporarily locked"},
		{auth.BasicAuthDisabled, "-ERR [AUTH] Application-specific password required"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			refuse := auth.Func(func(context.Context, *auth.Request) (*mailstore.User, error) {
				return nil, &auth.Error{Kind: tt.kind}
			})
			addr, _ := start(t, refuse)
			s := dial(t, addr)
			s.cmd("USER bob@example.test", "+OK")
			s.cmd("PASS "+password, tt.want)
		})
	}
	if got := Reply(errors.New("backend down")); got.Code != pop3.CodeSysTemp {
		t.Errorf("Reply(not an auth error) = %v, want [SYS/TEMP]", got)
	}
}
