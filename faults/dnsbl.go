package faults

// The dnsbl fault: the SMTP server checks the client's IP address against
// a DNS blocklist (RFC 5782) served by the lab's own DNS, and the client's
// address is listed, so mail is refused the way Postfix's
// reject_rbl_client refuses it.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/dnsd"
	"github.com/maillab/maillab/servers/smtpd"
)

type dnsblParams struct {
	// Zone is the blocklist's DNS zone.
	Zone string `yaml:"zone"`
	// Listed are the client addresses the list contains.
	Listed []string `yaml:"listed"`
}

func (p *dnsblParams) validate() error {
	for _, ip := range p.Listed {
		if net.ParseIP(ip) == nil || net.ParseIP(ip).To4() == nil {
			return fmt.Errorf("listed: %q is not an IPv4 address", ip)
		}
	}
	return nil
}

// reverseIPv4 returns the RFC 5782 §2.1 query name of ip in zone.
func reverseIPv4(ip net.IP, zone string) string {
	v4 := ip.To4()
	return fmt.Sprintf("%d.%d.%d.%d.%s", v4[3], v4[2], v4[1], v4[0], dns.Fqdn(zone))
}

// listedIn asks the resolver whether ip is on the list (an A record in
// 127.0.0.0/8 means listed, RFC 5782 §2.1) and returns the TXT reason.
func listedIn(ctx context.Context, resolver string, ip net.IP, zone string) (bool, string, error) {
	if ip.To4() == nil {
		return false, "", nil
	}
	name := reverseIPv4(ip, zone)
	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := c.ExchangeContext(ctx, m, resolver)
	if err != nil {
		return false, "", err
	}
	listed := false
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok && a.A[0] == 127 {
			listed = true
		}
	}
	if !listed {
		return false, "", nil
	}
	m.SetQuestion(name, dns.TypeTXT)
	reason := ""
	if r, _, err := c.ExchangeContext(ctx, m, resolver); err == nil {
		for _, rr := range r.Answer {
			if t, ok := rr.(*dns.TXT); ok {
				reason = strings.Join(t.Txt, "")
			}
		}
	}
	return true, reason, nil
}

func init() {
	Register(Definition{
		Name:      "dnsbl",
		Summary:   "the SMTP server looks the client's IP up in a DNS blocklist (in the lab's DNS) that lists it: 554 5.7.1 ... blocked using <zone>",
		Layer:     LayerPolicy,
		Protocols: []string{"smtp"},
		Params:    func() any { return &dnsblParams{Zone: "zen.blocklist.test", Listed: []string{"127.0.0.1"}} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*dnsblParams)
			for _, ip := range params.Listed {
				name := reverseIPv4(net.ParseIP(ip), params.Zone)
				l.DNS.Zones[name] = dnsd.Zone{
					A:   []string{"127.0.0.2"},
					TXT: []string{"Listed by " + params.Zone + ": see https://" + strings.TrimPrefix(params.Zone, "zen.") + "/query/ip/" + ip},
				}
			}
			resolver := l.DNSAddr
			l.SMTPChecks = append(l.SMTPChecks, smtpd.CheckFuncs{
				Rcpt: func(ctx context.Context, env *smtpd.Envelope, rcpt string) error {
					if !sel.Has(env.Service) {
						return nil
					}
					tcp, ok := env.Remote.(*net.TCPAddr)
					if !ok {
						return nil
					}
					listed, reason, err := listedIn(ctx, resolver, tcp.IP, params.Zone)
					if err != nil || !listed {
						return nil // a blocklist that does not answer blocks nobody
					}
					// Postfix reject_rbl_client wording.
					return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
						Message: fmt.Sprintf("Service unavailable; Client host [%s] blocked using %s; %s", tcp.IP, params.Zone, reason)}
				},
			})
			return nil
		},
	})
}
