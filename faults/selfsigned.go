package faults

// The self-signed-certificate fault: a "snakeoil" certificate that signs
// itself.

import (
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/pki"
)

func init() {
	Register(Definition{
		Name:    "self-signed-certificate",
		Summary: "the server presents a self-signed certificate for its names, as a fresh install with its default certificate does",
		Layer:   LayerTLS,
		TLSOnly: true,
		Apply: func(l *lab.Lab, sel *Selection, _ any) error {
			leaf, err := pki.SelfSigned(labLeafSpec(l))
			if err != nil {
				return err
			}
			presentCertificate(sel, leaf)
			return nil
		},
	})
}
