package faults

// The dns-poison fault: the resolver's cache is poisoned: A queries for
// the mail hosts return the address of an impostor, a second, working mail
// provider with a valid certificate (from the same trusted CA) for its own
// names. A client reaches a real server that is simply not its provider's.

import (
	"fmt"
	"net"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/settings"
)

type dnsPoisonParams struct {
	dnsNamesParams `yaml:",inline"`
	// ImpostorDomain is the domain the impostor serves.
	ImpostorDomain string `yaml:"impostor_domain"`
	// ImpostorIP is where it listens (a loopback address other than the
	// lab's).
	ImpostorIP string `yaml:"impostor_ip"`
}

func (p *dnsPoisonParams) validate() error {
	if ip := net.ParseIP(p.ImpostorIP); ip == nil || ip.To4() == nil {
		return fmt.Errorf("impostor_ip %q is not an IPv4 address", p.ImpostorIP)
	}
	return nil
}

func init() {
	Register(Definition{
		Name:       "dns-poison",
		Summary:    "A answers for the mail hosts point at an impostor mail server (valid certificate for another domain)",
		Layer:      LayerDNS,
		NoServices: true,
		Params: func() any {
			return &dnsPoisonParams{ImpostorDomain: "mailhost-impostor.test", ImpostorIP: "127.0.0.66"}
		},
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*dnsPoisonParams)
			if _, err := l.AddProvider(params.ImpostorDomain, params.ImpostorIP, []settings.Account{{
				Email: "admin@" + params.ImpostorDomain, Username: "admin@" + params.ImpostorDomain, Password: "impostor-password",
			}}); err != nil {
				return err
			}
			poisoned := params.matcher(l)
			if len(params.Names) == 0 {
				hosts := map[string]bool{}
				for _, h := range l.Primary.Hosts {
					hosts[dns.Fqdn(h)] = true
				}
				poisoned = func(q string) bool { return hosts[dns.CanonicalName(q)] }
			}
			forged := net.ParseIP(params.ImpostorIP).To4()
			l.DNS.Middleware = append(l.DNS.Middleware, func(next dns.Handler) dns.Handler {
				return dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
					q := qname(m)
					if len(m.Question) == 0 || m.Question[0].Qtype != dns.TypeA || !poisoned(q) {
						next.ServeDNS(w, m)
						return
					}
					r := new(dns.Msg)
					r.SetReply(m)
					r.RecursionAvailable = true
					r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 86400}, A: forged}}
					w.WriteMsg(r)
				})
			})
			return nil
		},
	})
}
