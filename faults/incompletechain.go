package faults

// The incomplete-chain fault: the leaf is signed by an intermediate CA
// (itself signed by the trusted lab CA) that the server does not send.
// Browsers often hide this by fetching the intermediate from the
// certificate's AIA URL; mail clients do not, which is why it shows up as
// "mail works on the phone but not in Outlook". The lab serves the
// intermediate at that URL over HTTP, as a real CA does.

import (
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/pki"
)

func init() {
	Register(Definition{
		Name:    "incomplete-chain",
		Summary: "the leaf is signed by an intermediate the server does not send (the intermediate is published at the certificate's AIA URL)",
		Layer:   LayerTLS,
		TLSOnly: true,
		Apply: func(l *lab.Lab, sel *Selection, _ any) error {
			inter, err := l.CA.NewIntermediate("maillab Intermediate CA 1", pki.CAOptions{Organization: "maillab"})
			if err != nil {
				return err
			}
			url, err := l.PublishHTTP("/intermediate.crt", inter.Cert.Raw, "application/pkix-cert")
			if err != nil {
				return err
			}
			spec := labLeafSpec(l)
			spec.IssuingCertificateURL = []string{url}
			leaf, err := inter.Issue(spec)
			if err != nil {
				return err
			}
			presentCertificate(sel, leaf) // the intermediate is left out
			return nil
		},
	})
}
