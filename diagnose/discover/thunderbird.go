package discover

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/maillab/maillab/diagnose"
	"github.com/maillab/maillab/settings"
)

const thunderbird = "thunderbird"

// thunderbird runs Thunderbird's account set-up lookups in its order and
// stops at the first that finds a configuration; the later ones are
// listed as skipped.
func (d *discoverer) thunderbird(ctx context.Context) ([]Step, *Config) {
	query := "?emailaddress=" + url.QueryEscape(d.opts.Email)
	autoconfig := func(method, u string) lookup {
		return lookup{method, u, func(s *Step) *Config { return d.autoconfig(ctx, s, u+query) }}
	}
	lookups := []lookup{
		autoconfig("autoconfig-https", d.webURL("https", "autoconfig."+d.domain, "/mail/config-v1.1.xml")),
		autoconfig("autoconfig-http", d.webURL("http", "autoconfig."+d.domain, "/mail/config-v1.1.xml")),
		autoconfig("well-known", d.webURL("https", d.domain, "/.well-known/autoconfig/mail/config-v1.1.xml")),
		autoconfig("well-known", d.webURL("http", d.domain, "/.well-known/autoconfig/mail/config-v1.1.xml")),
		{"ispdb", "https://autoconfig.thunderbird.net/v1.1/" + d.domain, func(s *Step) *Config {
			s.Outcome = Skipped
			s.Detail = "Mozilla's ISP database is on the internet; maillab never asks it"
			return nil
		}},
		{"srv", "_imaps._tcp." + d.domain + " and the other RFC 6186/8314 records", func(s *Step) *Config { return d.srv(ctx, s) }},
		{"mx", d.domain + " MX", func(s *Step) *Config { return d.mx(ctx, s) }},
		{"guess", "imap." + d.domain + ", mail." + d.domain + ", " + d.domain + " on the standard ports", func(s *Step) *Config {
			if d.opts.NoGuess {
				s.Outcome, s.Detail = Skipped, "guessing turned off"
				return nil
			}
			return d.guess(ctx, s)
		}},
	}
	return firstFound(ctx, thunderbird, lookups)
}

// lookup is one step of a client's account set-up: its method, what it
// asks, and how; run fills the step and returns what it found, if any.
type lookup struct {
	method, target string
	run            func(*Step) *Config
}

// firstFound runs a client's lookups in order, timing each, until one
// finds a configuration; the later ones (or all, once ctx is done) are
// listed as skipped.
func firstFound(ctx context.Context, client string, lookups []lookup) ([]Step, *Config) {
	var steps []Step
	var found *Config
	for _, l := range lookups {
		s := Step{Client: client, Method: l.method, Target: l.target}
		switch {
		case ctx.Err() != nil:
			s.Outcome, s.Detail = Skipped, "cancelled"
		case found != nil:
			s.Outcome, s.Detail = Skipped, "not needed: found by "+found.Source
		default:
			s = timed(s, func(s *Step) {
				if found = l.run(s); found != nil && found.Source == "" {
					found.Source = s.Method + " " + s.Target
				}
			})
		}
		steps = append(steps, s)
	}
	return steps, found
}

// autoconfig fetches and parses one autoconfig URL.
func (d *discoverer) autoconfig(ctx context.Context, s *Step, u string) *Config {
	resp, body, err := d.fetch(ctx, http.MethodGet, u, nil)
	if err != nil {
		s.Outcome, s.Detail = Failed, describeErr(err)
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		s.Outcome, s.Detail = NotFound, "HTTP "+resp.Status
		if loc := resp.Header.Get("Location"); loc != "" {
			// Thunderbird follows redirects of the autoconfig fetch only
			// within HTTPS; it is reported, not followed, here.
			s.Detail += " → " + loc
		}
		return nil
	}
	ac, err := diagnose.ParseAutoconfig(u, body)
	if err != nil {
		s.Outcome, s.Detail = Failed, "unusable document: "+err.Error()
		return nil
	}
	st := settingsFromAutoconfig(d.domain, d.opts.Email, ac)
	s.Outcome, s.Detail = Found, describeSettings(st)
	return &Config{Settings: st, Foreign: d.foreign(hostsOf(st)...)}
}

// srvServices are the RFC 6186 / RFC 8314 records, in the order of
// preference of RFC 8314 §5.1 (implicit TLS first).
var srvServices = []string{"imaps", "imap", "pop3s", "pop3", "submissions", "submission"}

// srv reads the RFC 6186/8314 SRV records.
func (d *discoverer) srv(ctx context.Context, s *Step) *Config {
	st := &settings.Settings{Domain: d.domain, Services: map[string]settings.Service{},
		Accounts: []settings.Account{{Email: d.opts.Email, Username: d.opts.Email}}}
	var notes []string
	definitive := true
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range srvServices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs, notOffered, r := d.dns.LookupSRV(ctx, name, d.domain)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case notOffered:
				notes = append(notes, "_"+name+": not offered")
			case len(recs) > 0:
				info, _ := settings.LookupService(name)
				st.Services[name] = settings.Service{Host: recs[0].Target, Port: int(recs[0].Port), Security: info.Security}
			default:
				notes = append(notes, "_"+name+": "+r.Describe())
				definitive = definitive && r.Outcome.Definitive()
			}
		}()
	}
	wg.Wait()
	if len(st.Services) == 0 {
		// Only answers that say "no such record" mean none is published;
		// a timeout or SERVFAIL says nothing.
		s.Outcome = NotFound
		if !definitive {
			s.Outcome = Failed
		}
		s.Detail = "no SRV record (" + strings.Join(notes, "; ") + ")"
		return nil
	}
	s.Outcome, s.Detail = Found, describeSettings(st)
	return &Config{Settings: st, Foreign: d.foreign(hostsOf(st)...)}
}

