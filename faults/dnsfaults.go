package faults

import (
	"strings"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/lab"
)

// Helpers of the DNS faults (one file each).

type dnsNamesParams struct {
	// Names are the host names the fault applies to; default every name
	// of the primary provider (its hosts and its SRV and MX names).
	Names []string `yaml:"names"`
}

// matcher reports whether a query name is one the fault applies to.
func (p *dnsNamesParams) matcher(l *lab.Lab) func(qname string) bool {
	if len(p.Names) == 0 {
		suffix := "." + dns.Fqdn(l.Domain)
		apex := dns.Fqdn(l.Domain)
		return func(q string) bool {
			q = strings.ToLower(q)
			return q == apex || strings.HasSuffix(q, suffix)
		}
	}
	set := map[string]bool{}
	for _, n := range p.Names {
		set[strings.ToLower(dns.Fqdn(n))] = true
	}
	return func(q string) bool { return set[strings.ToLower(q)] }
}

func qname(m *dns.Msg) string {
	if len(m.Question) == 0 {
		return ""
	}
	return m.Question[0].Name
}
