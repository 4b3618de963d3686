package faults

// The dns-drop fault: the resolver never answers (queries to port 53 are
// filtered, or the resolver is down but its address still routes).

import (
	"github.com/miekg/dns"

	"github.com/maillab/maillab/lab"
)

func init() {
	Register(Definition{
		Name:       "dns-drop",
		Summary:    "the resolver silently drops queries for the given names (default: every query)",
		Layer:      LayerDNS,
		NoServices: true,
		Params:     func() any { return &dnsNamesParams{Names: nil} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*dnsNamesParams)
			match := func(string) bool { return true }
			if len(params.Names) > 0 {
				match = params.matcher(l)
			}
			l.DNS.Middleware = append(l.DNS.Middleware, func(next dns.Handler) dns.Handler {
				return dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
					if !match(qname(m)) {
						next.ServeDNS(w, m)
					}
					// No reply at all: the client waits for its timeout.
				})
			})
			return nil
		},
	})
}
