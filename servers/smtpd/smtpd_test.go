package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
	"github.com/maillab/maillab/servers/pki"
)

// fixture is one SMTP port of the lab with alice and bob of example.test.
type fixture struct {
	addr  string
	store *mailstore.Store
	roots *x509.CertPool
}

const alicePassword = "Tg7kYq2pWmZa"

// start serves one SMTP port on 127.0.0.1 with cfg completed by the
// fixture: a store with alice and bob, the store authenticator, and
// STARTTLS with a certificate of a fresh CA.
func start(t testing.TB, cfg Config) *fixture {
	t.Helper()
	store, err := mailstore.Open(mailstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := store.AddUser(u+"@example.test", u+"@example.test", alicePassword); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := pki.NewCA("smtpd test CA", pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.LeafSpec{DNSNames: []string{"mail.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cfg.Hostname = "mail.example.test"
	cfg.Store = store
	cfg.Auth = &auth.Store{Store: store}
	cfg.LocalDomains = []string{"example.test"}
	if cfg.TLSConfig == nil {
		cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}}
	}
	cfg.ReadTimeout, cfg.WriteTimeout = 10*time.Second, 10*time.Second
	s := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return &fixture{addr: ln.Addr().String(), store: store, roots: roots}
}

// script is a scripted SMTP client: each step sends a line and checks
// the reply's code and text.
type script struct {
	t  *testing.T
	c  net.Conn
	r  *bufio.Reader
	fx *fixture
}

func (fx *fixture) dial(t *testing.T) *script {
	t.Helper()
	c, err := net.Dial("tcp", fx.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	s := &script{t: t, c: c, r: bufio.NewReader(c), fx: fx}
	s.expect("220 mail.example.test")
	return s
}

// reply reads one reply, joining multi-line replies (RFC 5321 §4.2.1).
func (s *script) reply() string {
	s.t.Helper()
	var lines []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("read reply: %v (so far %q)", err, lines)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// expect reads a reply and checks that it starts with want.
func (s *script) expect(want string) string {
	s.t.Helper()
	got := s.reply()
	if !strings.HasPrefix(got, want) {
		s.t.Fatalf("reply %q, want %q...", got, want)
	}
	return got
}

// cmd sends line and checks the reply.
func (s *script) cmd(line, want string) string {
	s.t.Helper()
	if _, err := s.c.Write([]byte(line + "\r\n")); err != nil {
		s.t.Fatal(err)
	}
	return s.expect(want)
}

func (s *script) starttls() {
	s.t.Helper()
	s.cmd("STARTTLS", "220 2.0.0 Ready to start TLS")
	tc := tls.Client(s.c, &tls.Config{ServerName: "mail.example.test", RootCAs: s.fx.roots})
	if err := tc.Handshake(); err != nil {
		s.t.Fatalf("TLS handshake after STARTTLS: %v", err)
	}
	s.c, s.r = tc, bufio.NewReader(tc)
}

func plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func (fx *fixture) inbox(t *testing.T, user string) []mailstore.Message {
	t.Helper()
	u, err := fx.store.User(user)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := u.Mailbox("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return mb.Messages()
}

// TestSubmission scripts submission sessions (RFC 6409): AUTH only after
// STARTTLS (RFC 3207 §4), MAIL only after AUTH, local delivery.
func TestSubmission(t *testing.T) {
	fx := start(t, Config{Service: "submission", Mode: ModeSubmission})
	t.Run("auth before STARTTLS", func(t *testing.T) {
		s := fx.dial(t)
		ehlo := s.cmd("EHLO client.test", "250-Hello client.test")
		if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
			t.Errorf("plaintext EHLO %q: want STARTTLS and no AUTH", ehlo)
		}
		s.cmd("AUTH PLAIN "+plain("alice@example.test", alicePassword), "530 5.7.0 Must issue a STARTTLS command first")
		s.cmd("MAIL FROM:<alice@example.test>", "530 5.7.0")
		s.cmd("QUIT", "221")
	})
	t.Run("mail before auth", func(t *testing.T) {
		s := fx.dial(t)
		s.cmd("EHLO client.test", "250")
		s.starttls()
		s.cmd("EHLO client.test", "250")
		s.cmd("MAIL FROM:<alice@example.test>", "530 5.7.0 Authentication required")
	})
	t.Run("wrong password", func(t *testing.T) {
		s := fx.dial(t)
		s.cmd("EHLO client.test", "250")
		s.starttls()
		ehlo := s.cmd("EHLO client.test", "250")
		if !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
			t.Errorf("EHLO after STARTTLS %q: want AUTH PLAIN LOGIN", ehlo)
		}
		s.cmd("AUTH PLAIN "+plain("alice@example.test", "wrong"), "535 5.7.8 Error: authentication failed")
	})
	t.Run("deliver to bob", func(t *testing.T) {
		s := fx.dial(t)
		s.cmd("EHLO client.test", "250")
		s.starttls()
		s.cmd("EHLO client.test", "250")
		s.cmd("AUTH PLAIN "+plain("alice@example.test", alicePassword), "235 2.0.0 Authentication succeeded")
		s.cmd("MAIL FROM:<alice@example.test>", "250 2.0.0")
		s.cmd("RCPT TO:<nobody@example.test>", "550 5.1.1 <nobody@example.test>: Recipient address rejected")
		s.cmd("RCPT TO:<bob@example.test>", "250 2.0.0")
		s.cmd("DATA", "354")
		s.cmd("Subject: scripted\r\n\r\nHello bob.\r\n.", "250 2.0.0 OK: queued")
		s.cmd("QUIT", "221")
		msgs := fx.inbox(t, "bob@example.test")
		if len(msgs) != 1 {
			t.Fatalf("bob's INBOX has %d messages, want 1", len(msgs))
		}
	})
}

// TestRelayPort scripts the MTA port (like 25): no AUTH offered, local
// delivery for anyone, relaying refused (Postfix: 554 5.7.1).
func TestRelayPort(t *testing.T) {
	fx := start(t, Config{Service: "smtp", Mode: ModeRelay})
	s := fx.dial(t)
	ehlo := s.cmd("EHLO client.test", "250")
	if strings.Contains(ehlo, "AUTH") {
		t.Errorf("relay port EHLO %q offers AUTH", ehlo)
	}
	s.cmd("MAIL FROM:<stranger@elsewhere.test>", "250")
	s.cmd("RCPT TO:<friend@elsewhere.test>", "554 5.7.1 <friend@elsewhere.test>: Relay access denied")
	s.cmd("RCPT TO:<alice@example.test>", "250")
	s.cmd("DATA", "354")
	s.cmd("Subject: inbound\r\n\r\nHi.\r\n.", "250")
	if n := len(fx.inbox(t, "alice@example.test")); n != 1 {
		t.Errorf("alice's INBOX has %d messages, want 1", n)
	}
}

// TestChecks: a policy's *smtp.SMTPError reaches the client at the stage
// it refuses (a greylisting-style RCPT refusal and a content filter).
func TestChecks(t *testing.T) {
	grey := &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "<alice@example.test>: Recipient address rejected: Greylisted"}
	filter := &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message content rejected"}
	var seen []string
	fx := start(t, Config{Service: "smtp", Mode: ModeRelay, Checks: []Check{CheckFuncs{
		Rcpt: func(_ context.Context, env *Envelope, rcpt string) error {
			seen = append(seen, env.From+">"+rcpt)
			if strings.HasPrefix(rcpt, "alice") {
				return grey
			}
			return nil
		},
		Data: func(_ context.Context, env *Envelope, msg []byte) error {
			if strings.Contains(string(msg), "invoice.exe") {
				return filter
			}
			return nil
		},
	}}})
	s := fx.dial(t)
	s.cmd("EHLO client.test", "250")
	s.cmd("MAIL FROM:<x@elsewhere.test>", "250")
	s.cmd("RCPT TO:<alice@example.test>", "450 4.7.1 <alice@example.test>: Recipient address rejected: Greylisted")
	s.cmd("RCPT TO:<bob@example.test>", "250")
	s.cmd("DATA", "354")
	s.cmd("Subject: bill\r\n\r\nSee invoice.exe\r\n.", "554 5.7.1 Message content rejected")
	if want := []string{"x@elsewhere.test>alice@example.test", "x@elsewhere.test>bob@example.test"}; strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("checks saw %v, want %v", seen, want)
	}
	if n := len(fx.inbox(t, "bob@example.test")); n != 0 {
		t.Errorf("bob's INBOX has %d messages after a refused DATA, want 0", n)
	}
}

// TestReadMessage: the message comes back whole behind the header, in a
// slice without spare capacity, however the reader cuts it; on a read
// error what came before it is returned with the error.
func TestReadMessage(t *testing.T) {
	header := []byte("Received: x\r\n")
	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 5} {
		body := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		for name, r := range map[string]io.Reader{
			"whole": bytes.NewReader(body),
			"half":  iotest.HalfReader(bytes.NewReader(body)),
		} {
			t.Run(fmt.Sprintf("%d/%s", size, name), func(t *testing.T) {
				m, err := readMessage(r, header)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(m.data, append(slices.Clone(header), body...)) || !bytes.Equal(m.body(), body) {
					t.Fatalf("readMessage: %d octets, body %d; want %d, %d", len(m.data), len(m.body()), len(header)+size, size)
				}
				if cap(m.data) != len(m.data) {
					t.Errorf("cap %d, len %d: the mailbox would keep spare capacity", cap(m.data), len(m.data))
				}
			})
		}
	}
	t.Run("error", func(t *testing.T) {
		boom := errors.New("boom")
		body := bytes.Repeat([]byte("x"), chunkSize+10)
		m, err := readMessage(io.MultiReader(bytes.NewReader(body), iotest.ErrReader(boom)), header)
		if !errors.Is(err, boom) || !bytes.Equal(m.body(), body) {
			t.Errorf("readMessage = %d octets, %v; want %d, %v", len(m.body()), err, len(body), boom)
		}
	})
}
