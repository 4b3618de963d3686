package lab_test

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/mailstore"
)

// TestStoreLimitDefaults: every account has a quota by default (before,
// none: 16 relay messages of 25 MB were all kept in memory) and the
// message size limit is the same for SMTP and IMAP.
func TestStoreLimitDefaults(t *testing.T) {
	l := startLab(t, lab.Options{})
	for _, a := range l.Settings().Accounts {
		u, err := l.Store.User(a.Username)
		if err != nil {
			t.Fatal(err)
		}
		if limit, _ := u.Quota(); limit != lab.DefaultQuota {
			t.Errorf("quota of %s = %d, want lab.DefaultQuota %d", a.Username, limit, lab.DefaultQuota)
		}
	}
	if got := l.Store.MaxMessageSize(); got != mailstore.DefaultMaxMessageSize {
		t.Errorf("MaxMessageSize() = %d, want %d", got, mailstore.DefaultMaxMessageSize)
	}
}

// TestStoreLimitsReachClients: with a small quota and size limit, SMTP
// advertises the size limit IMAP advertises as APPENDLIMIT, a delivery
// over the quota gets 552 5.2.2 and an APPEND over it NO [OVERQUOTA].
func TestStoreLimitsReachClients(t *testing.T) {
	const quota, maxSize = 64 << 10, 32 << 10
	l := startLab(t, lab.Options{Quota: quota, MaxMessageSize: maxSize})
	s := l.Settings()
	bob := s.Accounts[1]

	c, err := smtp.Dial(addr(s.Services["smtp"]))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.CommandTimeout = 5 * time.Second
	if err := c.Hello("client.example.net"); err != nil {
		t.Fatal(err)
	}
	if ok, size := c.Extension("SIZE"); !ok || size != "32768" {
		t.Errorf("EHLO SIZE = %v %q, want 32768", ok, size)
	}
	msg := "From: someone@example.net\r\nTo: " + bob.Email + "\r\nSubject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 30<<10/80)
	var refused *smtp.SMTPError
	for i := range 3 {
		err := c.SendMail("someone@example.net", []string{bob.Email}, strings.NewReader(msg))
		if i < 2 && err != nil {
			t.Fatalf("message %d under the quota: %v", i+1, err)
		}
		if i == 2 && !errors.As(err, &refused) {
			t.Fatalf("message 3 over the quota: %v, want an SMTP error", err)
		}
	}
	if refused.Code != 552 || refused.EnhancedCode != (smtp.EnhancedCode{5, 2, 2}) || !strings.Contains(refused.Message, "full") {
		t.Errorf("delivery over the quota = %d %v %q, want 552 5.2.2 ... full", refused.Code, refused.EnhancedCode, refused.Message)
	}

	imaps := s.Services["imaps"]
	ic, err := imapclient.DialTLS(addr(imaps), &imapclient.Options{TLSConfig: &tls.Config{RootCAs: l.CertPool(), ServerName: imaps.Host}})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login(bob.Username, bob.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	if limit, ok := ic.Caps().AppendLimit(); !ok || limit == nil || *limit != maxSize {
		t.Errorf("APPENDLIMIT = %v, %v, want %d", limit, ok, maxSize)
	}
	for _, tt := range []struct {
		size int64
		code imap.ResponseCode
	}{
		{10 << 10, imap.ResponseCodeOverQuota},
		// Last: imapclient gives up the connection when the server
		// refuses a literal before asking for it.
		{maxSize + 1, imap.ResponseCodeTooBig},
	} {
		cmd := ic.Append("INBOX", tt.size, nil)
		cmd.Write([]byte(strings.Repeat("y", int(tt.size))))
		cmd.Close()
		_, err := cmd.Wait()
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Code != tt.code {
			t.Errorf("APPEND of %d bytes = %v, want NO [%s]", tt.size, err, tt.code)
		}
	}
}
