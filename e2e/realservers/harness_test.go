//go:build e2e

package realservers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"250 2.0.0 Ok: queued as 4Xk2Lq0zQ7z9sN1", "250 2.0.0 Ok: queued as <QUEUEID>"},
		{"250 2.0.0 Ok: queued as 6967F9844AC", "250 2.0.0 Ok: queued as <QUEUEID>"},
		{"250 2.0.0 09bf3443 Message accepted for delivery", "250 2.0.0 <QUEUEID> Message accepted for delivery"},
		{"250 Ok. 000000006B13B5DF.0000007C", "250 Ok. <QUEUEID>"},
		{"250 Ok.", "250 Ok."},
		{"a5 OK Status completed (0.001 + 0.000 + 0.001 secs).", "a5 OK Status completed (<TIMING> secs)."},
		{"c OK Logout completed (0.001 + 0.000 secs).", "c OK Logout completed (<TIMING> secs)."},
		{"* OK [UIDVALIDITY 1732661623] UIDs valid", "* OK [UIDVALIDITY <N>] UIDs valid"},
		{"a1 NO [UNAVAILABLE] Temporary authentication failure. [mail:2026-01-02 03:04:05]", "a1 NO [UNAVAILABLE] Temporary authentication failure. [<HOST:TIME>]"},
		{"a2 NO [AUTHENTICATIONFAILED] Authentication failed.", "a2 NO [AUTHENTICATIONFAILED] Authentication failed."},
		{"554 5.7.1 <unknown[127.0.1.10]>: Client host rejected: Access denied", "554 5.7.1 <unknown[<CLIENTIP>]>: Client host rejected: Access denied"},
		{"421 4.7.0 mail.realmail.test Error: too many connections from 127.0.2.254", "421 4.7.0 mail.realmail.test Error: too many connections from <CLIENTIP>"},
		{"250-mail.realmail.test greets 127.0.0.1", "250-mail.realmail.test greets 127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Normalize(tt.in); got != tt.want {
				t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTranscriptMasksSecrets(t *testing.T) {
	tr := &Transcript{}
	tr.Mask("hunter2")
	tr.Mask("")
	tr.Client(`a2 LOGIN "alice" "hunter2"`)
	tr.Server("a2 OK Logged in")
	tr.Note("TLS %s", "1.3")
	want := "C: a2 LOGIN \"alice\" \"<secret>\"\nS: a2 OK Logged in\n## TLS 1.3\n"
	if got := tr.Body(); got != want {
		t.Errorf("Body() = %q, want %q", got, want)
	}
}

func TestSplitRecording(t *testing.T) {
	tests := []struct {
		name, in, header, body string
	}{
		{"header and body", "# a\n# b\n## note\nS: x\n", "# a\n# b\n", "## note\nS: x\n"},
		{"no header", "S: x\n", "", "S: x\n"},
		{"header only", "# a\n", "# a\n", ""},
		{"header without newline", "# a", "# a", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, b := SplitRecording([]byte(tt.in))
			if string(h) != tt.header || string(b) != tt.body {
				t.Errorf("SplitRecording(%q) = %q, %q; want %q, %q", tt.in, h, b, tt.header, tt.body)
			}
		})
	}
}

func TestDNSServer(t *testing.T) {
	s, err := NewDNSServer("realmail.test",
		"@ 300 IN MX 10 mail.realmail.test.",
		"mail 300 IN A 127.0.0.1",
		"_imaps._tcp 300 IN SRV 0 1 993 mail.realmail.test.",
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add("mail.elsewhere.test. 300 IN A 127.0.0.1"); err == nil {
		t.Error("Add accepted a record outside the zone")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	tests := []struct {
		name, qname string
		qtype       uint16
		rcode       int
		answers     int
		soa         bool
	}{
		{"A", "mail.realmail.test.", dns.TypeA, dns.RcodeSuccess, 1, false},
		{"case-insensitive", "MAIL.RealMail.Test.", dns.TypeA, dns.RcodeSuccess, 1, false},
		{"MX", "realmail.test.", dns.TypeMX, dns.RcodeSuccess, 1, false},
		{"SRV", "_imaps._tcp.realmail.test.", dns.TypeSRV, dns.RcodeSuccess, 1, false},
		{"NODATA", "mail.realmail.test.", dns.TypeAAAA, dns.RcodeSuccess, 0, true},
		{"empty non-terminal", "_tcp.realmail.test.", dns.TypeA, dns.RcodeSuccess, 0, true},
		{"NXDOMAIN", "nope.realmail.test.", dns.TypeA, dns.RcodeNameError, 0, true},
		{"SOA", "realmail.test.", dns.TypeSOA, dns.RcodeSuccess, 1, false},
		{"outside the zone", "example.com.", dns.TypeA, dns.RcodeRefused, 0, false},
	}
	for _, proto := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				m := new(dns.Msg)
				m.SetQuestion(tt.qname, tt.qtype)
				c := &dns.Client{Net: proto, Timeout: 5 * time.Second}
				r, _, err := c.Exchange(m, s.Addr)
				if err != nil {
					t.Fatal(err)
				}
				gotSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA
				if r.Rcode != tt.rcode || len(r.Answer) != tt.answers || gotSOA != tt.soa {
					t.Errorf("%s %s = %s, %d answers, SOA %v; want %s, %d, %v", tt.qname, dns.TypeToString[tt.qtype],
						dns.RcodeToString[r.Rcode], len(r.Answer), gotSOA, dns.RcodeToString[tt.rcode], tt.answers, tt.soa)
				}
				if tt.rcode != dns.RcodeRefused && !r.Authoritative {
					t.Errorf("%s: answer not authoritative", tt.qname)
				}
			})
		}
	}
}

