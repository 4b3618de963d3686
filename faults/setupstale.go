package faults

// The setup-stale fault: the provider's autoconfig and Autodiscover
// documents still advertise its servers as they were before a migration
// (plaintext IMAP and POP3 on the STARTTLS ports, SMTP on the relay port
// without login), so a client set up by its wizard is set up wrong.

import (
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/settings"
)

type setupStaleParams struct {
	// Host is the server name the stale documents give; default the
	// provider's mail host.
	Host string `yaml:"host"`
}

func init() {
	Register(Definition{
		Name:       "setup-stale",
		Summary:    "autoconfig and Autodiscover still advertise the servers of before a migration: IMAP/POP3 without STARTTLS, SMTP on the relay port",
		Layer:      LayerDNS,
		NoServices: true,
		Params:     func() any { return &setupStaleParams{} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*setupStaleParams)
			prov := l.Primary
			host := params.Host
			if host == "" {
				host = prov.MailHost
			}
			// The old outgoing server was the relay port, listed as the
			// submission server a client should use.
			var stale []lab.SetupService
			for _, s := range []struct{ name, port string }{{"imap", "imap"}, {"pop3", "pop3"}, {"submission", "smtp"}} {
				svc := prov.Services[s.port]
				stale = append(stale, lab.SetupService{Name: s.name, Service: settings.Service{Host: host, Port: svc.Port, Security: settings.SecurityNone}})
			}
			prov.Setup.Publish = stale
			return nil
		},
	})
}
