package faults

// The setup-http-only fault: the provider publishes its autoconfig over
// plain HTTP only; its HTTPS port refuses connections. Clients that
// demand HTTPS for set-up documents (Outlook's Autodiscover) find
// nothing and fall back to guessing; an autoconfig fetched over HTTP can
// be rewritten by anyone on the path.

import "github.com/maillab/maillab/lab"

func init() {
	Register(Definition{
		Name:       "setup-http-only",
		Summary:    "account set-up documents over plain HTTP only: the HTTPS port refuses connections",
		Layer:      LayerNetwork,
		NoServices: true,
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			l.Primary.Setup.NoHTTPS = true
			return nil
		},
	})
}
