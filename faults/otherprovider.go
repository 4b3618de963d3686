package faults

// The other-provider fault: the lab also serves a different, working mail
// provider (a big freemail service, say), so that a customer who typed that
// provider's server name reaches a real server that does not know them.

import (
	"fmt"
	"net"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/settings"
)

type otherProviderParams struct {
	Domain string `yaml:"domain"`
	IP     string `yaml:"ip"`
	// User is the local part of the provider's one account.
	User string `yaml:"user"`
}

func (p *otherProviderParams) validate() error {
	if ip := net.ParseIP(p.IP); ip == nil || ip.To4() == nil {
		return fmt.Errorf("ip %q is not an IPv4 address", p.IP)
	}
	return nil
}

func init() {
	Register(Definition{
		Name:       "other-provider",
		Summary:    "a second, working provider (default bigmail.test on 127.0.0.3) with its own hosts, certificate and accounts",
		Layer:      LayerDNS,
		NoServices: true,
		Params:     func() any { return &otherProviderParams{Domain: "bigmail.test", IP: "127.0.0.3", User: "carol"} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*otherProviderParams)
			email := params.User + "@" + params.Domain
			_, err := l.AddProvider(params.Domain, params.IP, []settings.Account{{Email: email, Username: email, Password: "carol-password"}})
			return err
		},
	})
}