func TestFront(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	got := make(chan string, 1)
	go func() {
		c, err := backend.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		header, _ := r.ReadString('\n')
		line, _ := r.ReadString('\n')
		fmt.Fprintf(c, "echo %s", line)
		rest, _ := io.ReadAll(r) // until the client's half close
		got <- header + string(rest)
	}()
	f, err := NewFront(backend.Addr().String(), net.IPv4(127, 0, 1, 9))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := net.Dial("tcp", f.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "hello\r\n")
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || reply != "echo hello\r\n" {
		t.Fatalf("reply %q, %v; want the backend's echo", reply, err)
	}
	fmt.Fprint(c, "bye")
	c.(*net.TCPConn).CloseWrite()
	want := fmt.Sprintf("PROXY TCP4 127.0.1.9 127.0.0.1 %d %d\r\nbye", c.LocalAddr().(*net.TCPAddr).Port, f.Port)
	select {
	case s := <-got:
		if s != want {
			t.Errorf("backend saw %q, want %q", s, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend saw nothing")
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", f.Addr, time.Second); err == nil {
		t.Error("the front still accepts after Close")
	}
}

func TestFrontBackendDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	f, err := NewFront(dead, net.IPv4(127, 0, 1, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The front accepts, fails to reach the backend and resets: the RST
	// may even beat the end of the client's connect.
	c, err := net.Dial("tcp", f.Addr)
	if err == nil {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("a front to a dead backend: %v, want a reset or EOF", err)
	}
}

// fakeTB records what Require does instead of ending the test.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skip(args ...any)                  { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }

func TestRequireDecision(t *testing.T) {
	tests := []struct {
		name, reason, ci string
		skip, fail       bool
	}{
		{"can run", "", "", false, false},
		{"can run in CI", "", "true", false, false},
		{"missing locally", "needs root", "", true, false},
		{"missing in CI", "needs root", "true", false, true},
		{"CI not exactly true", "needs root", "1", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTB{TB: t}
			require(f, tt.reason, tt.ci)
			if (f.skipped != "") != tt.skip || (f.fatal != "") != tt.fail {
				t.Errorf("require(%q, CI=%q): skipped %q, failed %q", tt.reason, tt.ci, f.skipped, f.fatal)
			}
			if tt.reason != "" && !strings.Contains(f.skipped+f.fatal, tt.reason) {
				t.Errorf("the message %q does not give the reason %q", f.skipped+f.fatal, tt.reason)
			}
		})
	}
}

func TestVirtualMailboxesAndPasswd(t *testing.T) {
	accts := []Account{{Email: "Bob@realmail.test", Password: "b"}, {Email: "alice@realmail.test", Password: "a"}}
	want := "alice@realmail.test realmail.test/alice/Maildir/\nbob@realmail.test realmail.test/Bob/Maildir/\n"
	if got := virtualMailboxes(accts); got != want {
		t.Errorf("virtualMailboxes = %q, want %q", got, want)
	}
	path := t.TempDir() + "/users"
	if err := WritePasswdFile(path, accts); err != nil {
		t.Fatal(err)
	}
	if err := WritePasswdFile(path, []Account{{Email: "a:b", Password: "x"}}); err == nil {
		t.Error("WritePasswdFile accepted a user name with a colon")
	}
	h, err := ssha512("secret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "{SSHA512}") || len(h) != len("{SSHA512}")+96 {
		t.Errorf("ssha512 = %q: want {SSHA512} and base64 of 64+8 bytes", h)
	}
}

func TestDotStuff(t *testing.T) {
	got := dotStuff([]byte("a\n.b\r\n..c\n"))
	if want := []byte("a\r\n..b\r\n...c\r\n.\r\n"); !bytes.Equal(got, want) {
		t.Errorf("dotStuff = %q, want %q", got, want)
	}
}

func TestStableError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var d net.Dialer
	_, err := d.DialContext(ctx, "tcp", "127.0.0.1:1")
	if s := stableError(err); strings.Contains(s, "127.0.0.1") {
		t.Errorf("stableError(%v) = %q keeps the address", err, s)
	}
	if s := stableError(io.EOF); s != "the server closed the connection" {
		t.Errorf("stableError(EOF) = %q", s)
	}
}

func TestSiteClientIP(t *testing.T) {
	s := &Site{}
	want := []string{"127.0.1.1", "127.0.1.2"}
	for i, w := range want {
		if got := s.ClientIP().String(); got != w {
			t.Errorf("ClientIP #%d = %s, want %s", i+1, got, w)
		}
	}
	for range 251 {
		s.ClientIP()
	}
	if got := s.ClientIP().String(); got != "127.0.1.254" {
		t.Errorf("ClientIP #254 = %s, want 127.0.1.254", got)
	}
	if got := s.ClientIP().String(); got != "127.0.2.1" {
		t.Errorf("ClientIP #255 = %s, want 127.0.2.1", got)
	}
}
