package discover

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/maillab/maillab/diagnose"
	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/settings"
)

// Diagnose diagnoses cfg as diagnose.Run does and, beside it, repeats the
// account set-up of cfg's address (opts.Email defaults to cfg.Email) to
// judge how the client was set up: a configuration the domain's stale
// documents gave, servers an Autodiscover redirect to a foreign domain
// proposed, or a guess where the domain publishes nothing. Such a set-up
// fault becomes the root cause, and what the diagnosis found first
// becomes a finding beside it.
//
// Safety: when a server of cfg is a foreign host that discovery was led
// to (an Autodiscover redirect or a document naming another domain), the
// login is not tried there unless opts.AllowForeignHost: the password
// stays with the customer.
//
// Discovery runs only where the address has a domain; a resolver that
// fails the diagnosis ends it early (its lookups would only wait too).
func Diagnose(ctx context.Context, cfg diagnose.Config, opts Options) (*diagnose.Report, *Result, error) {
	if opts.Email == "" {
		opts.Email = cfg.Email
	}
	if opts.Resolver == "" {
		opts.Resolver = cfg.Resolver
	}
	if opts.StepTimeout == 0 {
		opts.StepTimeout = cfg.ConnectTimeout
	}
	if !strings.Contains(opts.Email, "@") {
		rep, err := diagnose.Run(ctx, cfg)
		return rep, nil, err
	}
	d := domainOf(opts.Email)
	var foreignHosts bool
	for _, s := range cfg.Services {
		if !inDomain(d, s.Host) {
			foreignHosts = true
		}
	}
	var res *Result
	withheld := []string{}
	if foreignHosts {
		// The servers are outside the domain: find out first whether
		// discovery proposed them, before any password goes there.
		res, _ = Discover(ctx, opts)
		if !opts.AllowForeignHost && res != nil && cfg.Password != "" {
			proposed := proposedForeign(res)
			for _, s := range cfg.Services {
				if slices.ContainsFunc(proposed, func(h string) bool { return strings.EqualFold(h, s.Host) }) {
					withheld = append(withheld, s.Host)
				}
			}
			if len(withheld) > 0 {
				cfg.Password = ""
			}
		}
		rep, err := diagnose.Run(ctx, cfg)
		if err != nil {
			return rep, res, err
		}
		judge(rep, res, cfg, withheld)
		return rep, res, nil
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, _ = Discover(dctx, opts)
	}()
	rep, err := diagnose.Run(ctx, cfg)
	if err != nil || rootcause.LayerOf(rep.RootCause) == rootcause.LayerResolver {
		cancel()
		<-done
		return rep, res, err
	}
	<-done
	judge(rep, res, cfg, nil)
	return rep, res, nil
}

func domainOf(email string) string {
	return strings.ToLower(strings.TrimSuffix(email[strings.LastIndexByte(email, '@')+1:], "."))
}

