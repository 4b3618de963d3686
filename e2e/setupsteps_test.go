//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
)

// Real-client steps of the account set-up scenarios: curl fetches what a
// wizard fetches, over HTTPS with the lab CA, the web hosts resolved
// through the customer's resolver.

// curlSetup fetches one of the lab's set-up documents: "autoconfig" (GET
// over HTTPS), "autoconfig-http" (the same over plain HTTP, Thunderbird's
// fallback) or "autodiscover" (POST of Outlook's request for the
// customer's address over HTTPS).
func curlSetup(doc string, x expectation) step {
	return step{name: "curl-" + doc, client: "curl", does: "fetch the domain's " + doc + " document as a wizard does", expect: x,
		run: func(e *scenarioEnv) result {
			d := e.r.Lab.Settings().Discovery
			raw := d.Autoconfig + "?emailaddress=" + url.QueryEscape(e.c.acct.Email)
			var extra []string
			if doc == "autoconfig-http" {
				raw = fmt.Sprintf("http://autoconfig.%s:%d/mail/config-v1.1.xml?emailaddress=%s", e.r.Lab.Domain, d.HTTPPort, url.QueryEscape(e.c.acct.Email))
			}
			if doc == "autodiscover" {
				raw = fmt.Sprintf("https://%s:%d/autodiscover/autodiscover.xml", e.r.Lab.Domain, d.HTTPSPort)
				body := filepath.Join(e.t.TempDir(), "autodiscover-request.xml")
				req := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>` +
					e.c.acct.Email + `</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
				if err := os.WriteFile(body, []byte(req), 0o644); err != nil {
					e.t.Fatal(err)
				}
				extra = []string{"-H", "Content-Type: text/xml", "--data-binary", "@" + body}
			}
			u, err := url.Parse(raw)
			if err != nil {
				e.t.Fatal(err)
			}
			args := []string{"-sS", "--connect-timeout", "3", "--max-time", "15", "--cacert", e.c.s.CAFile}
			if ip := e.c.tryIP(u.Hostname()); ip != "" {
				args = append(args, "--resolve", fmt.Sprintf("%s:%s:%s", u.Hostname(), u.Port(), ip))
			}
			return run(e.t, command{client: "curl", args: append(append(args, extra...), raw)})
		}}
}

// tryIP resolves host through the customer's resolver; "" when it does
// not resolve (curl then fails to resolve it, as the wizard would).
func (c *mailClient) tryIP(host string) string {
	c.t.Helper()
	for _, a := range parseDigShort(c.dig("+short", host, "A").out) {
		if ip := net.ParseIP(a); ip != nil && ip.To4() != nil {
			return a
		}
	}
	return ""
}

// digSRV asks the customer's resolver for the domain's RFC 6186 SRV
// record of a service label such as "_imaps._tcp".
func digSRV(label string, x expectation) step {
	return step{name: "dig-srv" + label, client: "dig", does: "SRV query for " + label + " of the domain at the customer's resolver", expect: x,
		run: func(e *scenarioEnv) result { return e.c.dig(label+"."+e.r.Lab.Domain, "SRV") }}
}
