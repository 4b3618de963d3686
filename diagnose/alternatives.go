package diagnose

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/maillab/maillab/diagnose/dnsprobe"
	"github.com/maillab/maillab/diagnose/wire"
	"github.com/maillab/maillab/settings"
)

// standardAlternatives are the ports a client may try instead, per
// protocol, in the order a helpdesk would suggest them (RFC 8314 §3.3,
// RFC 6409 §3.1).
var standardAlternatives = map[string][]struct {
	port     int
	security string
}{
	settings.ProtocolSMTP: {{587, settings.SecurityStartTLS}, {465, settings.SecurityTLS}, {25, settings.SecurityStartTLS}},
	settings.ProtocolIMAP: {{993, settings.SecurityTLS}, {143, settings.SecurityStartTLS}},
	settings.ProtocolPOP3: {{995, settings.SecurityTLS}, {110, settings.SecurityStartTLS}},
}

// alternativeCandidates lists where else the service may be reached: the
// domain's SRV targets with their real ports, then the standard ports on
// the configured host.
func (p *prober) alternativeCandidates(ctx context.Context) []candidate {
	var out []candidate
	seen := map[string]bool{fmt.Sprintf("%s:%d", strings.ToLower(p.svc.Host), p.svc.Port): true}
	add := func(c candidate) {
		key := fmt.Sprintf("%s:%d", strings.ToLower(c.host), c.port)
		if !seen[key] {
			seen[key] = true
			out = append(out, c)
		}
	}
	if d := p.env.domain; d.name != "" && d.wait(ctx) {
		for _, c := range d.srvCandidates(p.proto) {
			add(c)
		}
	}
	for _, a := range standardAlternatives[p.proto] {
		add(candidate{host: p.svc.Host, port: a.port, security: a.security, source: "standard port"})
	}
	return out
}

// altResult is a working alternative.
type altResult struct {
	c        candidate
	evidence string
}

// probeAlternatives connects to every candidate concurrently, within one
// timeout, and keeps those that speak the protocol. Nothing is sent but a
// TLS ClientHello: no credentials.
func (p *prober) probeAlternatives(ctx context.Context) []altResult {
	cands := p.alternativeCandidates(ctx)
	p.altTried = len(cands) > 0
	results := make([]*altResult, len(cands))
	var wg sync.WaitGroup
	for i, c := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = p.probeCandidate(ctx, c)
		}()
	}
	wg.Wait()
	var out []altResult
	for _, r := range results {
		if r != nil {
			out = append(out, *r)
		}
	}
	return out
}

func (p *prober) probeCandidate(ctx context.Context, c candidate) *altResult {
	addrs := p.addrs
	if !strings.EqualFold(c.host, p.svc.Host) {
		hr := p.env.lookupHost(ctx, c.host)
		if hr.Outcome != dnsprobe.OK {
			return nil
		}
		addrs = hr.Addrs
	}
	conn, _, err := p.dial(ctx, c.host, addrs, c.port, p.cfg.ConnectTimeout)
	if err != nil {
		return nil
	}
	defer conn.Close()
	s := newSession(ctx, conn, p.cfg.ConnectTimeout)
	defer s.stop()
	how := "plaintext"
	if c.security == settings.SecurityTLS {
		h := handshake(ctx, conn, c.host, wideParams, p.cfg.ConnectTimeout)
		if !h.ok() {
			return nil
		}
		s.upgrade(h.conn)
		how = tlsVersionName(h.state.Version)
	}
	s.arm()
	first, err := s.r.Peek(256)
	if err != nil {
		return nil
	}
	sn := wire.Sniff(first)
	if strings.ToLower(string(sn.Protocol)) != p.proto {
		return nil
	}
	return &altResult{c: c, evidence: fmt.Sprintf("%s port %d answers %s (%s): %q", c.host, c.port, sn.Protocol, how, sn.Line)}
}

func describeAlts(alts []altResult) string {
	var parts []string
	for _, a := range alts {
		parts = append(parts, a.evidence)
	}
	return strings.Join(parts, "; ")
}

// altFix says to switch to a working alternative.
func (p *prober) altFix(a altResult, fallback string) string {
	c := a.c
	if strings.EqualFold(c.host, p.svc.Host) {
		return fmt.Sprintf("In the mail client, set the %s port to %d with %s (it answers there).", role(p.svc), c.port, securityWord(c.security))
	}
	if slices.Contains([]string{"standard port"}, c.source) {
		return fallback
	}
	return fmt.Sprintf("In the mail client, set the %s to %s, port %d, %s (published by %s; it answers there).", role(p.svc), c.host, c.port, securityWord(c.security), c.source)
}

func (p *prober) triedAlternatives() bool { return p.altTried }
