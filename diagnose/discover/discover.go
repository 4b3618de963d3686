// Package discover finds a mail account's servers from its e-mail address
// alone, the way mail clients' account wizards do, so a helpdesk that
// knows nothing but the customer's address can diagnose it.
//
// Thunderbird's order (comm-central mailnews/base/prefs/content/accountcreation
// FetchConfig, ExchangeAutoDiscover, GuessConfig): the provider's own
// autoconfig at autoconfig.DOMAIN over HTTPS then HTTP, the domain's
// well-known URL, Mozilla's ISP database (on the internet: never asked
// here, reported as skipped), RFC 6186/8314 SRV records, the MX host's
// domain, and finally guesses of common host names and ports, probed.
// Thunderbird 153 itself (its omni.ja, FindConfig.sys.mjs) does not ask
// the SRV records: that step is what RFC 6186 clients do, kept in this
// place; and it asks the HTTPS well-known URL before the HTTP autoconfig,
// all four in parallel, the first in this order winning (docs/thunderbird.md
// records what its Account Hub did against the lab).
// Outlook's order (Autodiscover, [MS-OXDISCO] §3.1.5): POST to
// https://DOMAIN/autodiscover/autodiscover.xml, then to
// https://autodiscover.DOMAIN/..., then an unauthenticated GET of
// http://autodiscover.DOMAIN/... that may redirect to HTTPS, then the
// _autodiscover._tcp SRV record.
//
// Discovery sends no password anywhere. Every step is bounded in time,
// and every host a step proposes that lies outside the address's domain
// is marked foreign: Autodiscover redirects are a known way to make a
// client send its credentials to a stranger, so a caller must not log in
// there without being told to.
package discover

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/maillab/maillab/diagnose"
	"github.com/maillab/maillab/diagnose/dnsprobe"
	"github.com/maillab/maillab/settings"
)

// Outcomes of a step.
const (
	Found    = "found"     // the step produced a configuration
	NotFound = "not found" // the step ran and found nothing usable
	Failed   = "failed"    // the step could not run to its end (refused, timeout, bad document)
	Skipped  = "skipped"   // the step was not run (offline, or an earlier step found the configuration)
)

