package faults

// The dns-servfail fault: the resolver answers SERVFAIL for the mail
// hosts, as during an outage of the domain's DNS or a broken DNSSEC chain.

import (
	"github.com/miekg/dns"

	"github.com/maillab/maillab/lab"
)

func init() {
	Register(Definition{
		Name:       "dns-servfail",
		Summary:    "the resolver answers SERVFAIL for the given names (default: every name in the lab's domain)",
		Layer:      LayerDNS,
		NoServices: true,
		Params:     func() any { return &dnsNamesParams{} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			match := p.(*dnsNamesParams).matcher(l)
			l.DNS.Middleware = append(l.DNS.Middleware, func(next dns.Handler) dns.Handler {
				return dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
					if !match(qname(m)) {
						next.ServeDNS(w, m)
						return
					}
					r := new(dns.Msg)
					r.SetRcode(m, dns.RcodeServerFailure)
					r.RecursionAvailable = true
					w.WriteMsg(r)
				})
			})
			return nil
		},
	})
}
