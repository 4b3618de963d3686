package discover_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mockdns "github.com/foxcpp/go-mockdns"

	"github.com/maillab/maillab/diagnose/discover"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/settings"
)

func startLab(t *testing.T) (*lab.Lab, *settings.Settings) {
	t.Helper()
	l, err := lab.Start(lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, l.Settings()
}

func step(r *discover.Result, client, method string) discover.Step {
	for _, s := range r.Steps {
		if s.Client == client && s.Method == method {
			return s
		}
	}
	return discover.Step{}
}

// sameServices checks that a discovered configuration names the lab's
// services (the ones it lists).
func sameServices(t *testing.T, who string, got *discover.Config, want *settings.Settings, names ...string) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s found nothing", who)
	}
	for _, name := range names {
		g, w := got.Settings.Services[name], want.Services[name]
		if g.Host != w.Host || g.Port != w.Port || g.Security != w.Security {
			t.Errorf("%s: %s = %+v, lab serves %+v", who, name, g, w)
		}
	}
	if len(got.Foreign) > 0 {
		t.Errorf("%s: foreign hosts %v in a configuration of the lab's own domain", who, got.Foreign)
	}
}

func TestDiscoverLabDocuments(t *testing.T) {
	l, s := startLab(t)
	r, err := discover.Discover(context.Background(), discover.Options{
		Email: s.Accounts[0].Email, Resolver: s.Resolver, Roots: l.CertPool(),
		HTTPSPort: s.Discovery.HTTPSPort, HTTPPort: s.Discovery.HTTPPort, NoGuess: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	sameServices(t, "thunderbird", r.Thunderbird, s, "imaps", "imap", "pop3s", "pop3", "submissions", "submission")
	if !strings.HasPrefix(r.Thunderbird.Source, "autoconfig-https https://autoconfig.example.test:") {
		t.Errorf("thunderbird source %q, want the HTTPS autoconfig", r.Thunderbird.Source)
	}
	if got := step(r, "thunderbird", "srv").Outcome; got != discover.Skipped {
		t.Errorf("srv step %q after autoconfig found it, want skipped", got)
	}
	sameServices(t, "outlook", r.Outlook, s, "imaps", "pop3s", "submissions")
	if u := r.Thunderbird.Settings.Accounts[0].Username; u != s.Accounts[0].Email {
		t.Errorf("user name %q, want the address", u)
	}
}

func TestDiscoverLabBySRV(t *testing.T) {
	l, s := startLab(t)
	// The standard web ports of the lab's address are not the lab's: the
	// documents are not found there and SRV records give the servers, as
	// for a real domain that publishes only SRV.
	for _, port := range []int{80, 443} {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			t.Skipf("something listens on 127.0.0.1:%d", port)
		}
	}
	r, err := discover.Discover(context.Background(), discover.Options{
		Email: s.Accounts[0].Email, Resolver: s.Resolver, Roots: l.CertPool(), NoGuess: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"autoconfig-https", "autoconfig-http", "well-known"} {
		if got := step(r, "thunderbird", m).Outcome; got != discover.Failed {
			t.Errorf("%s: %q, want failed (nothing on the standard port)", m, got)
		}
	}
	if got := step(r, "thunderbird", "ispdb"); got.Outcome != discover.Skipped || !strings.Contains(got.Detail, "internet") {
		t.Errorf("ispdb step %+v, want skipped (on the internet)", got)
	}
	sameServices(t, "thunderbird", r.Thunderbird, s, "imaps", "imap", "pop3s", "pop3", "submissions", "submission")
	if !strings.HasPrefix(r.Thunderbird.Source, "srv ") {
		t.Errorf("source %q, want srv", r.Thunderbird.Source)
	}
	if r.Outlook != nil {
		t.Errorf("outlook found %+v with no Autodiscover reachable", r.Outlook)
	}
}

// autodiscoverWeb is an HTTPS server for example.com (httptest's
// certificate names example.com and 127.0.0.1) whose DNS is a mock.
type autodiscoverWeb struct {
	srv   *httptest.Server
	dns   *mockdns.Server
	roots *x509.CertPool
	port  int
}

func newAutodiscoverWeb(t *testing.T, h http.HandlerFunc) *autodiscoverWeb {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	zones := map[string]mockdns.Zone{"example.com.": {A: []string{"127.0.0.1"}}}
	d, err := mockdns.NewServerWithLogger(zones, log.New(io.Discard, "", 0), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return &autodiscoverWeb{srv: srv, dns: d, roots: roots, port: srv.Listener.Addr().(*net.TCPAddr).Port}
}

func (w *autodiscoverWeb) discover(t *testing.T) *discover.Result {
	t.Helper()
	r, err := discover.Discover(context.Background(), discover.Options{
		Email: "alice@example.com", Resolver: w.dns.LocalAddr().String(), Roots: w.roots,
		HTTPSPort: w.port, HTTPPort: 1, NoGuess: true, StepTimeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const settingsAnswer = `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
 <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
  <Account><AccountType>email</AccountType><Action>settings</Action>
   <Protocol><Type>IMAP</Type><Server>%s</Server><Port>993</Port><LoginName>alice@example.com</LoginName><SSL>on</SSL></Protocol>
   <Protocol><Type>SMTP</Type><Server>%s</Server><Port>587</Port><SSL>on</SSL><Encryption>TLS</Encryption></Protocol>
  </Account>
 </Response>
</Autodiscover>`

func redirectAnswer(action, target string) string {
	elem := "RedirectUrl"
	if action == "redirectAddr" {
		elem = "RedirectAddr"
	}
	return fmt.Sprintf(`<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
 <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
  <Account><Action>%s</Action><%s>%s</%s></Account></Response></Autodiscover>`, action, elem, target, elem)
}

func TestAutodiscoverRedirects(t *testing.T) {
	tests := []struct {
		name    string
		handler func(port int) http.HandlerFunc
		outcome string
		detail  string
		foreign []string
	}{
		{"settings", func(int) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, settingsAnswer, "mail.example.com", "mail.example.com")
			}
		}, discover.Found, "imaps mail.example.com:993 SSL/TLS", nil},
		{"settings naming another provider", func(int) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, settingsAnswer, "imap.gmail.com", "smtp.gmail.com")
			}
		}, discover.Found, "imap.gmail.com", []string{"imap.gmail.com", "smtp.gmail.com"}},
		{"redirectUrl to a foreign host", func(port int) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				if r.Host == fmt.Sprintf("127.0.0.1:%d", port) {
					fmt.Fprintf(w, settingsAnswer, "mail.example.com", "mail.example.com")
					return
				}
				fmt.Fprint(w, redirectAnswer("redirectUrl", fmt.Sprintf("https://127.0.0.1:%d/autodiscover/autodiscover.xml", port)))
			}
		}, discover.Found, "after https://127.0.0.1:", []string{"127.0.0.1"}},
		{"redirect loop", func(port int) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, redirectAnswer("redirectUrl", fmt.Sprintf("https://example.com:%d/autodiscover/autodiscover.xml", port)))
			}
		}, discover.Failed, "redirect loop", nil},
		{"HTTP 302 to plain HTTP", func(port int) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://example.com/autodiscover/autodiscover.xml", http.StatusFound)
			}
		}, discover.Failed, "is not HTTPS", nil},
		{"error 500", func(int) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `<Autodiscover><Response><Error><ErrorCode>500</ErrorCode><Message>The e-mail address cannot be found.</Message></Error></Response></Autodiscover>`)
			}
		}, discover.NotFound, "Autodiscover error 500", nil},
		{"endless redirectAddr", func(int) http.HandlerFunc {
			// Thunderbird's lookups reach the same server at the same
			// time, so the counter is shared between handler goroutines.
			var n atomic.Int64
			return func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, redirectAnswer("redirectAddr", fmt.Sprintf("a%d@example.com", n.Add(1))))
			}
		}, discover.Failed, "more than 10 redirects", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var port int
			// The handler needs the server's port, known once it listens.
			var h atomic.Pointer[http.HandlerFunc]
			w := newAutodiscoverWeb(t, func(w http.ResponseWriter, r *http.Request) { (*h.Load())(w, r) })
			port = w.port
			handler := tt.handler(port)
			h.Store(&handler)
			r := w.discover(t)
			s := step(r, "outlook", "autodiscover")
			if s.Outcome != tt.outcome || !strings.Contains(s.Detail, tt.detail) {
				t.Fatalf("autodiscover step = %s %q, want %s containing %q", s.Outcome, s.Detail, tt.outcome, tt.detail)
			}
			if tt.outcome == discover.Found {
				if !sameSet(r.Outlook.Foreign, tt.foreign) {
					t.Errorf("foreign = %v, want %v", r.Outlook.Foreign, tt.foreign)
				}
			}
		})
	}
}

