package faults

// The size-limit fault: the SMTP server's SIZE limit (RFC 1870) is small,
// so larger messages are refused with 552 5.3.4.

import (
	"fmt"

	"github.com/maillab/maillab/lab"
)

type sizeLimitParams struct {
	MaxBytes int64 `yaml:"max_bytes"`
}

func (p *sizeLimitParams) validate() error {
	if p.MaxBytes < 1024 {
		return fmt.Errorf("max_bytes must be at least 1024")
	}
	return nil
}

func init() {
	Register(Definition{
		Name:      "size-limit",
		Summary:   "the SMTP server advertises and enforces a small SIZE limit (552 5.3.4 for larger messages)",
		Layer:     LayerPolicy,
		Protocols: []string{"smtp"},
		Params:    func() any { return &sizeLimitParams{MaxBytes: 1 << 20} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			for _, svc := range sel.Services {
				svc.MaxMessageBytes = p.(*sizeLimitParams).MaxBytes
			}
			return nil
		},
	})
}
