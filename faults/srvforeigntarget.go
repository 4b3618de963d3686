package faults

// The srv-foreign-target fault: the domain's RFC 6186/8314 SRV records
// name a host of the hosting company (default mail.hosting.test) that
// reaches the provider's servers, but whose name the certificate does not
// carry. RFC 6186 §6 / RFC 8314 §5.1: a client must verify the
// certificate against the domain or the SRV target it was given, so a
// wizard that follows the records meets a certificate for other names.
// With documents: false the domain publishes no autoconfig or
// Autodiscover (web ports refused, their names gone from DNS), so the SRV
// records are what a wizard finds.

import (
	"strings"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/lab"
)

type srvForeignTargetParams struct {
	Target string `yaml:"target"`
	// Documents keeps the autoconfig and Autodiscover documents (default);
	// false withdraws them.
	Documents bool `yaml:"documents"`
}

func init() {
	Register(Definition{
		Name:       "srv-foreign-target",
		Summary:    "SRV records name a host (default mail.hosting.test) that the servers' certificate does not name",
		Layer:      LayerDNS,
		NoServices: true,
		Params:     func() any { return &srvForeignTargetParams{Target: "mail.hosting.test", Documents: true} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*srvForeignTargetParams)
			target := dns.Fqdn(params.Target)
			prov := l.Primary
			if !params.Documents {
				prov.Setup.NoHTTP, prov.Setup.NoHTTPS = true, true
				for _, h := range prov.Setup.Hosts {
					if !strings.EqualFold(h, l.Domain) {
						delete(l.DNS.Zones, dns.Fqdn(h))
					}
				}
			}
			for _, label := range []string{"_submission._tcp", "_submissions._tcp", "_imap._tcp", "_imaps._tcp", "_pop3._tcp", "_pop3s._tcp"} {
				key := dns.Fqdn(label + "." + l.Domain)
				z := l.DNS.Zones[key]
				for i := range z.SRV {
					z.SRV[i].Target = target
				}
				l.DNS.Zones[key] = z
			}
			z := l.DNS.Zones[target]
			z.A = append(z.A, prov.AdvertisedIP)
			l.DNS.Zones[target] = z
			return nil
		},
	})
}