func inDomain(domain, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// proposedForeign lists the foreign hosts of what discovery found.
func proposedForeign(r *Result) []string {
	var out []string
	for _, c := range []*Config{r.Thunderbird, r.Outlook} {
		if c != nil {
			out = append(out, c.Foreign...)
		}
	}
	return out
}

// customerSettings is cfg's services as settings, for Compare.
func customerSettings(cfg diagnose.Config) *settings.Settings {
	s := &settings.Settings{Domain: cfg.Domain, Services: map[string]settings.Service{},
		Accounts: []settings.Account{{Email: cfg.Email, Username: cfg.Username}}}
	for _, svc := range cfg.Services {
		s.Services[svc.Name] = settings.Service{Host: svc.Host, Port: svc.Port, Security: svc.Security}
	}
	return s
}

// sameServers reports whether every service of the customer is what
// published lists for it (host, port and security).
func sameServers(customer, published *settings.Settings) bool {
	for _, d := range Compare(customer, published) {
		if d.Field != "user name" {
			return false
		}
	}
	return len(published.Services) > 0
}

// judge applies the set-up rules to a finished diagnosis.
func judge(rep *diagnose.Report, res *Result, cfg diagnose.Config, withheld []string) {
	if res == nil || rep == nil || rep.Interrupted {
		return
	}
	customer := customerSettings(cfg)
	if len(withheld) > 0 {
		rep.Findings = append(rep.Findings, diagnose.Finding{Severity: diagnose.SeverityWarning,
			Summary:  fmt.Sprintf("login not tried on %s: discovery was led there from outside the domain, and the password stays with the customer", strings.Join(withheld, ", ")),
			Evidence: strings.Join(res.Outlook.redirectsOr(res.Thunderbird), " → "),
			Fix:      "Give --allow-foreign-host only if the customer's provider really runs its mail there."})
	}
	if rep.Healthy() {
		return
	}
	first := firstFailing(rep, cfg)
	switch {
	case redirectedAbroad(res, customer):
		override(rep, rootcause.SetupRedirectForeign, first,
			fmt.Sprintf("the servers set up (%s) are those a redirect of the domain's Autodiscover to another domain proposed", strings.Join(hostsOf(customer), ", ")),
			strings.Join(res.Outlook.Redirects, " → "))
	case staleDocument(res, customer) != nil:
		doc := staleDocument(res, customer)
		override(rep, rootcause.SetupConfigStale, first,
			fmt.Sprintf("the client was set up as %s says (%s), but the domain's SRV records publish %s", doc.Source, describeSettings(doc.Settings), describeSettings(res.SRV.Settings)),
			doc.Source)
	case nothingPublished(res) && guessed(customer, domainOf(cfg.Email)):
		override(rep, rootcause.SetupNotPublished, first,
			fmt.Sprintf("%s publishes no mail configuration (no autoconfig, Autodiscover or SRV records), and the host set up (%s) is a wizard's guess", domainOf(cfg.Email), strings.Join(hostsOf(customer), ", ")),
			summarizeSteps(res))
	case res.Outlook == nil && outlookLoop(res) != nil && guessedNotPublished(res, customer, domainOf(cfg.Email)):
		override(rep, rootcause.SetupRedirectLoop, first,
			fmt.Sprintf("%s's Autodiscover redirects in a loop, so Outlook found no settings; the hosts set up (%s) are a guess, and the domain publishes %s", domainOf(cfg.Email), strings.Join(hostsOf(customer), ", "), describeSettings(published(res).Settings)),
			outlookLoop(res).Detail)
	case res.Outlook == nil && httpOnly(res) && guessedNotPublished(res, customer, domainOf(cfg.Email)):
		override(rep, rootcause.SetupHTTPOnly, first,
			fmt.Sprintf("%s publishes its configuration over plain HTTP only (%s), so clients that demand HTTPS found nothing; the hosts set up (%s) are a guess, and the domain publishes %s", domainOf(cfg.Email), res.Thunderbird.Source, strings.Join(hostsOf(customer), ", "), describeSettings(published(res).Settings)),
			summarizeSteps(res))
	case srvTargetNotOnCertificate(rep, res, customer, domainOf(cfg.Email)):
		override(rep, rootcause.TLSCertHostnameMismatch, first,
			fmt.Sprintf("the domain's SRV records name %s, the host set up, but the servers' certificate does not name it (RFC 6186 §6: the client checks the certificate against the domain or the SRV target); the address is the domain's own server, not another organisation's", strings.Join(hostsOf(customer), ", ")),
			res.SRV.Source)
		rep.Fix = fmt.Sprintf("In the mail client, set the servers by a name the certificate carries (the domain's own host name, not %s); have the domain's administrator point the SRV records at such a name or add %s to the certificate.", first.Host, first.Host)
	}
}

// outlookLoop is Outlook's Autodiscover step that ended in a redirect
// loop, or nil.
func outlookLoop(res *Result) *Step {
	for i, s := range res.Steps {
		if s.Client == outlook && s.Outcome == Failed && strings.HasPrefix(s.Detail, "redirect loop") {
			return &res.Steps[i]
		}
	}
	return nil
}

// httpOnly: Thunderbird found the domain's autoconfig over plain HTTP
// after its HTTPS fetch failed.
func httpOnly(res *Result) bool {
	if res.Thunderbird == nil || !strings.HasPrefix(res.Thunderbird.Source, "autoconfig-http ") {
		return false
	}
	for _, s := range res.Steps {
		if s.Client == thunderbird && s.Method == "autoconfig-https" {
			return s.Outcome == Failed || s.Outcome == NotFound
		}
	}
	return false
}

// published is what the domain publishes for Thunderbird, else its SRV
// records.
func published(res *Result) *Config {
	if res.Thunderbird != nil {
		return res.Thunderbird
	}
	return res.SRV
}

// guessedNotPublished: the customer's hosts are a wizard's guesses, and
// none of them is a host the domain publishes.
func guessedNotPublished(res *Result, customer *settings.Settings, domain string) bool {
	p := published(res)
	if p == nil || p.Settings == nil || !guessed(customer, domain) {
		return false
	}
	pub := hostsOf(p.Settings)
	for _, h := range hostsOf(customer) {
		if slices.ContainsFunc(pub, func(s string) bool { return sameHost(s, h) }) {
			return false
		}
	}
	return true
}

// srvTargetNotOnCertificate: the diagnosis met a certificate that does
// not name the host dialled (or took it for another organisation's
// server), the host is outside the domain, and it is what the domain's
// own SRV records name.
func srvTargetNotOnCertificate(rep *diagnose.Report, res *Result, customer *settings.Settings, domain string) bool {
	if rep.RootCause != rootcause.DNSWrongAddress && rep.RootCause != rootcause.TLSCertHostnameMismatch {
		return false
	}
	if res.SRV == nil || res.SRV.Settings == nil {
		return false
	}
	srvHosts := hostsOf(res.SRV.Settings)
	hosts := hostsOf(customer)
	for _, h := range hosts {
		if inDomain(domain, h) || !slices.ContainsFunc(srvHosts, func(s string) bool { return sameHost(s, h) }) {
			return false
		}
	}
	return len(hosts) > 0
}

func sameHost(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

func (c *Config) redirectsOr(other *Config) []string {
	if c != nil && len(c.Redirects) > 0 {
		return c.Redirects
	}
	if other != nil {
		return other.Redirects
	}
	return nil
}

// firstFailing is the service of the diagnosis's root cause.
func firstFailing(rep *diagnose.Report, cfg diagnose.Config) diagnose.Service {
	for _, sr := range rep.Services {
		if sr.OK {
			continue
		}
		for _, s := range cfg.Services {
			if s.Name == sr.Service {
				return s
			}
		}
	}
	if len(cfg.Services) > 0 {
		return cfg.Services[0]
	}
	return diagnose.Service{}
}

// override makes a set-up code the root cause and keeps the diagnosis's
// own root cause as a finding.
func override(rep *diagnose.Report, code rootcause.Code, svc diagnose.Service, summary, evidence string) {
	rep.Findings = append([]diagnose.Finding{{Code: rep.RootCause, Service: svc.Name, Severity: diagnose.SeverityError,
		Summary: rep.Summary, Fix: rep.Fix, Evidence: "what the client meets with these settings"}}, rep.Findings...)
	rep.RootCause = code
	rep.Summary = summary
	rep.Fix = rootcause.Fix(code, svc.Target())
	rep.Findings = append(rep.Findings, diagnose.Finding{Code: code, Service: svc.Name, Severity: diagnose.SeverityInfo,
		Summary: "account set-up", Evidence: evidence})
}

// redirectedAbroad: Outlook's Autodiscover was redirected to another
// domain, and the customer's servers are the foreign ones it proposed.
func redirectedAbroad(res *Result, customer *settings.Settings) bool {
	ol := res.Outlook
	if ol == nil || len(ol.Redirects) == 0 || len(ol.Foreign) == 0 {
		return false
	}
	for _, h := range hostsOf(customer) {
		if !slices.ContainsFunc(ol.Foreign, func(f string) bool { return strings.EqualFold(f, h) }) {
			return false
		}
	}
	return true
}

// staleDocument: the customer's servers are exactly what a set-up
// document (autoconfig, well-known or Autodiscover) publishes, and the
// domain's SRV records publish something else.
func staleDocument(res *Result, customer *settings.Settings) *Config {
	if res.SRV == nil {
		return nil
	}
	for _, c := range []*Config{res.Thunderbird, res.Outlook} {
		if c == nil || strings.HasPrefix(c.Source, "srv") || strings.HasPrefix(c.Source, "guess") {
			continue
		}
		if sameServers(customer, c.Settings) && !sameServers(customer, res.SRV.Settings) {
			return c
		}
	}
	return nil
}

// nothingPublished: neither client found a document and the SRV records
// definitively do not exist.
func nothingPublished(res *Result) bool {
	if res.Thunderbird != nil && !strings.HasPrefix(res.Thunderbird.Source, "guess") {
		return false
	}
	if res.Outlook != nil {
		return false
	}
	for _, s := range res.Steps {
		if s.Method == "srv" && s.Client == thunderbird {
			return s.Outcome == NotFound
		}
	}
	return false
}

// guessed: every host of the customer is one a wizard guesses.
func guessed(customer *settings.Settings, domain string) bool {
	hosts := hostsOf(customer)
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if !slices.Contains([]string{"imap." + domain, "pop3." + domain, "pop." + domain, "smtp." + domain, "mail." + domain, domain}, h) {
			return false
		}
	}
	return len(hosts) > 0
}

func summarizeSteps(res *Result) string {
	var parts []string
	for _, s := range res.Steps {
		if s.Outcome == Skipped {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s: %s", s.Client, s.Method, s.Outcome))
	}
	return strings.Join(parts, "; ")
}

// OptionsFor returns the discovery options of a settings file: its
// address, resolver and CA, and the web ports its Discovery names (a lab
// on free ports); the standard ports otherwise.
func OptionsFor(s *settings.Settings) (Options, error) {
	opts := Options{Email: s.Account0().Email, Resolver: s.Resolver}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return opts, fmt.Errorf("read CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return opts, fmt.Errorf("CA file %s holds no PEM certificate", s.CAFile)
		}
		opts.Roots = pool
	}
	if d := s.Discovery; d != nil {
		opts.HTTPSPort, opts.HTTPPort = d.HTTPSPort, d.HTTPPort
	}
	return opts, nil
}