// mx reads the domain's MX: Thunderbird asks the ISP database for the MX
// host's domain, which is never asked here; the MX host is then one of the
// guesses.
func (d *discoverer) mx(ctx context.Context, s *Step) *Config {
	mxs, r := d.dns.LookupMX(ctx, d.domain)
	if len(mxs) == 0 {
		s.Outcome, s.Detail = NotFound, "no MX: "+r.Describe()
		return nil
	}
	s.Outcome = NotFound
	s.Detail = fmt.Sprintf("MX %s; the ISP database entry of its domain is on the internet and not asked", mxs[0].Host)
	return nil
}

// guessPorts are Thunderbird's guesses per protocol (GuessConfig.sys.mjs),
// implicit TLS first.
var guessPorts = []struct {
	proto, security string
	port            int
}{
	{settings.ProtocolIMAP, settings.SecurityTLS, 993}, {settings.ProtocolIMAP, settings.SecurityStartTLS, 143},
	{settings.ProtocolPOP3, settings.SecurityTLS, 995}, {settings.ProtocolPOP3, settings.SecurityStartTLS, 110},
	{settings.ProtocolSMTP, settings.SecurityTLS, 465}, {settings.ProtocolSMTP, settings.SecurityStartTLS, 587},
}

// guess probes common host names on the standard ports and keeps, per
// service, the first host that greets in that service's protocol.
func (d *discoverer) guess(ctx context.Context, s *Step) *Config {
	hosts := map[string][]string{
		settings.ProtocolIMAP: {"imap." + d.domain, "mail." + d.domain, d.domain},
		settings.ProtocolPOP3: {"pop3." + d.domain, "pop." + d.domain, "mail." + d.domain, d.domain},
		settings.ProtocolSMTP: {"smtp." + d.domain, "mail." + d.domain, d.domain},
	}
	type probe struct {
		name, host string
		port       int
		security   string
		rank       int
	}
	var probes []probe
	for _, g := range guessPorts {
		name := serviceName(g.proto, g.security, g.port)
		for i, h := range hosts[g.proto] {
			probes = append(probes, probe{name, h, g.port, g.security, i})
		}
	}
	ok := make([]bool, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok[i] = d.greets(ctx, p.host, p.port, p.security, protoOf(p.name))
		}()
	}
	wg.Wait()
	st := &settings.Settings{Domain: d.domain, Services: map[string]settings.Service{},
		Accounts: []settings.Account{{Email: d.opts.Email, Username: d.opts.Email}}}
	for i, p := range probes {
		if _, have := st.Services[p.name]; ok[i] && !have {
			st.Services[p.name] = settings.Service{Host: p.host, Port: p.port, Security: p.security}
		}
	}
	if len(st.Services) == 0 {
		s.Outcome, s.Detail = NotFound, fmt.Sprintf("no host answered on the standard ports (%d probes)", len(probes))
		return nil
	}
	s.Outcome, s.Detail = Found, describeSettings(st)
	return &Config{Settings: st, Foreign: d.foreign(hostsOf(st)...)}
}

func protoOf(name string) string {
	info, _ := settings.LookupService(name)
	return info.Protocol
}

// greets connects and reads the first line: "* OK" for IMAP, "+OK" for
// POP3, "220" for SMTP; over TLS on implicit-TLS ports (certificate not
// judged here: the diagnosis does that).
func (d *discoverer) greets(ctx context.Context, host string, port int, security, proto string) bool {
	ctx, cancel := context.WithTimeout(ctx, d.opts.ProbeTimeout)
	defer cancel()
	c, err := d.dial(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if security == settings.SecurityTLS {
		tc := tls.Client(c, &tls.Config{ServerName: host, InsecureSkipVerify: true})
		if err := tc.HandshakeContext(ctx); err != nil {
			return false
		}
		c = tc
	}
	line, err := bufio.NewReaderSize(c, 1024).ReadString('\n')
	if err != nil {
		return false
	}
	switch proto {
	case settings.ProtocolIMAP:
		return strings.HasPrefix(line, "* OK") || strings.HasPrefix(line, "* PREAUTH")
	case settings.ProtocolPOP3:
		return strings.HasPrefix(line, "+OK")
	case settings.ProtocolSMTP:
		return strings.HasPrefix(line, "220")
	}
	return false
}

// describeSettings is a one-line summary: "imaps mail.example.test:993
// SSL/TLS, submission mail.example.test:587 STARTTLS".
func describeSettings(s *settings.Settings) string {
	var parts []string
	for _, name := range s.SortedServiceNames() {
		svc := s.Services[name]
		parts = append(parts, fmt.Sprintf("%s %s:%d %s", name, svc.Host, svc.Port, SecurityLabel(svc.Security)))
	}
	return strings.Join(parts, ", ")
}

// SecurityLabel names a security mode as mail clients do.
func SecurityLabel(sec string) string {
	switch sec {
	case settings.SecurityTLS:
		return "SSL/TLS"
	case settings.SecurityStartTLS:
		return "STARTTLS"
	}
	return "no encryption"
}
