//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maillab/maillab/diagnose"
)

// TestSetupDocumentsWithCurl: curl fetches the lab's Mozilla autoconfig
// (both URLs Thunderbird tries) and POSTs an Autodiscover request as
// Outlook does, over HTTPS trusting only the lab CA, with the web hosts
// resolved through the lab's DNS.
func TestSetupDocumentsWithCurl(t *testing.T) {
	t.Parallel()
	_, s := startLab(t)
	c := newMailClient(t, "lab", s)
	alice := s.Accounts[0]
	get := func(rawURL string, extra ...string) result {
		u, err := url.Parse(rawURL)
		if err != nil {
			t.Fatal(err)
		}
		host := u.Hostname()
		args := []string{"-sS", "--fail", "--connect-timeout", "3", "--max-time", "15", "--cacert", s.CAFile,
			"--resolve", fmt.Sprintf("%s:%s:%s", host, u.Port(), c.ip(host))}
		return run(t, command{client: "curl", args: append(append(args, extra...), rawURL)})
	}
	for _, u := range []string{s.Discovery.Autoconfig, s.Discovery.WellKnown} {
		r := get(u + "?emailaddress=" + url.QueryEscape(alice.Email))
		if r.exit != 0 {
			t.Fatalf("curl %s: %s", u, r)
		}
		ac, err := diagnose.ParseAutoconfig(u, []byte(r.out))
		if err != nil {
			t.Fatalf("autoconfig from %s: %v\n%s", u, err, r.out)
		}
		imaps := s.Services["imaps"]
		if ac.Incoming[0].Hostname != imaps.Host || ac.Incoming[0].Port != imaps.Port || ac.Incoming[0].Security != "tls" {
			t.Errorf("first incoming server %+v, want %s:%d SSL", ac.Incoming[0], imaps.Host, imaps.Port)
		}
	}
	req := filepath.Join(t.TempDir(), "autodiscover.xml")
	body := `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>` + alice.Email + `</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
	if err := os.WriteFile(req, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r := get(s.Discovery.Autodiscover, "-H", "Content-Type: text/xml", "--data-binary", "@"+req)
	if r.exit != 0 {
		t.Fatalf("curl POST autodiscover: %s", r)
	}
	want := fmt.Sprintf("<Type>IMAP</Type>\n        <Server>%s</Server>\n        <Port>%d</Port>", s.Services["imaps"].Host, s.Services["imaps"].Port)
	if !strings.Contains(r.out, want) || !strings.Contains(r.out, "<Action>settings</Action>") {
		t.Errorf("autodiscover response lacks %q:\n%s", want, r.out)
	}
}
