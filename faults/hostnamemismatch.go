package faults

// The hostname-mismatch fault: a valid certificate that names other hosts.

import (
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/pki"
)

type hostnameMismatchParams struct {
	// Names are the DNS names the certificate carries instead of the
	// mail hosts.
	Names []string `yaml:"names"`
}

func init() {
	Register(Definition{
		Name:    "hostname-mismatch",
		Summary: "the server presents a valid certificate for other names (default www.<domain>), not the mail hosts",
		Layer:   LayerTLS,
		TLSOnly: true,
		Params:  func() any { return &hostnameMismatchParams{} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			names := p.(*hostnameMismatchParams).Names
			if len(names) == 0 {
				names = []string{"www." + l.Domain}
			}
			leaf, err := l.CA.Issue(pki.LeafSpec{DNSNames: names, Organization: "maillab"})
			if err != nil {
				return err
			}
			presentCertificate(sel, leaf)
			return nil
		},
	})
}
