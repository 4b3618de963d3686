package faults

// The not-yet-valid-certificate fault: NotBefore lies in the future, which
// is what a client with a wrong clock sees.

import (
	"fmt"
	"time"

	"github.com/maillab/maillab/lab"
)

type notYetValidParams struct {
	// ValidIn is how long until the certificate becomes valid.
	ValidIn time.Duration `yaml:"valid_in"`
}

func (p *notYetValidParams) validate() error {
	if p.ValidIn <= 0 {
		return fmt.Errorf("valid_in must be positive")
	}
	return nil
}

func init() {
	Register(Definition{
		Name:    "not-yet-valid-certificate",
		Summary: "the server presents a certificate that only becomes valid valid_in from now (as a client with a wrong clock sees it)",
		Layer:   LayerTLS,
		TLSOnly: true,
		Params:  func() any { return &notYetValidParams{ValidIn: 30 * 24 * time.Hour} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			spec := labLeafSpec(l)
			spec.NotBefore = time.Now().Add(p.(*notYetValidParams).ValidIn)
			spec.NotAfter = spec.NotBefore.AddDate(0, 0, 90)
			leaf, err := l.CA.Issue(spec)
			if err != nil {
				return err
			}
			presentCertificate(sel, leaf)
			return nil
		},
	})
}
