package diagnose

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/maillab/maillab/diagnose/certcheck"
	"github.com/maillab/maillab/diagnose/dnsprobe"
	"github.com/maillab/maillab/rootcause"
)

// ErrInterrupted is wrapped by the error of a run whose context was
// cancelled (Ctrl-C): its Report holds the steps so far, no root cause and
// no findings.
var ErrInterrupted = errors.New("diagnosis interrupted")

// Run probes every service of cfg concurrently and returns the report. An
// error means the diagnoser could not run (a bad Config, an unreadable CA
// file) or was interrupted (ErrInterrupted, with a partial Report);
// everything wrong with the servers is in the Report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	roots, rootCerts, err := loadRoots(c)
	if err != nil {
		return nil, err
	}
	dc := &dnsprobe.Client{ResolvConf: c.ResolvConf, HostsFile: c.HostsFile, Timeout: c.ConnectTimeout}
	if c.Resolver != "" {
		dc.Servers = []string{c.Resolver}
	}
	if _, err := dc.ServerList(); err != nil {
		return nil, &UsageError{Field: "resolv.conf", Msg: err.Error()}
	}
	env := &runEnv{
		cfg:       c,
		dns:       dc,
		roots:     roots,
		rootCerts: rootCerts,
		fetch:     certcheck.HTTPFetcher(c.ConnectTimeout),
		gate:      newAuthGate(serviceNames(c.Services)),
		domain:    &domainInfo{name: c.Domain, done: make(chan struct{}), srv: map[string][]dnsprobe.SRV{}, notOffered: map[string]bool{}, srvResult: map[string]dnsprobe.Result{}},
		hosts:     map[string]*hostLookup{},
	}
	env.caller = ctx
	// A safety net above the per-step deadlines: no run outlives it.
	ctx, cancel := context.WithTimeout(ctx, safetyNet(c))
	defer cancel()
	go env.lookupDomain(ctx)
	probers := make([]*prober, len(c.Services))
	var wg sync.WaitGroup
	for i := range c.Services {
		probers[i] = newProber(env, i)
		wg.Add(1)
		go func(p *prober) {
			defer wg.Done()
			p.run(ctx)
		}(probers[i])
	}
	wg.Wait()
	env.domain.wait(ctx)
	if env.interrupted() {
		return interruptedReport(probers), fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(env.caller))
	}
	return assemble(env, probers), nil
}

// safetyNet bounds a whole run, far above what its steps' deadlines add
// up to on one service (the services run concurrently).
func safetyNet(c Config) time.Duration {
	return 20*c.ConnectTimeout + 8*c.ReplyTimeout + 5*time.Second
}

// interruptedReport holds the steps probed before the run was cancelled:
// no root cause, no findings (a cancelled wait says nothing about the
// server).
func interruptedReport(probers []*prober) *Report {
	rep := &Report{
		Interrupted: true,
		Summary:     "the diagnosis was interrupted before it finished; the steps below ran before the interruption",
		Findings:    []Finding{},
	}
	derive(probers)
	for _, p := range probers {
		rep.Services = append(rep.Services, p.report())
	}
	return rep
}

// serviceNames returns the services' names in order.
func serviceNames(services []Service) []string {
	names := make([]string, len(services))
	for i, s := range services {
		names[i] = s.Name
	}
	return names
}

// loadRoots returns the system roots plus CAFile and CAPEM, and the
// certificates of CAFile and CAPEM (certcheck.Input.RootCerts).
func loadRoots(c Config) (*x509.CertPool, []*x509.Certificate, error) {
	var pool *x509.CertPool
	if !c.NoSystemRoots {
		if sys, err := x509.SystemCertPool(); err == nil {
			pool = sys.Clone()
		}
	}
	if pool == nil {
		pool = x509.NewCertPool()
	}
	var certs []*x509.Certificate
	if c.CAFile != "" {
		data, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, nil, &UsageError{Field: "--ca", Msg: err.Error()}
		}
		found := parsePEMCerts(data)
		if len(found) == 0 {
			return nil, nil, &UsageError{Field: "--ca", Msg: fmt.Sprintf("%s: no PEM certificate found", c.CAFile)}
		}
		certs = append(certs, found...)
	}
	if len(c.CAPEM) > 0 {
		found := parsePEMCerts(c.CAPEM)
		if len(found) == 0 {
			return nil, nil, &UsageError{Field: "ca", Msg: "no PEM certificate in the extra roots"}
		}
		certs = append(certs, found...)
	}
	for _, cert := range certs {
		pool.AddCert(cert)
	}
	return pool, certs, nil
}

// parsePEMCerts returns the certificates of the CERTIFICATE blocks in
// data, skipping blocks that do not parse, as x509.CertPool's
// AppendCertsFromPEM does.
func parsePEMCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for len(data) > 0 {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		out = append(out, cert)
	}
	return out
}

