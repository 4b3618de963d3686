package faults_test

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/maillab/maillab/diagnose/discover"
	"github.com/maillab/maillab/faults"
	"github.com/maillab/maillab/lab"
)

// discoverLab runs a client's account set-up against a lab with the lab's
// DNS, CA and web ports.
func discoverLab(t *testing.T, l *lab.Lab) *discover.Result {
	t.Helper()
	s := l.Settings()
	r, err := discover.Discover(context.Background(), discover.Options{
		Email: s.Accounts[0].Email, Resolver: s.Resolver, Roots: l.CertPool(),
		HTTPSPort: s.Discovery.HTTPSPort, HTTPPort: s.Discovery.HTTPPort, NoGuess: true, StepTimeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func stepOf(r *discover.Result, client, method string) discover.Step {
	for _, s := range r.Steps {
		if s.Client == client && s.Method == method {
			return s
		}
	}
	return discover.Step{}
}

func params(t *testing.T, doc string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	return n.Content[0]
}

func TestSetupStale(t *testing.T) {
	l := start(t, faults.Spec{Type: "setup-stale"})
	r := discoverLab(t, l)
	tb := r.Thunderbird
	if tb == nil || !strings.HasPrefix(tb.Source, "autoconfig-https") {
		t.Fatalf("thunderbird found %+v, want the stale autoconfig", tb)
	}
	imap, ok := tb.Settings.Services["imap"]
	if !ok || imap.Security != "none" || imap.Port != l.Service("imap").Port {
		t.Errorf("stale autoconfig gives imap %+v, want port %d without encryption", imap, l.Service("imap").Port)
	}
	if _, ok := tb.Settings.Services["imaps"]; ok {
		t.Errorf("stale autoconfig still lists imaps: %+v", tb.Settings.Services)
	}
	if smtp := tb.Settings.Services["submission"]; smtp.Port != l.Service("smtp").Port || smtp.Security != "none" {
		t.Errorf("stale autoconfig gives outgoing %+v, want the relay port without encryption", smtp)
	}
}

func TestSetupHTTPOnly(t *testing.T) {
	l := start(t, faults.Spec{Type: "setup-http-only"})
	r := discoverLab(t, l)
	if s := stepOf(r, "thunderbird", "autoconfig-https"); s.Outcome != discover.Failed || !strings.Contains(s.Detail, "refused") {
		t.Errorf("autoconfig-https: %s %q, want failed: refused", s.Outcome, s.Detail)
	}
	if r.Thunderbird == nil || !strings.HasPrefix(r.Thunderbird.Source, "autoconfig-http ") {
		t.Errorf("thunderbird found %+v, want the HTTP autoconfig", r.Thunderbird)
	}
	if r.Outlook != nil {
		t.Errorf("outlook found %+v over a refused HTTPS port", r.Outlook)
	}
}

func TestSetupNone(t *testing.T) {
	l := start(t, faults.Spec{Type: "setup-none"})
	r := discoverLab(t, l)
	if r.Thunderbird != nil || r.Outlook != nil {
		t.Fatalf("found %+v / %+v where nothing is published", r.Thunderbird, r.Outlook)
	}
	if s := stepOf(r, "thunderbird", "srv"); s.Outcome != discover.NotFound {
		t.Errorf("srv step %s %q, want not found", s.Outcome, s.Detail)
	}
	// The guessed name reaches the web hoster, whose certificate does not
	// name the customer's domain.
	s := l.Settings()
	addr := net.JoinHostPort("127.0.0.4", strconv.Itoa(s.Services["imaps"].Port))
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: l.CertPool(), ServerName: "imap.example.test"})
	if err == nil {
		c.Close()
		t.Fatal("imap.example.test's guessed server presented a certificate for it")
	}
	if !strings.Contains(err.Error(), "imap.webhost.test") {
		t.Errorf("handshake error %v, want a certificate for the hoster's names", err)
	}
}

func TestAutodiscoverRedirectForeign(t *testing.T) {
	l := start(t, faults.Spec{Type: "autodiscover-redirect"})
	r := discoverLab(t, l)
	ol := r.Outlook
	if ol == nil {
		t.Fatalf("outlook found nothing; steps %+v", r.Steps)
	}
	if !contains(ol.Foreign, "autodiscover.mail-settings.test") || !contains(ol.Foreign, "mail.mail-settings.test") {
		t.Errorf("foreign hosts %v, want the redirect target and its mail host", ol.Foreign)
	}
	if imaps := ol.Settings.Services["imaps"]; imaps.Host != "mail.mail-settings.test" {
		t.Errorf("outlook would use %+v, want the stranger's server", imaps)
	}
}

func TestAutodiscoverRedirectLoop(t *testing.T) {
	l := start(t, faults.Spec{Type: "autodiscover-redirect", Params: params(t, "loop: true")})
	r := discoverLab(t, l)
	if r.Outlook != nil {
		t.Fatalf("outlook found %+v in a redirect loop", r.Outlook)
	}
	if s := stepOf(r, "outlook", "autodiscover"); s.Outcome != discover.Failed || !strings.Contains(s.Detail, "redirect loop") {
		t.Errorf("autodiscover step %s %q, want a redirect loop", s.Outcome, s.Detail)
	}
}

func TestSRVForeignTarget(t *testing.T) {
	l := start(t, faults.Spec{Type: "srv-foreign-target"})
	s := l.Settings()
	r, err := discover.Discover(context.Background(), discover.Options{
		Email: s.Accounts[0].Email, Resolver: s.Resolver, Roots: l.CertPool(), HTTPSPort: 1, HTTPPort: 1, NoGuess: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	tb := r.Thunderbird
	if tb == nil || !strings.HasPrefix(tb.Source, "srv") || tb.Settings.Services["imaps"].Host != "mail.hosting.test" {
		t.Fatalf("thunderbird found %+v, want SRV naming mail.hosting.test", tb)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Services["imaps"].Port))
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: l.CertPool(), ServerName: "mail.hosting.test"}); err == nil {
		c.Close()
		t.Error("the certificate names the SRV target; want a mismatch")
	}
}

// TestSRVForeignTargetWithoutDocuments: documents: false withdraws the
// autoconfig and Autodiscover documents, so the SRV records, still naming
// the foreign target, are what discovery finds; with the default the
// documents stay and win.
func TestSRVForeignTargetWithoutDocuments(t *testing.T) {
	for _, tc := range []struct {
		params     string
		wantSource string
	}{
		{"documents: false", "srv"},
		{"target: mail.hosting.test", "autoconfig-https"},
	} {
		t.Run(tc.params, func(t *testing.T) {
			l := start(t, faults.Spec{Type: "srv-foreign-target", Params: params(t, tc.params)})
			r := discoverLab(t, l)
			tb := r.Thunderbird
			if tb == nil || !strings.HasPrefix(tb.Source, tc.wantSource) {
				t.Fatalf("thunderbird found %+v, want a configuration from %s", tb, tc.wantSource)
			}
			if r.SRV == nil || r.SRV.Settings.Services["imaps"].Host != "mail.hosting.test" {
				t.Errorf("SRV records give %+v, want mail.hosting.test", r.SRV)
			}
			if tc.wantSource == "srv" && r.Outlook != nil {
				t.Errorf("outlook found %+v without documents", r.Outlook)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