// Step is one lookup a client's wizard makes.
type Step struct {
	// Client is "thunderbird" or "outlook".
	Client string `json:"client"`
	// Method names the lookup: autoconfig-https, autoconfig-http,
	// well-known, ispdb, srv, mx, guess, autodiscover.
	Method string `json:"method"`
	// Target is the URL or DNS name asked.
	Target string `json:"target"`
	// Outcome is Found, NotFound, Failed or Skipped.
	Outcome string `json:"outcome"`
	// Detail says what was seen (an HTTP status, a DNS answer, an error).
	Detail string `json:"detail,omitempty"`
	// Elapsed is how long the step took.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Config is what one client's discovery found.
type Config struct {
	// Source names the step that found it, e.g. "autoconfig-https
	// https://autoconfig.example.test/mail/config-v1.1.xml".
	Source string `json:"source"`
	// Settings holds the services found (Domain, Services; accounts with
	// the address as user name where the document says so).
	Settings *settings.Settings `json:"settings"`
	// Foreign lists hosts outside the address's domain that the
	// configuration names or that a redirect led to.
	Foreign []string `json:"foreign,omitempty"`
	// Redirects are the Autodiscover redirects followed, in order.
	Redirects []string `json:"redirects,omitempty"`
}

// Result is the outcome of Discover.
type Result struct {
	Email string `json:"email"`
	// Steps lists every lookup in the clients' order.
	Steps []Step `json:"steps"`
	// Thunderbird and Outlook are what each client would have set up; nil
	// when its discovery found nothing.
	Thunderbird *Config `json:"thunderbird,omitempty"`
	Outlook     *Config `json:"outlook,omitempty"`
	// SRV is what the domain's RFC 6186/8314 records say, asked always
	// (Thunderbird asks them only when its documents fail), to compare
	// with the documents; nil when there are none.
	SRV *Config `json:"srv,omitempty"`
	// Elapsed is the whole discovery's time.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Best is the configuration to diagnose: Thunderbird's, else Outlook's.
func (r *Result) Best() *Config {
	if r.Thunderbird != nil {
		return r.Thunderbird
	}
	return r.Outlook
}

// Options configures Discover. The zero value uses the system's resolver
// and roots, the standard web ports and a 5 s bound per step.
type Options struct {
	// Email is the address to set up.
	Email string
	// Resolver is a DNS server "host:port"; "" means the system's.
	Resolver string
	// Roots are the trusted CAs for HTTPS and TLS probes; nil means the
	// system's.
	Roots *x509.CertPool
	// HTTPSPort and HTTPPort are the web ports asked; 0 means 443 and 80.
	// A lab on free ports tells its own in its settings.
	HTTPSPort, HTTPPort int
	// StepTimeout bounds each step; 0 means 5 s.
	StepTimeout time.Duration
	// ProbeTimeout bounds each connection of the guessing step; 0 means 3 s.
	ProbeTimeout time.Duration
	// NoGuess skips the probing of common host names and ports.
	NoGuess bool
	// AllowForeignHost lets Diagnose log in on a server outside the
	// address's domain that discovery was led to.
	AllowForeignHost bool
	// ResolvConf and HostsFile replace the system files (tests).
	ResolvConf, HostsFile string
}

// maxDocument bounds a fetched document; real ones are a few kB.
const maxDocument = 1 << 20

// maxRedirects bounds Autodiscover redirects, as Outlook does (10).
const maxRedirects = 10

// Discover looks the account's servers up as Thunderbird and Outlook do.
// It returns an error only for a malformed address; what the lookups
// find or fail to find is in the Result.
func Discover(ctx context.Context, opts Options) (*Result, error) {
	at := strings.LastIndexByte(opts.Email, '@')
	if at <= 0 || at == len(opts.Email)-1 {
		return nil, fmt.Errorf("%q is not an e-mail address (local@domain)", opts.Email)
	}
	d := &discoverer{opts: opts, domain: strings.ToLower(strings.TrimSuffix(opts.Email[at+1:], "."))}
	if d.opts.HTTPSPort == 0 {
		d.opts.HTTPSPort = 443
	}
	if d.opts.HTTPPort == 0 {
		d.opts.HTTPPort = 80
	}
	if d.opts.StepTimeout == 0 {
		d.opts.StepTimeout = 5 * time.Second
	}
	if d.opts.ProbeTimeout == 0 {
		d.opts.ProbeTimeout = 3 * time.Second
	}
	d.dns = &dnsprobe.Client{ResolvConf: opts.ResolvConf, HostsFile: opts.HostsFile, Timeout: d.opts.StepTimeout}
	if opts.Resolver != "" {
		d.dns.Servers = []string{opts.Resolver}
	}
	start := time.Now()
	res := &Result{Email: opts.Email}
	var wg sync.WaitGroup
	var tb, ol []Step
	wg.Add(3)
	go func() { defer wg.Done(); tb, res.Thunderbird = d.thunderbird(ctx) }()
	go func() { defer wg.Done(); ol, res.Outlook = d.outlook(ctx) }()
	go func() {
		defer wg.Done()
		var s Step
		if res.SRV = d.srv(ctx, &s); res.SRV != nil {
			res.SRV.Source = "srv"
		}
	}()
	wg.Wait()
	res.Steps = append(tb, ol...)
	res.Elapsed = time.Since(start)
	return res, nil
}

type discoverer struct {
	opts   Options
	domain string
	dns    *dnsprobe.Client
}

// inDomain reports whether host is the domain or below it.
func (d *discoverer) inDomain(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == d.domain || strings.HasSuffix(host, "."+d.domain)
}

func (d *discoverer) foreign(hosts ...string) []string {
	var out []string
	for _, h := range hosts {
		if h != "" && !d.inDomain(h) && !contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// dial resolves host through the configured resolver and connects.
func (d *discoverer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip := host
	if net.ParseIP(host) == nil {
		hr := d.dns.LookupHost(ctx, host)
		if len(hr.Addrs) == 0 {
			return nil, fmt.Errorf("resolve %s: %s", host, hr.Describe())
		}
		ip = hr.Addrs[0].String()
	}
	var dialer net.Dialer
	return dialer.DialContext(ctx, network, net.JoinHostPort(ip, port))
}

// httpClient follows no redirects by itself: callers judge each one.
func (d *discoverer) httpClient() *http.Client {
	return &http.Client{
		Timeout: d.opts.StepTimeout,
		Transport: &http.Transport{
			DialContext:           d.dial,
			TLSClientConfig:       &tls.Config{RootCAs: d.opts.Roots},
			TLSHandshakeTimeout:   d.opts.StepTimeout,
			ResponseHeaderTimeout: d.opts.StepTimeout,
			DisableKeepAlives:     true,
			Proxy:                 nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// webURL is scheme://host[:port]path with the configured web port.
func (d *discoverer) webURL(scheme, host, path string) string {
	port := d.opts.HTTPSPort
	if scheme == "http" {
		port = d.opts.HTTPPort
	}
	u := url.URL{Scheme: scheme, Host: host, Path: path}
	if (scheme == "https" && port != 443) || (scheme == "http" && port != 80) {
		u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	return u.String()
}

// fetch GETs or POSTs url within the step bound and reads a bounded body.
func (d *discoverer) fetch(ctx context.Context, method, rawURL string, body []byte) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.StepTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/xml")
	}
	req.Header.Set("User-Agent", "maillab-discover")
	resp, err := d.httpClient().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return resp, nil, err
	}
	if len(data) > maxDocument {
		return resp, nil, fmt.Errorf("document larger than %d bytes", maxDocument)
	}
	return resp, data, nil
}

// describeErr shortens a client error to what a helpdesk reads.
func describeErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ce *tls.CertificateVerificationError
	switch {
	case errors.As(err, &ce):
		return "certificate not trusted: " + ce.Err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	}
	return err.Error()
}

// timed runs f and stamps the step with its duration.
func timed(s Step, f func(*Step)) Step {
	start := time.Now()
	f(&s)
	s.Elapsed = time.Since(start)
	return s
}

// settingsFromAutoconfig turns an autoconfig document into settings.
func settingsFromAutoconfig(domain, email string, ac *diagnose.Autoconfig) *settings.Settings {
	s := &settings.Settings{Domain: domain, Services: map[string]settings.Service{}}
	user := ""
	for _, srv := range append(append([]diagnose.AutoconfigServer(nil), ac.Incoming...), ac.Outgoing...) {
		name := serviceName(srv.Type, srv.Security, srv.Port)
		if name == "" {
			continue
		}
		if _, seen := s.Services[name]; seen {
			continue
		}
		s.Services[name] = settings.Service{Host: srv.Hostname, Port: srv.Port, Security: srv.Security}
		if user == "" {
			user = expandUser(srv.Username, email)
		}
	}
	if user == "" {
		user = email
	}
	s.Accounts = []settings.Account{{Email: email, Username: user}}
	return s
}

// serviceName maps a protocol and security mode to a settings service
// name (whose security the service then states): IMAP and POP3 with
// implicit TLS are imaps and pop3s, otherwise imap and pop3; SMTP with
// implicit TLS is submissions, otherwise submission — or smtp, the relay
// port, in the clear on port 25.
func serviceName(proto, security string, port int) string {
	switch proto {
	case settings.ProtocolIMAP, settings.ProtocolPOP3:
		if security == settings.SecurityTLS {
			return proto + "s"
		}
		return proto
	case settings.ProtocolSMTP:
		switch {
		case security == settings.SecurityTLS:
			return "submissions"
		case security == settings.SecurityNone && port == 25:
			return "smtp"
		}
		return "submission"
	}
	return ""
}

// expandUser fills the autoconfig placeholders.
func expandUser(tmpl, email string) string {
	at := strings.LastIndexByte(email, '@')
	r := strings.NewReplacer("%EMAILADDRESS%", email, "%EMAILLOCALPART%", email[:at], "%EMAILDOMAIN%", email[at+1:])
	return r.Replace(tmpl)
}

// hostsOf lists the hosts of a configuration.
func hostsOf(s *settings.Settings) []string {
	var out []string
	for _, name := range s.SortedServiceNames() {
		if h := s.Services[name].Host; !contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}
