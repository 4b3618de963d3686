package faults

// The expired-certificate fault: the server's certificate is past NotAfter.

import (
	"fmt"
	"time"

	"github.com/maillab/maillab/lab"
)

type expiredParams struct {
	// ExpiredFor is how long ago the certificate expired.
	ExpiredFor time.Duration `yaml:"expired_for"`
}

func (p *expiredParams) validate() error {
	if p.ExpiredFor <= 0 {
		return fmt.Errorf("expired_for must be positive")
	}
	return nil
}

func init() {
	Register(Definition{
		Name:    "expired-certificate",
		Summary: "the server presents a certificate (from the lab CA, right names) that expired expired_for ago",
		Layer:   LayerTLS,
		TLSOnly: true,
		Params:  func() any { return &expiredParams{ExpiredFor: 30 * 24 * time.Hour} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			spec := labLeafSpec(l)
			spec.NotAfter = time.Now().Add(-p.(*expiredParams).ExpiredFor)
			spec.NotBefore = spec.NotAfter.AddDate(-1, 0, 0)
			leaf, err := l.CA.Issue(spec)
			if err != nil {
				return err
			}
			presentCertificate(sel, leaf)
			return nil
		},
	})
}
