package lab_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/settings"
)

func startLab(t *testing.T, opts lab.Options, faults ...lab.Fault) *lab.Lab {
	t.Helper()
	l, err := lab.Start(opts, faults...)
	if err != nil {
		t.Fatalf("lab.Start: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func addr(s settings.Service) string { return net.JoinHostPort(s.Address, fmt.Sprint(s.Port)) }

// submit sends a message from alice to rcpt over a submission service.
func submit(t *testing.T, l *lab.Lab, service, rcpt, body string) {
	t.Helper()
	s := l.Settings()
	svc := s.Services[service]
	alice := s.Accounts[0]
	cfg := &tls.Config{RootCAs: l.CertPool(), ServerName: svc.Host}
	var c *smtp.Client
	var err error
	if svc.Security == settings.SecurityTLS {
		c, err = smtp.DialTLS(addr(svc), cfg)
	} else {
		c, err = smtp.DialStartTLS(addr(svc), cfg)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", service, err)
	}
	defer c.Close()
	c.CommandTimeout = 5 * time.Second
	if err := c.Auth(sasl.NewPlainClient("", alice.Username, alice.Password)); err != nil {
		t.Fatalf("auth %s: %v", service, err)
	}
	msg := "From: " + alice.Email + "\r\nTo: " + rcpt + "\r\nSubject: lab test\r\n\r\n" + body + "\r\n"
	if err := c.SendMail(alice.Email, []string{rcpt}, strings.NewReader(msg)); err != nil {
		t.Fatalf("send %s: %v", service, err)
	}
}

func TestMailFlowSMTPToIMAPAndPOP3(t *testing.T) {
	l := startLab(t, lab.Options{})
	s := l.Settings()
	bob := s.Accounts[1]
	submit(t, l, "submission", bob.Email, "hello over STARTTLS")
	submit(t, l, "submissions", bob.Email, "hello over implicit TLS")

	// IMAP over implicit TLS.
	imaps := s.Services["imaps"]
	ic, err := imapclient.DialTLS(addr(imaps), &imapclient.Options{TLSConfig: &tls.Config{RootCAs: l.CertPool(), ServerName: imaps.Host}})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login(bob.Username, bob.Password).Wait(); err != nil {
		t.Fatalf("imap login: %v", err)
	}
	sel, err := ic.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 2 {
		t.Fatalf("INBOX has %d messages, want 2", sel.NumMessages)
	}
	msgs, err := ic.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range msgs {
		for _, b := range m.BodySection {
			bodies = append(bodies, string(b.Bytes))
		}
	}
	joined := strings.Join(bodies, "\n")
	for _, want := range []string{"hello over STARTTLS", "hello over implicit TLS", "Received: from"} {
		if !strings.Contains(joined, want) {
			t.Errorf("IMAP bodies lack %q:\n%s", want, joined)
		}
	}

	// POP3 over implicit TLS sees the same two messages.
	pop3s := s.Services["pop3s"]
	pc, err := tls.Dial("tcp", addr(pop3s), &tls.Config{RootCAs: l.CertPool(), ServerName: pop3s.Host})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(pc)
	expect := func(cmd, prefix string) string {
		t.Helper()
		if cmd != "" {
			io.WriteString(pc, cmd+"\r\n")
		}
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, prefix) {
			t.Fatalf("%s: got %q, %v; want %s", cmd, line, err, prefix)
		}
		return line
	}
	expect("", "+OK")
	expect("USER "+bob.Username, "+OK")
	expect("PASS "+bob.Password, "+OK")
	if line := expect("STAT", "+OK"); !strings.HasPrefix(line, "+OK 2 ") {
		t.Errorf("STAT = %q, want 2 messages", line)
	}
	expect("QUIT", "+OK")
}

func TestDNSServesLabRecords(t *testing.T) {
	l := startLab(t, lab.Options{})
	s := l.Settings()
	c := &dns.Client{Timeout: 2 * time.Second}
	tests := []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"mail.example.test.", dns.TypeA, "127.0.0.1"},
		{"imap.example.test.", dns.TypeA, "127.0.0.1"},
		{"example.test.", dns.TypeMX, "mail.example.test."},
		{"_submission._tcp.example.test.", dns.TypeSRV, fmt.Sprintf(" %d mail.example.test.", s.Services["submission"].Port)},
		{"_imaps._tcp.example.test.", dns.TypeSRV, fmt.Sprintf(" %d mail.example.test.", s.Services["imaps"].Port)},
		{"_pop3s._tcp.example.test.", dns.TypeSRV, fmt.Sprintf(" %d mail.example.test.", s.Services["pop3s"].Port)},
	}
	for _, proto := range []string{"udp", "tcp"} {
		c.Net = proto
		for _, tt := range tests {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				m := new(dns.Msg)
				m.SetQuestion(tt.name, tt.qtype)
				r, _, err := c.Exchange(m, s.Resolver)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Answer) == 0 || !strings.Contains(r.Answer[0].String(), tt.want) {
					t.Errorf("answer %v, want %q", r.Answer, tt.want)
				}
			})
		}
	}
	m := new(dns.Msg)
	m.SetQuestion("smtp.mail.example.con.", dns.TypeA)
	r, _, err := c.Exchange(m, s.Resolver)
	if err != nil || r.Rcode != dns.RcodeNameError {
		t.Errorf("unknown name: rcode %v, err %v; want NXDOMAIN", r, err)
	}
}
