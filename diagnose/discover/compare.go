package discover

import (
	"fmt"
	"strings"

	"github.com/maillab/maillab/settings"
)

// Difference is one field of the customer's settings that differs from
// what the domain publishes.
type Difference struct {
	// Field is "incoming server", "outgoing server", "port", "security"
	// or "user name".
	Field string `json:"field"`
	// Service is the customer's service name, e.g. "imap".
	Service string `json:"service"`
	// Customer and Published are the two values.
	Customer  string `json:"customer"`
	Published string `json:"published"`
	// Text says it in a helpdesk's words: "incoming server
	// imap.gmail.com; example.test publishes mail.example.test:993
	// SSL/TLS".
	Text string `json:"text"`
}

// Compare names every field of the customer's settings that differs from
// the published configuration: for each service the customer uses, the
// published service of the same protocol (the same security mode if the
// domain publishes it, else its preferred one) is compared host, port and
// security; the user name is compared too.
func Compare(customer, published *settings.Settings) []Difference {
	var out []Difference
	for _, name := range customer.SortedServiceNames() {
		c := customer.Services[name]
		info, ok := settings.LookupService(name)
		if !ok {
			continue
		}
		pubName, p, ok := counterpart(published, info.Protocol, c.Security)
		if !ok {
			continue
		}
		role := "incoming server"
		if info.Protocol == settings.ProtocolSMTP {
			role = "outgoing server"
		}
		where := fmt.Sprintf("%s:%d %s", p.Host, p.Port, SecurityLabel(p.Security))
		add := func(field, cv, pv string) {
			out = append(out, Difference{Field: field, Service: name, Customer: cv, Published: pv,
				Text: fmt.Sprintf("%s %s %s; %s publishes %s (%s)", role, field, cv, published.Domain, where, pubName)})
		}
		if !strings.EqualFold(strings.TrimSuffix(c.Host, "."), strings.TrimSuffix(p.Host, ".")) {
			add("host", c.Host, p.Host)
		}
		if c.Port != p.Port {
			add("port", fmt.Sprint(c.Port), fmt.Sprint(p.Port))
		}
		if c.Security != p.Security {
			add("security", SecurityLabel(c.Security), SecurityLabel(p.Security))
		}
	}
	if len(customer.Accounts) > 0 && len(published.Accounts) > 0 {
		cu, pu := customer.Accounts[0].Username, published.Accounts[0].Username
		if cu != "" && pu != "" && !strings.EqualFold(cu, pu) {
			out = append(out, Difference{Field: "user name", Customer: cu, Published: pu,
				Text: fmt.Sprintf("user name %s; %s publishes %s", cu, published.Domain, pu)})
		}
	}
	return out
}

// counterpart finds the published service of a protocol: the same
// security mode if published, else implicit TLS, else STARTTLS, else
// plaintext.
func counterpart(s *settings.Settings, proto, security string) (string, settings.Service, bool) {
	order := []string{security, settings.SecurityTLS, settings.SecurityStartTLS, settings.SecurityNone}
	for _, sec := range order {
		for _, name := range s.SortedServiceNames() {
			info, ok := settings.LookupService(name)
			svc := s.Services[name]
			if ok && info.Protocol == proto && svc.Security == sec {
				if proto == settings.ProtocolSMTP && name == "smtp" {
					continue
				}
				return name, svc, true
			}
		}
	}
	return "", settings.Service{}, false
}
