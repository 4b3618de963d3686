package faults

// The setup-none fault: the domain publishes no mail configuration at all
// (no autoconfig, no Autodiscover, no SRV records), and the host a
// wizard guesses first, imap.DOMAIN (and smtp.DOMAIN), points at the web
// hoster's shared server: another, working provider with a certificate of
// its own names.

import (
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/settings"
)

type setupNoneParams struct {
	// Hoster is the domain of the web hoster whose server the guessed
	// names reach; IP is its address.
	Hoster string `yaml:"hoster"`
	IP     string `yaml:"ip"`
}

func (p *setupNoneParams) validate() error {
	if ip := net.ParseIP(p.IP); ip == nil || ip.To4() == nil {
		return fmt.Errorf("ip %q is not an IPv4 address", p.IP)
	}
	return nil
}

func init() {
	Register(Definition{
		Name:       "setup-none",
		Summary:    "no autoconfig, Autodiscover or SRV published; imap. and smtp.DOMAIN point at a web hoster's mail server (default webhost.test on 127.0.0.4)",
		Layer:      LayerDNS,
		NoServices: true,
		Params:     func() any { return &setupNoneParams{Hoster: "webhost.test", IP: "127.0.0.4"} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*setupNoneParams)
			email := "webmaster@" + params.Hoster
			if _, err := l.AddProvider(params.Hoster, params.IP, []settings.Account{{Email: email, Username: email, Password: "webhost-password"}}); err != nil {
				return err
			}
			prov := l.Primary
			prov.Setup.NoHTTP, prov.Setup.NoHTTPS = true, true
			for _, label := range []string{"_submission._tcp", "_submissions._tcp", "_imap._tcp", "_imaps._tcp", "_pop3._tcp", "_pop3s._tcp"} {
				delete(l.DNS.Zones, dns.Fqdn(label+"."+l.Domain))
			}
			for _, h := range []string{"imap." + l.Domain, "smtp." + l.Domain} {
				z := l.DNS.Zones[dns.Fqdn(h)]
				z.A = []string{params.IP}
				l.DNS.Zones[dns.Fqdn(h)] = z
			}
			for _, h := range prov.Setup.Hosts {
				if !strings.EqualFold(h, l.Domain) {
					delete(l.DNS.Zones, dns.Fqdn(h))
				}
			}
			return nil
		},
	})
}