// assemble turns the probes into a Report: cross-service judgements, the
// root cause (lowest layer, then service order, then step order) and the
// findings.
func assemble(env *runEnv, probers []*prober) *Report {
	rep := &Report{}
	derive(probers)
	var all []*issue
	for _, p := range probers {
		sr := p.report()
		if nfd := p.notForDomain(); nfd != nil {
			is := *nfd
			is.stepIdx = -1
			if sr.OK {
				is.severity = SeverityWarning
				is.summary += " (it works, so this may be a hosting provider's server)"
			} else {
				is.severity = SeverityError
			}
			all = append(all, &is)
		}
		all = append(all, p.issues()...)
		rep.Services = append(rep.Services, sr)
	}
	var root *issue
	for _, is := range all {
		if is.severity != SeverityError || is.code == "" {
			continue
		}
		if root == nil || less(is, root) {
			root = is
		}
	}
	if root == nil {
		rep.RootCause = rootcause.Healthy
		var names []string
		for _, p := range probers {
			names = append(names, p.svc.Name)
		}
		rep.Summary = fmt.Sprintf("every configured service works: %s", strings.Join(names, ", "))
		rep.Fix = rootcause.Fix(rootcause.Healthy, rootcause.Target{})
		if skipped := skippedSteps(probers); skipped > 0 {
			rep.Summary += fmt.Sprintf(" (%d step(s) were not tested; see the findings)", skipped)
		}
	} else {
		rep.RootCause = root.code
		rep.Summary = fmt.Sprintf("%s: %s", serviceLabel(probers, root.service), root.summary)
		rep.Fix = root.fix
	}
	for _, is := range all {
		if is == root {
			continue
		}
		rep.Findings = append(rep.Findings, Finding{Code: is.code, Service: is.service, Severity: is.severity, Summary: is.summary, Evidence: is.evidence, Fix: is.fix})
	}
	slices.SortStableFunc(rep.Findings, func(a, b Finding) int { return severityRank(a.Severity) - severityRank(b.Severity) })
	if rep.Findings == nil {
		rep.Findings = []Finding{}
	}
	return rep
}

func less(a, b *issue) bool {
	if la, lb := layer(a.code), layer(b.code); la != lb {
		return la < lb
	}
	if a.svcIdx != b.svcIdx {
		return a.svcIdx < b.svcIdx
	}
	return a.stepIdx < b.stepIdx
}

func severityRank(s string) int {
	switch s {
	case SeverityError:
		return 0
	case SeverityWarning:
		return 1
	}
	return 2
}

func serviceLabel(probers []*prober, name string) string {
	for _, p := range probers {
		if p.svc.Name == name {
			return p.label()
		}
	}
	return name
}

func skippedSteps(probers []*prober) int {
	n := 0
	for _, p := range probers {
		for _, r := range p.results {
			if r.Skipped {
				n++
			}
		}
	}
	return n
}

// derive makes the judgements that need more than one step's result,
// once every service ran, on the recorded results: the one place that
// changes a step's code after the step. A hostname mismatch on another
// organisation's server becomes DNS_WRONG_ADDRESS (it needs the
// greeting, which comes after implicit TLS); one untrusted issuer across
// domains becomes TLS_INTERCEPTED (it needs the other services).
func derive(probers []*prober) {
	for _, p := range probers {
		if p.greeted {
			p.judgeWrongAddress()
		}
	}
	interceptionAcrossHosts(probers)
}

// interceptionAcrossHosts turns "untrusted" verdicts into TLS_INTERCEPTED
// when one untrusted issuer signed the certificates of hosts in different
// registrable domains: no real CA setup does that, a TLS-inspecting
// middlebox does.
func interceptionAcrossHosts(probers []*prober) {
	byIssuer := map[string][]*prober{}
	for _, p := range probers {
		if p.cert == nil || p.cert.Trusted {
			continue
		}
		switch p.cert.Code {
		case rootcause.TLSCertUntrusted, rootcause.TLSCertSelfSigned, rootcause.TLSCertChainIncomplete:
			byIssuer[p.cert.IssuerKey] = append(byIssuer[p.cert.IssuerKey], p)
		}
	}
	for _, ps := range byIssuer {
		doms := map[string]bool{}
		for _, p := range ps {
			doms[certcheck.RegistrableDomain(p.svc.Host)] = true
		}
		if len(doms) < 2 {
			continue
		}
		var hosts []string
		for d := range doms {
			hosts = append(hosts, d)
		}
		slices.Sort(hosts)
		for _, p := range ps {
			p.recode(p.certStep, rootcause.TLSIntercepted,
				fmt.Sprintf("one untrusted issuer %q signed the certificates of servers in different domains (%s): a TLS-inspecting device re-signs them", p.cert.Issuer, strings.Join(hosts, ", ")),
				defaultFix(rootcause.TLSIntercepted, p.svc))
		}
	}
}
