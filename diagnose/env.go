package diagnose

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/maillab/maillab/diagnose/certcheck"
	"github.com/maillab/maillab/diagnose/dnsprobe"
	"github.com/maillab/maillab/settings"
)

// runEnv is what the service probes of one run share: the DNS client and
// its cache, the domain's MX and SRV records, the trusted roots and the
// login gate.
type runEnv struct {
	cfg   Config
	dns   *dnsprobe.Client
	roots *x509.CertPool
	// rootCerts are the certificates of the --ca roots, also in roots.
	rootCerts []*x509.Certificate
	fetch     func(ctx context.Context, url string) (*x509.Certificate, error)
	gate      *authGate
	domain    *domainInfo

	hostsMu sync.Mutex
	hosts   map[string]*hostLookup

	// caller is the context Run was given: once it is done, the run was
	// interrupted, and failures from then on are not the server's.
	caller context.Context
}

// interrupted reports whether the caller cancelled the run.
func (e *runEnv) interrupted() bool { return e.caller != nil && e.caller.Err() != nil }

type hostLookup struct {
	once sync.Once
	res  dnsprobe.HostResult
}

// lookupHost resolves name once per run.
func (e *runEnv) lookupHost(ctx context.Context, name string) dnsprobe.HostResult {
	key := strings.ToLower(name)
	e.hostsMu.Lock()
	h, ok := e.hosts[key]
	if !ok {
		h = &hostLookup{}
		e.hosts[key] = h
	}
	e.hostsMu.Unlock()
	h.once.Do(func() { h.res = e.dns.LookupHost(ctx, name) })
	return h.res
}

// resolverDesc names the resolver for evidence.
func (e *runEnv) resolverDesc() string {
	if e.cfg.Resolver != "" {
		return "the DNS server " + e.cfg.Resolver
	}
	servers, err := e.dns.ServerList()
	if err != nil {
		return "the system resolver"
	}
	return "the system's DNS server " + strings.Join(servers, ", ")
}

// srvServices are the RFC 6186 / RFC 8314 service labels per protocol, the
// implicit-TLS one first (RFC 8314 §5.1 prefers it).
var srvServices = map[string][]struct{ label, security string }{
	settings.ProtocolSMTP: {{"submissions", settings.SecurityTLS}, {"submission", settings.SecurityStartTLS}},
	settings.ProtocolIMAP: {{"imaps", settings.SecurityTLS}, {"imap", settings.SecurityStartTLS}},
	settings.ProtocolPOP3: {{"pop3s", settings.SecurityTLS}, {"pop3", settings.SecurityStartTLS}},
}

// domainInfo holds the mail-related DNS records of the account's domain.
type domainInfo struct {
	name string
	done chan struct{}

	mx         []dnsprobe.MX
	mxResult   dnsprobe.Result
	srv        map[string][]dnsprobe.SRV
	notOffered map[string]bool
	srvResult  map[string]dnsprobe.Result
}

// lookupDomain fetches MX and the six SRV records concurrently.
func (e *runEnv) lookupDomain(ctx context.Context) {
	d := e.domain
	defer close(d.done)
	if d.name == "" {
		return
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		mx, r := e.dns.LookupMX(ctx, d.name)
		mu.Lock()
		d.mx, d.mxResult = mx, r
		mu.Unlock()
	}()
	for _, list := range srvServices {
		for _, s := range list {
			wg.Add(1)
			go func(label string) {
				defer wg.Done()
				recs, notOffered, r := e.dns.LookupSRV(ctx, label, d.name)
				mu.Lock()
				d.srv[label], d.notOffered[label], d.srvResult[label] = recs, notOffered, r
				mu.Unlock()
			}(s.label)
		}
	}
	wg.Wait()
}

