package discover

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/maillab/maillab/settings"
)

const outlook = "outlook"

// OutlookSchema is the response schema an Outlook client asks for.
const OutlookSchema = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"

// Autodiscover is a parsed POX Autodiscover response.
type Autodiscover struct {
	// Action is settings, redirectUrl or redirectAddr.
	Action string
	// RedirectURL and RedirectAddr are set with their actions.
	RedirectURL, RedirectAddr string
	// Protocols are the Protocol elements of the account.
	Protocols []AutodiscoverProtocol
	// ErrorCode and ErrorMessage are set for an error response.
	ErrorCode    int
	ErrorMessage string
}

// AutodiscoverProtocol is one Protocol element.
type AutodiscoverProtocol struct {
	Type       string // IMAP, POP3, SMTP (EXCH, EXPR and WEB are ignored)
	Server     string
	Port       int
	LoginName  string
	SSL        string // on or off (Exchange 2007)
	Encryption string // None, SSL, TLS, Auto (Outlook 2010 and later)
}

// ParseAutodiscover reads a POX Autodiscover response; element names are
// matched without their namespaces, as clients do.
func ParseAutodiscover(data []byte) (*Autodiscover, error) {
	var doc struct {
		XMLName  xml.Name
		Response struct {
			Error struct {
				ErrorCode string `xml:"ErrorCode"`
				Message   string `xml:"Message"`
			} `xml:"Error"`
			Account struct {
				Action       string `xml:"Action"`
				RedirectURL  string `xml:"RedirectUrl"`
				RedirectAddr string `xml:"RedirectAddr"`
				Protocol     []struct {
					Type       string `xml:"Type"`
					Server     string `xml:"Server"`
					Port       string `xml:"Port"`
					LoginName  string `xml:"LoginName"`
					SSL        string `xml:"SSL"`
					Encryption string `xml:"Encryption"`
				} `xml:"Protocol"`
				Error struct {
					ErrorCode string `xml:"ErrorCode"`
					Message   string `xml:"Message"`
				} `xml:"Error"`
			} `xml:"Account"`
		} `xml:"Response"`
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "us-ascii", "iso-8859-1", "latin1":
			return input, nil
		}
		return nil, fmt.Errorf("unsupported charset %q", charset)
	}
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not an Autodiscover document: %w", err)
	}
	if doc.XMLName.Local != "Autodiscover" {
		return nil, fmt.Errorf("root element is <%s>, want <Autodiscover>", doc.XMLName.Local)
	}
	a := &Autodiscover{}
	acct := doc.Response.Account
	a.Action = strings.TrimSpace(acct.Action)
	// Both spellings occur: RedirectUrl in the schema, RedirectURL in
	// some servers' output (xml matching is case-sensitive).
	a.RedirectURL = strings.TrimSpace(acct.RedirectURL)
	a.RedirectAddr = strings.TrimSpace(acct.RedirectAddr)
	for _, e := range [][2]string{{doc.Response.Error.ErrorCode, doc.Response.Error.Message}, {acct.Error.ErrorCode, acct.Error.Message}} {
		if c := strings.TrimSpace(e[0]); c != "" {
			a.ErrorCode, _ = strconv.Atoi(c)
			a.ErrorMessage = strings.TrimSpace(e[1])
		}
	}
	for _, p := range acct.Protocol {
		port, _ := strconv.Atoi(strings.TrimSpace(p.Port))
		a.Protocols = append(a.Protocols, AutodiscoverProtocol{
			Type: strings.ToUpper(strings.TrimSpace(p.Type)), Server: strings.TrimSpace(p.Server), Port: port,
			LoginName: strings.TrimSpace(p.LoginName), SSL: strings.ToLower(strings.TrimSpace(p.SSL)),
			Encryption: strings.TrimSpace(p.Encryption),
		})
	}
	if a.ErrorCode == 0 && a.Action == "" {
		return nil, fmt.Errorf("Autodiscover document has neither an Action nor an Error")
	}
	return a, nil
}

