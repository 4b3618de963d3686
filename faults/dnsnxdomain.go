package faults

// The dns-nxdomain fault: the resolver says the mail hosts do not exist
// (a record deleted by mistake, a zone that lapsed with the domain).

import (
	"github.com/miekg/dns"

	"github.com/maillab/maillab/lab"
)

func init() {
	Register(Definition{
		Name:       "dns-nxdomain",
		Summary:    "the resolver answers NXDOMAIN for the given names (default: the mail hosts)",
		Layer:      LayerDNS,
		NoServices: true,
		Params:     func() any { return &dnsNamesParams{} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*dnsNamesParams)
			match := params.matcher(l)
			if len(params.Names) == 0 {
				hosts := map[string]bool{}
				for _, h := range l.Primary.Hosts {
					hosts[dns.Fqdn(h)] = true
				}
				match = func(q string) bool { return hosts[dns.CanonicalName(q)] }
			}
			zone := dns.Fqdn(l.Domain)
			l.DNS.Middleware = append(l.DNS.Middleware, func(next dns.Handler) dns.Handler {
				return dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
					if !match(qname(m)) {
						next.ServeDNS(w, m)
						return
					}
					r := new(dns.Msg)
					r.SetRcode(m, dns.RcodeNameError)
					r.Authoritative = true
					// RFC 2308 §3: the SOA of the zone tells how long to cache it.
					r.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
						Ns: "ns." + zone, Mbox: "hostmaster." + zone, Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 300}}
					w.WriteMsg(r)
				})
			})
			return nil
		},
	})
}
