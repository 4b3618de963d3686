//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/settings"
)

// startLab starts a plain lab (issue 2: no faults) for one test.
func startLab(t *testing.T) (*lab.Lab, *settings.Settings) {
	t.Helper()
	l, err := lab.Start(lab.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start lab: %v", err)
	}
	t.Cleanup(func() { closeLab(t, l) })
	s := l.Settings()
	if len(s.Accounts) < 2 {
		t.Fatalf("lab has %d accounts, want alice and bob", len(s.Accounts))
	}
	return l, s
}

// TestLabMailFlow: alice submits to bob with every submission client and
// security mode, and bob reads every message back with every reading
// client over IMAP and POP3, with implicit TLS and with STARTTLS, all
// trusting only the lab CA.
func TestLabMailFlow(t *testing.T) {
	t.Parallel()
	_, s := startLab(t)
	alice, bob := s.Accounts[0], s.Accounts[1]
	toBob := s.Clone()
	toBob.Client = &settings.Client{SendTo: bob.Email}
	sender := newMailClient(t, "lab", toBob)
	reader := newMailClient(t, "lab", s).with(t, bob)

	sent := []struct {
		name    string
		subject string
		send    func(c *mailClient, subject string) result
		want    []string
	}{
		{"curl-submission-starttls", "lab curl STARTTLS", func(c *mailClient, subj string) result {
			return c.curlSend("submission", c.writeMessage(alice.Email, bob.Email, subj))
		}, []string{"< 220 2.0.0 Ready to start TLS", "SSL certificate verify ok", "235 2.0.0 Authentication succeeded", "250 2.0.0 OK: queued"}},
		{"curl-submissions-tls", "lab curl implicit TLS", func(c *mailClient, subj string) result {
			return c.curlSend("submissions", c.writeMessage(alice.Email, bob.Email, subj))
		}, []string{"SSL certificate verify ok", "235 2.0.0 Authentication succeeded", "250 2.0.0 OK: queued"}},
		{"swaks-submission-starttls", "lab swaks STARTTLS", func(c *mailClient, subj string) result {
			return c.swaks("submission", "--header", "Subject: "+subj)
		}, []string{"-> STARTTLS", "~> AUTH", "235 2.0.0 Authentication succeeded", "250 2.0.0 OK: queued"}},
		{"swaks-submissions-tls", "lab swaks implicit TLS", func(c *mailClient, subj string) result {
			return c.swaks("submissions", "--header", "Subject: "+subj)
		}, []string{"=== TLS started", "235 2.0.0 Authentication succeeded", "250 2.0.0 OK: queued"}},
		{"msmtp-submission-starttls", "lab msmtp STARTTLS", func(c *mailClient, subj string) result {
			return c.msmtp("submission", bob.Email, []byte(fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nSent by msmtp.\r\n", alice.Email, bob.Email, subj)))
		}, []string{"STARTTLS", "smtpstatus=250", "exitcode=EX_OK"}},
		{"msmtp-submissions-tls", "lab msmtp implicit TLS", func(c *mailClient, subj string) result {
			return c.msmtp("submissions", bob.Email, []byte(fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nSent by msmtp.\r\n", alice.Email, bob.Email, subj)))
		}, []string{"smtpstatus=250", "exitcode=EX_OK"}},
	}
	// The readers expect the messages of the senders that ran and passed:
	// a sender whose client is missing skips, and must not fail a reader.
	var subjects []string
	for _, tc := range sent {
		t.Run(tc.name, func(t *testing.T) {
			expectation{exit: 0, want: tc.want}.check(t, "lab", tc.send(sender.in(t), tc.subject))
			if !t.Failed() {
				subjects = append(subjects, tc.subject)
			}
		})
	}
	n := len(subjects)
	reads := []struct {
		name string
		read func(c *mailClient) result
		want []string
	}{
		{"curl-imaps", func(c *mailClient) result {
			return c.curl("imaps", "/INBOX", "-X", "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
		}, append([]string{fmt.Sprintf("* %d EXISTS", n)}, subjects...)},
		{"curl-imap-starttls", func(c *mailClient) result {
			return c.curl("imap", "/INBOX", "-X", "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
		}, append([]string{"> A002 STARTTLS", "SSL certificate verify ok"}, subjects...)},
		{"curl-pop3s", func(c *mailClient) result {
			return c.curl("pop3s", fmt.Sprintf("/[1-%d]", n)) // curl URL globbing: RETR each
		}, subjects},
		{"curl-pop3-stls", func(c *mailClient) result {
			return c.curl("pop3", fmt.Sprintf("/[1-%d]", n))
		}, append([]string{"> STLS", "SSL certificate verify ok"}, subjects...)},
		{"fetchmail-pop3s", fetchmailRead("pop3s"), append([]string{fmt.Sprintf("%d messages for %s", n, bob.Username)}, subjects...)},
		{"fetchmail-pop3-stls", fetchmailRead("pop3"), append([]string{"POP3> STLS", fmt.Sprintf("%d messages for %s", n, bob.Username)}, subjects...)},
		{"fetchmail-imaps", fetchmailRead("imaps"), append([]string{fmt.Sprintf("%d messages for %s", n, bob.Username)}, subjects...)},
		{"fetchmail-imap-starttls", fetchmailRead("imap"), append([]string{"IMAP> A0001 STARTTLS", fmt.Sprintf("%d messages for %s", n, bob.Username)}, subjects...)},
	}
	for _, tc := range reads {
		t.Run(tc.name, func(t *testing.T) {
			if n == 0 {
				t.Skip("no message to read: every sender skipped or failed")
			}
			expectation{exit: 0, want: tc.want}.check(t, "lab", tc.read(reader.in(t)))
		})
	}
}

func fetchmailRead(service string) func(c *mailClient) result {
	return func(c *mailClient) result {
		r, mbox := c.fetchmail(service)
		r.out += "\n[delivered mbox]\n" + mbox
		return r
	}
}

// TestLabOpenSSLVerifiesChain: openssl s_client verifies the lab's chain
// and host name on every TLS service, with -starttls smtp|imap|pop3 on the
// plaintext ports (RFC 3207, RFC 3501 §6.2.1, RFC 2595 §4).
func TestLabOpenSSLVerifiesChain(t *testing.T) {
	t.Parallel()
	_, s := startLab(t)
	c := newMailClient(t, "lab", s)
	for _, info := range settings.Services {
		t.Run(info.Name, func(t *testing.T) {
			var extra []string
			if s.Services[info.Name].Security == settings.SecurityNone {
				// The relay port offers STARTTLS too, as real MTAs do.
				extra = []string{"-starttls", info.Protocol}
			}
			r := c.in(t).openssl(info.Name, extra...)
			want := []string{opensslVerifyOK, "Verification: OK", "i:O = maillab, CN = maillab example.test lab CA"}
			expectation{exit: 0, want: want}.check(t, "lab", r)
		})
	}
}

// TestLabDNS: dig resolves the lab's A, MX and RFC 6186 SRV records over
// UDP and TCP, and the SRV ports are the lab's real ports.
func TestLabDNS(t *testing.T) {
	t.Parallel()
	l, s := startLab(t)
	c := newMailClient(t, "lab", s)
	for _, transport := range []string{"+notcp", "+tcp"} {
		t.Run(strings.TrimPrefix(transport, "+"), func(t *testing.T) {
			c := c.in(t)
			for _, host := range l.Primary.Hosts {
				r := c.dig(transport, "+short", host, "A")
				if got := parseDigShort(r.out); r.exit != 0 || len(got) != 1 || got[0] != l.Primary.AdvertisedIP {
					t.Errorf("dig %s A = %q (exit %d), want %s\n%s", host, got, r.exit, l.Primary.AdvertisedIP, r)
				}
			}
			r := c.dig(transport, "+short", s.Domain, "MX")
			if got, want := parseDigShort(r.out), "10 "+l.Primary.MailHost+"."; r.exit != 0 || len(got) != 1 || got[0] != want {
				t.Errorf("dig %s MX = %q (exit %d), want %q\n%s", s.Domain, got, r.exit, want, r)
			}
			srv := map[string]string{
				"submission": "_submission._tcp", "submissions": "_submissions._tcp",
				"imap": "_imap._tcp", "imaps": "_imaps._tcp", "pop3": "_pop3._tcp", "pop3s": "_pop3s._tcp",
			}
			for service, label := range srv {
				name := label + "." + s.Domain
				r := c.dig(transport, "+short", name, "SRV")
				answers := parseDigShort(r.out)
				if r.exit != 0 || len(answers) != 1 {
					t.Errorf("dig %s SRV: %q (exit %d), want one answer\n%s", name, answers, r.exit, r)
					continue
				}
				rec, err := parseSRV(answers[0])
				if err != nil {
					t.Errorf("dig %s SRV: %v", name, err)
					continue
				}
				if want := (srvRecord{Priority: 0, Weight: 1, Port: s.Services[service].Port, Target: l.Primary.MailHost + "."}); rec != want {
					t.Errorf("dig %s SRV = %+v, want %+v", name, rec, want)
				}
			}
		})
	}
}