// security is the protocol's security mode: <Encryption> wins over <SSL>
// (Outlook 2010 and later); SSL on alone means implicit TLS on the
// standard implicit-TLS ports and STARTTLS elsewhere, as Outlook guesses.
func (p AutodiscoverProtocol) security() string {
	switch strings.ToLower(p.Encryption) {
	case "ssl":
		return settings.SecurityTLS
	case "tls":
		return settings.SecurityStartTLS
	case "none":
		return settings.SecurityNone
	}
	if p.SSL == "off" {
		return settings.SecurityNone
	}
	switch p.Port {
	case 993, 995, 465:
		return settings.SecurityTLS
	}
	return settings.SecurityStartTLS
}

// settings turns an Autodiscover settings answer into settings.
func (a *Autodiscover) settings(domain, email string) *settings.Settings {
	s := &settings.Settings{Domain: domain, Services: map[string]settings.Service{}}
	user := ""
	for _, p := range a.Protocols {
		proto := map[string]string{"IMAP": settings.ProtocolIMAP, "POP3": settings.ProtocolPOP3, "SMTP": settings.ProtocolSMTP}[p.Type]
		if proto == "" || p.Server == "" {
			continue
		}
		sec := p.security()
		port := p.Port
		if port == 0 {
			port = settings.StandardPort(proto, sec)
		}
		name := serviceName(proto, sec, port)
		if _, seen := s.Services[name]; name == "" || seen {
			continue
		}
		s.Services[name] = settings.Service{Host: p.Server, Port: port, Security: sec}
		if user == "" {
			user = p.LoginName
		}
	}
	if user == "" {
		user = email
	}
	s.Accounts = []settings.Account{{Email: email, Username: user}}
	return s
}

// outlook runs Outlook's Autodiscover lookups in order, following
// redirects (within bounds) from the first candidate that answers.
func (d *discoverer) outlook(ctx context.Context) ([]Step, *Config) {
	chain := func(u string) lookup {
		return lookup{"autodiscover", u, func(s *Step) *Config { return d.autodiscoverChain(ctx, s, u, d.opts.Email) }}
	}
	redirect := d.webURL("http", "autodiscover."+d.domain, "/autodiscover/autodiscover.xml")
	return firstFound(ctx, outlook, []lookup{
		chain(d.webURL("https", d.domain, "/autodiscover/autodiscover.xml")),
		chain(d.webURL("https", "autodiscover."+d.domain, "/autodiscover/autodiscover.xml")),
		{"autodiscover-http-redirect", redirect, func(s *Step) *Config { return d.autodiscoverHTTPRedirect(ctx, s, redirect) }},
		{"autodiscover-srv", "_autodiscover._tcp." + d.domain, func(s *Step) *Config { return d.autodiscoverSRV(ctx, s) }},
	})
}

// autodiscoverSRV follows the _autodiscover._tcp record to its HTTPS URL.
func (d *discoverer) autodiscoverSRV(ctx context.Context, s *Step) *Config {
	recs, _, r := d.dns.LookupSRV(ctx, "autodiscover", d.domain)
	if len(recs) == 0 {
		s.Outcome, s.Detail = NotFound, "no SRV record: "+r.Describe()
		return nil
	}
	u := (&url.URL{Scheme: "https", Host: fmt.Sprintf("%s:%d", recs[0].Target, recs[0].Port), Path: "/autodiscover/autodiscover.xml"}).String()
	found := d.autodiscoverChain(ctx, s, u, d.opts.Email)
	if found != nil && !d.inDomain(recs[0].Target) {
		found.Foreign = appendNew(found.Foreign, recs[0].Target)
	}
	return found
}

func appendNew(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

// autodiscoverHTTPRedirect does Outlook's unauthenticated GET of the
// HTTP URL: only a redirect to HTTPS is followed (to a POST there).
func (d *discoverer) autodiscoverHTTPRedirect(ctx context.Context, s *Step, u string) *Config {
	resp, _, err := d.fetch(ctx, http.MethodGet, u, nil)
	if err != nil {
		s.Outcome, s.Detail = Failed, describeErr(err)
		return nil
	}
	loc := resp.Header.Get("Location")
	if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
		s.Outcome, s.Detail = NotFound, "HTTP "+resp.Status+" (no redirect to HTTPS)"
		return nil
	}
	target, err := url.Parse(loc)
	if err != nil || target.Scheme != "https" {
		s.Outcome, s.Detail = Failed, "redirect to "+loc+" is not HTTPS; Outlook does not follow it"
		return nil
	}
	c := d.autodiscoverChain(ctx, s, target.String(), d.opts.Email)
	if c != nil {
		c.Redirects = append([]string{loc}, c.Redirects...)
		if !d.inDomain(target.Hostname()) {
			c.Foreign = appendNew(c.Foreign, target.Hostname())
		}
	}
	return c
}