func TestParseAutodiscover(t *testing.T) {
	tests := []struct {
		name, doc string
		want      string
		err       bool
	}{
		{"settings", fmt.Sprintf(settingsAnswer, "m.example.com", "s.example.com"), "settings IMAP m.example.com:993 on; SMTP s.example.com:587 on TLS", false},
		{"redirect", redirectAnswer("redirectUrl", "https://x.example.com/a.xml"), "redirectUrl https://x.example.com/a.xml", false},
		{"error", `<Autodiscover><Response><Error><ErrorCode>600</ErrorCode><Message>Invalid Request</Message></Error></Response></Autodiscover>`, "error 600 Invalid Request", false},
		{"latin1", `<?xml version="1.0" encoding="ISO-8859-1"?><Autodiscover><Response><Account><Action>settings</Action></Account></Response></Autodiscover>`, "settings", false},
		{"html", `<html><body>It works!</body></html>`, "", true},
		{"empty", ``, "", true},
		{"no action", `<Autodiscover><Response><Account></Account></Response></Autodiscover>`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := discover.ParseAutodiscover([]byte(tt.doc))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if err != nil {
				return
			}
			var parts []string
			switch {
			case a.ErrorCode != 0:
				parts = append(parts, fmt.Sprintf("error %d %s", a.ErrorCode, a.ErrorMessage))
			case a.RedirectURL != "":
				parts = append(parts, a.Action+" "+a.RedirectURL)
			default:
				parts = append(parts, a.Action)
			}
			var protos []string
			for _, p := range a.Protocols {
				protos = append(protos, strings.TrimSpace(fmt.Sprintf("%s %s:%d %s %s", p.Type, p.Server, p.Port, p.SSL, p.Encryption)))
			}
			got := strings.Join(parts, " ")
			if len(protos) > 0 {
				got += " " + strings.Join(protos, "; ")
			}
			if got != tt.want {
				t.Errorf("ParseAutodiscover = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseAutodiscover(f *testing.F) {
	f.Add([]byte(fmt.Sprintf(settingsAnswer, "m.example.com", "s.example.com")))
	f.Add([]byte(redirectAnswer("redirectAddr", "x@y")))
	f.Add([]byte(`<Autodiscover><Response><Error><ErrorCode>x</ErrorCode></Error></Response></Autodiscover>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := discover.ParseAutodiscover(data)
		if err == nil && a.ErrorCode == 0 && a.Action == "" {
			t.Fatalf("accepted a document with neither Action nor Error: %q", data)
		}
	})
}

func TestCompare(t *testing.T) {
	published := &settings.Settings{Domain: "example.test", Services: map[string]settings.Service{
		"imaps":       {Host: "mail.example.test", Port: 993, Security: "tls"},
		"imap":        {Host: "mail.example.test", Port: 143, Security: "starttls"},
		"submission":  {Host: "mail.example.test", Port: 587, Security: "starttls"},
		"submissions": {Host: "mail.example.test", Port: 465, Security: "tls"},
	}, Accounts: []settings.Account{{Email: "alice@example.test", Username: "alice@example.test"}}}
	tests := []struct {
		name     string
		customer map[string]settings.Service
		user     string
		want     []string
	}{
		{"same", map[string]settings.Service{"imaps": {Host: "MAIL.example.test", Port: 993, Security: "tls"}}, "alice@example.test", nil},
		{"generic host", map[string]settings.Service{"imaps": {Host: "imap.gmail.com", Port: 993, Security: "tls"}}, "",
			[]string{"incoming server host imap.gmail.com; example.test publishes mail.example.test:993 SSL/TLS (imaps)"}},
		{"143 without STARTTLS", map[string]settings.Service{"imap": {Host: "mail.example.test", Port: 143, Security: "none"}}, "",
			[]string{"incoming server security no encryption; example.test publishes mail.example.test:993 SSL/TLS (imaps)", "incoming server port 143; example.test publishes mail.example.test:993 SSL/TLS (imaps)"}},
		{"wrong port and user", map[string]settings.Service{"submission": {Host: "mail.example.test", Port: 25, Security: "starttls"}}, "alice",
			[]string{"outgoing server port 25; example.test publishes mail.example.test:587 STARTTLS (submission)", "user name alice; example.test publishes alice@example.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &settings.Settings{Domain: "example.test", Services: tt.customer, Accounts: []settings.Account{{Email: "alice@example.test", Username: tt.user}}}
			var got []string
			for _, d := range discover.Compare(c, published) {
				got = append(got, d.Text)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") && !(len(got) == len(tt.want) && sameSet(got, tt.want)) {
				t.Errorf("Compare =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}
