package lab_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/lab"
)

// TestLabOnIPv6Loopback is the regression test of issue 12, defect 7
// (`--address ::1` failed: 'A record "::1" is not an IPv4 address'): the
// lab's DNS publishes AAAA records, the certificate names ::1, and the
// settings' addresses work for a real submission.
func TestLabOnIPv6Loopback(t *testing.T) {
	probe, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback on this host: %v", err)
	}
	probe.Close()
	l := startLab(t, lab.Options{Address: "::1"})
	s := l.Settings()
	if !strings.HasPrefix(s.Resolver, "[::1]:") {
		t.Errorf("resolver %q, want [::1]:port", s.Resolver)
	}

	c := &dns.Client{Timeout: 5 * time.Second}
	for _, q := range []struct {
		qtype uint16
		want  string
	}{{dns.TypeAAAA, "::1"}} {
		m := new(dns.Msg)
		m.SetQuestion("mail.example.test.", q.qtype)
		r, _, err := c.Exchange(m, s.Resolver)
		if err != nil {
			t.Fatalf("query %s: %v", dns.TypeToString[q.qtype], err)
		}
		if len(r.Answer) == 0 || !strings.Contains(r.Answer[0].String(), q.want) {
			t.Errorf("%s mail.example.test = %v, want %s", dns.TypeToString[q.qtype], r.Answer, q.want)
		}
	}

	// By name through the lab's DNS, and by address: the certificate
	// must verify both ways (the address through its IP SAN).
	imaps := s.Services["imaps"]
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Resolver)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, target := range []struct{ dial, serverName string }{
		{net.JoinHostPort(imaps.Host, fmt.Sprint(imaps.Port)), imaps.Host},
		{addr(imaps), "::1"},
	} {
		d := &tls.Dialer{NetDialer: &net.Dialer{Resolver: resolver}, Config: &tls.Config{RootCAs: l.CertPool(), ServerName: target.serverName}}
		conn, err := d.DialContext(ctx, "tcp", target.dial)
		if err != nil {
			t.Errorf("TLS dial %s as %s: %v", target.dial, target.serverName, err)
			continue
		}
		conn.Close()
	}
	submit(t, l, "submission", s.Accounts[1].Email, "over IPv6")
}