// autodiscoverChain POSTs the request to u and follows HTTP and
// Autodiscover redirects up to maxRedirects, marking hosts outside the
// domain as foreign and stopping at a loop.
func (d *discoverer) autodiscoverChain(ctx context.Context, s *Step, u, email string) *Config {
	var redirects, foreign []string
	seen := map[string]bool{}
	for hop := 0; ; hop++ {
		if hop > maxRedirects {
			s.Outcome, s.Detail = Failed, fmt.Sprintf("more than %d redirects: %s", maxRedirects, strings.Join(redirects, " → "))
			return nil
		}
		key := strings.ToLower(u) + " " + strings.ToLower(email)
		if seen[key] {
			s.Outcome, s.Detail = Failed, "redirect loop: "+strings.Join(append(redirects, u), " → ")
			return nil
		}
		seen[key] = true
		if pu, err := url.Parse(u); err == nil && !d.inDomain(pu.Hostname()) {
			foreign = appendNew(foreign, pu.Hostname())
		}
		resp, body, err := d.fetch(ctx, http.MethodPost, u, autodiscoverRequest(email))
		if err != nil {
			s.Outcome, s.Detail = Failed, describeErr(err)
			return nil
		}
		if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode <= 399 && loc != "" {
			next, err := url.Parse(loc)
			if err != nil || next.Scheme != "https" {
				s.Outcome, s.Detail = Failed, "redirect to "+loc+" is not HTTPS; Outlook does not follow it"
				return nil
			}
			redirects = append(redirects, loc)
			u = next.String()
			continue
		}
		if resp.StatusCode != http.StatusOK {
			s.Outcome, s.Detail = NotFound, "HTTP "+resp.Status
			return nil
		}
		a, err := ParseAutodiscover(body)
		if err != nil {
			s.Outcome, s.Detail = Failed, "unusable document: "+err.Error()
			return nil
		}
		switch {
		case a.ErrorCode != 0:
			s.Outcome, s.Detail = NotFound, fmt.Sprintf("Autodiscover error %d: %s", a.ErrorCode, a.ErrorMessage)
			return nil
		case strings.EqualFold(a.Action, "redirectUrl"):
			next, err := url.Parse(a.RedirectURL)
			if err != nil || next.Scheme != "https" {
				s.Outcome, s.Detail = Failed, "redirectUrl "+a.RedirectURL+" is not HTTPS; Outlook does not follow it"
				return nil
			}
			redirects = append(redirects, a.RedirectURL)
			u = next.String()
		case strings.EqualFold(a.Action, "redirectAddr"):
			if !strings.Contains(a.RedirectAddr, "@") {
				s.Outcome, s.Detail = Failed, "redirectAddr "+a.RedirectAddr+" is not an address"
				return nil
			}
			redirects = append(redirects, "address "+a.RedirectAddr)
			email = a.RedirectAddr
			if at := strings.LastIndexByte(email, '@'); !d.inDomain(email[at+1:]) {
				foreign = appendNew(foreign, email[at+1:])
			}
		default:
			st := a.settings(d.domain, d.opts.Email)
			if len(st.Services) == 0 {
				s.Outcome, s.Detail = NotFound, "no IMAP, POP3 or SMTP protocol in the answer"
				return nil
			}
			s.Outcome, s.Detail = Found, describeSettings(st)
			if len(redirects) > 0 {
				s.Detail += " (after " + strings.Join(redirects, " → ") + ")"
			}
			for _, h := range d.foreign(hostsOf(st)...) {
				foreign = appendNew(foreign, h)
			}
			return &Config{Settings: st, Foreign: foreign, Redirects: redirects}
		}
	}
}

// autodiscoverRequest is the POX request body Outlook sends.
func autodiscoverRequest(email string) []byte {
	var b strings.Builder
	xml.EscapeText(&b, []byte(email))
	return []byte(`<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>` + b.String() + `</EMailAddress>
    <AcceptableResponseSchema>` + OutlookSchema + `</AcceptableResponseSchema>
  </Request>
</Autodiscover>`)
}
