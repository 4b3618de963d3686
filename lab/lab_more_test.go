package lab_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/mailstore"
	"github.com/maillab/maillab/servers/transcript"
)

// TestMaildirSurvivesRestart: with a store directory, a restarted lab
// still has the mail an earlier run accepted.
func TestMaildirSurvivesRestart(t *testing.T) {
	store := t.TempDir()
	first := startLab(t, lab.Options{StoreDir: store})
	s := first.Settings()
	bob := s.Accounts[1]
	submit(t, first, "submission", bob.Email, "kept across restarts")
	first.Close()

	second := startLab(t, lab.Options{StoreDir: store})
	if got := second.Settings().Accounts; got[1].Password != bob.Password {
		t.Errorf("after restart bob's password is %q, want the one of the first run", got[1].Password)
	}
	u, err := second.Store.User(bob.Username)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := u.Mailbox("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	msgs := mb.Messages()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "kept across restarts") {
		t.Fatalf("after restart INBOX has %d messages, want the one sent before", len(msgs))
	}
}

// TestSecondLabOnSameStoreRefused: two labs on one --store would hand
// out the same UIDs for different messages; the second is refused at
// start and told which process holds the store.
func TestSecondLabOnSameStoreRefused(t *testing.T) {
	store := t.TempDir()
	startLab(t, lab.Options{StoreDir: store})
	second, err := lab.Start(lab.Options{StoreDir: store})
	if err == nil {
		second.Close()
		t.Fatal("lab.Start on a store another lab has open = nil error, want a refusal")
	}
	if want := fmt.Sprintf("in use by process %d", os.Getpid()); !errors.Is(err, mailstore.ErrStoreLocked) || !strings.Contains(err.Error(), want) {
		t.Errorf("lab.Start on a store in use = %v, want ErrStoreLocked saying %q", err, want)
	}
}

func TestCloseIsIdempotentAndRemovesTempDir(t *testing.T) {
	l, err := lab.Start(lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := l.Dir
	addr := l.Service("imaps").Addr()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab directory %s still exists after Close (%v)", dir, err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Close", addr)
	}
}

func TestNonLoopbackNeedsPermission(t *testing.T) {
	_, err := lab.New(lab.Options{Address: "0.0.0.0"})
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("New(0.0.0.0) = %v, want a refusal naming loopback", err)
	}
}

// TestSMTPPolicies checks the lab's default SMTP behaviour on the wire,
// with Postfix's wording.
func TestSMTPPolicies(t *testing.T) {
	l := startLab(t, lab.Options{})
	s := l.Settings()
	alice := s.Accounts[0]
	t.Run("unknown local recipient", func(t *testing.T) {
		c, err := smtp.Dial(addr(s.Services["smtp"]))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Mail("x@elsewhere.test", nil); err != nil {
			t.Fatal(err)
		}
		err = c.Rcpt("nobody@example.test", nil)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
			t.Errorf("RCPT nobody = %v, want 550 5.1.1", err)
		}
	})
	t.Run("relay denied without auth", func(t *testing.T) {
		c, err := smtp.Dial(addr(s.Services["smtp"]))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Mail(alice.Email, nil)
		err = c.Rcpt("friend@elsewhere.test", nil)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 554 || !strings.Contains(se.Message, "Relay access denied") {
			t.Errorf("RCPT foreign = %v, want 554 5.7.1 Relay access denied", err)
		}
	})
	t.Run("auth before STARTTLS refused", func(t *testing.T) {
		c, err := smtp.Dial(addr(s.Services["submission"]))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client.test"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Extension("AUTH"); ok {
			t.Error("AUTH advertised before STARTTLS")
		}
		if ok, _ := c.Extension("STARTTLS"); !ok {
			t.Error("STARTTLS not advertised")
		}
		err = c.Auth(sasl.NewPlainClient("", alice.Username, alice.Password))
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 530 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 0}) {
			t.Errorf("AUTH before TLS = %v, want 530 5.7.0", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		svc := s.Services["submissions"]
		c, err := smtp.DialTLS(addr(svc), &tls.Config{RootCAs: l.CertPool(), ServerName: svc.Host})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Auth(sasl.NewPlainClient("", alice.Username, "wrong"))
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 535 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 8}) {
			t.Errorf("AUTH wrong password = %v, want 535 5.7.8", err)
		}
	})
}

type entries struct {
	ch chan transcript.Entry
}

func (e *entries) Record(x transcript.Entry) {
	select {
	case e.ch <- x:
	default:
	}
}

// TestTranscriptMasksCredentials: the lab log shows both sides of a
// session, with passwords masked.
func TestTranscriptMasksCredentials(t *testing.T) {
	sink := &entries{ch: make(chan transcript.Entry, 1000)}
	dir := t.TempDir()
	l := startLab(t, lab.Options{Transcript: sink, Dir: dir})
	s := l.Settings()
	alice := s.Accounts[0]
	submit(t, l, "submissions", alice.Email, "transcript test")
	svc := s.Services["imaps"]
	c, err := tls.Dial("tcp", addr(svc), &tls.Config{RootCAs: l.CertPool(), ServerName: svc.Host})
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "a1 LOGIN %s %s\r\na2 LOGOUT\r\n", alice.Username, alice.Password)
	for {
		line, err := r.ReadString('\n')
		if err != nil || strings.HasPrefix(line, "a2 ") {
			break
		}
	}
	c.Close()
	l.Close()
	close(sink.ch)
	var all []string
	for e := range sink.ch {
		all = append(all, e.String())
	}
	log := strings.Join(all, "\n")
	for _, want := range []string{"C: AUTH PLAIN ****", "S: 235 2.0.0 Authentication succeeded", "C: a1 LOGIN " + alice.Username + " ****", "S: a1 OK", "TLS established"} {
		if !strings.Contains(log, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	if strings.Contains(log, alice.Password) {
		t.Errorf("transcript contains the password:\n%s", log)
	}
	data, err := os.ReadFile(dir + "/lab.log")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "C: AUTH PLAIN ****") {
		t.Error("lab.log lacks the SMTP session")
	}
	if strings.Contains(string(data), alice.Password) {
		t.Error("lab.log contains the password")
	}
}
