package faults

// The untrusted-ca fault: a certificate from a private CA the client does
// not trust; the server sends the whole chain up to that root, so the
// chain is complete but ends at an unknown authority.

import (
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/pki"
)

type untrustedCAParams struct {
	// Issuer is the private CA's common name.
	Issuer string `yaml:"issuer"`
	// SendRoot makes the server send the private root after the leaf.
	SendRoot bool `yaml:"send_root"`
}

func init() {
	Register(Definition{
		Name:    "untrusted-ca",
		Summary: "the server's certificate is issued by a private CA that clients do not trust (the root is sent with it unless send_root: false)",
		Layer:   LayerTLS,
		TLSOnly: true,
		Params:  func() any { return &untrustedCAParams{Issuer: "Example Corp Internal Root CA", SendRoot: true} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*untrustedCAParams)
			ca, err := pki.NewCA(params.Issuer, pki.CAOptions{Organization: "Example Corp"})
			if err != nil {
				return err
			}
			leaf, err := ca.Issue(labLeafSpec(l))
			if err != nil {
				return err
			}
			if params.SendRoot {
				presentCertificate(sel, leaf, ca.Cert)
			} else {
				presentCertificate(sel, leaf)
			}
			return nil
		},
	})
}