// wait blocks until the domain lookups are done or ctx ends.
func (d *domainInfo) wait(ctx context.Context) bool {
	select {
	case <-d.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// known reports whether the domain publishes any MX or SRV record.
func (d *domainInfo) known() bool {
	if len(d.mx) > 0 {
		return true
	}
	for _, recs := range d.srv {
		if len(recs) > 0 {
			return true
		}
	}
	return false
}

// candidate is a place a service may be reached.
type candidate struct {
	host     string
	port     int
	security string
	source   string
}

// String renders the candidate for evidence.
func (c candidate) String() string {
	return fmt.Sprintf("%s port %d (%s)", c.host, c.port, securityWord(c.security))
}

// srvCandidates returns the domain's SRV targets for protocol, implicit
// TLS first, in priority order.
func (d *domainInfo) srvCandidates(protocol string) []candidate {
	var out []candidate
	for _, s := range srvServices[protocol] {
		for _, r := range d.srv[s.label] {
			out = append(out, candidate{host: r.Target, port: int(r.Port), security: s.security, source: fmt.Sprintf("SRV _%s._tcp.%s", s.label, d.name)})
		}
	}
	return out
}

// suggestHost returns the host the domain publishes for protocol: an SRV
// target, else (for SMTP and as a last resort) the first MX host.
func (d *domainInfo) suggestHost(protocol string) (candidate, bool) {
	if c := d.srvCandidates(protocol); len(c) > 0 {
		return c[0], true
	}
	if len(d.mx) > 0 {
		return candidate{host: d.mx[0].Host, source: "MX " + d.name}, true
	}
	return candidate{}, false
}

// ownsHost reports whether host belongs to the domain: inside it, or in the
// registrable domain of one of its MX or SRV targets.
func (d *domainInfo) ownsHost(host string) bool {
	host = strings.ToLower(host)
	if host == d.name || strings.HasSuffix(host, "."+d.name) {
		return true
	}
	hd := certcheck.RegistrableDomain(host)
	for _, t := range d.targets() {
		if strings.EqualFold(t, host) || certcheck.RegistrableDomain(t) == hd {
			return true
		}
	}
	return false
}

// targets lists the MX and SRV target hosts.
func (d *domainInfo) targets() []string {
	var out []string
	for _, m := range d.mx {
		out = append(out, m.Host)
	}
	for _, list := range srvServices {
		for _, s := range list {
			for _, r := range d.srv[s.label] {
				out = append(out, r.Target)
			}
		}
	}
	return out
}

// describe lists the domain's records for evidence.
func (d *domainInfo) describe(protocol string) string {
	var parts []string
	if len(d.mx) > 0 {
		var hosts []string
		for _, m := range d.mx {
			hosts = append(hosts, m.Host)
		}
		parts = append(parts, "MX "+strings.Join(hosts, ", "))
	}
	for _, c := range d.srvCandidates(protocol) {
		parts = append(parts, fmt.Sprintf("%s → %s:%d", c.source, c.host, c.port))
	}
	if len(parts) == 0 {
		return "no MX or SRV records for " + d.name
	}
	return strings.Join(parts, "; ")
}

// authGate serializes login attempts: service i logs in only after every
// earlier service has finished its own attempt (or ended before it), and
// after one login was refused for bad credentials or a locked account, no
// other service tries the same credentials. Only the login is gated: a
// service releases the gate when its login step ends (the login functions
// defer finish), before its send or fetch test.
type authGate struct {
	mu     sync.Mutex
	names  []string
	done   []chan struct{}
	once   []sync.Once
	burned string
}

// newAuthGate returns a gate for the services named, in probe order.
func newAuthGate(names []string) *authGate {
	n := len(names)
	g := &authGate{names: names, done: make([]chan struct{}, n), once: make([]sync.Once, n)}
	for i := range g.done {
		g.done[i] = make(chan struct{})
	}
	return g
}

// wait blocks until the services before idx are past their login step.
// It returns the names of those it had to wait for (not yet past it when
// their turn came), and false when ctx ended first.
func (g *authGate) wait(ctx context.Context, idx int) (waitedFor []string, ok bool) {
	for j := 0; j < idx; j++ {
		select {
		case <-g.done[j]:
			continue
		default:
		}
		waitedFor = append(waitedFor, g.names[j])
		select {
		case <-g.done[j]:
		case <-ctx.Done():
			return waitedFor, false
		}
	}
	return waitedFor, true
}

// finish marks service idx past its login step.
func (g *authGate) finish(idx int) { g.once[idx].Do(func() { close(g.done[idx]) }) }

// burnedBy returns the service whose refused login forbids more attempts.
func (g *authGate) burnedBy() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.burned
}

func (g *authGate) burn(service string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.burned == "" {
		g.burned = service
	}
}

// dialAddr joins an address and port.
func dialAddr(ip string, port int) string { return net.JoinHostPort(ip, fmt.Sprint(port)) }
