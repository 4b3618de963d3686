package faults

// The slow-greeting fault: the greeting comes late.

import (
	"fmt"
	"time"

	"github.com/maillab/maillab/lab"
)

func init() {
	Register(Definition{
		Name:    "slow-greeting",
		Summary: "the server waits before its greeting (after the TLS handshake on TLS ports)",
		Layer:   LayerNetwork,
		Params:  func() any { return &slowGreetingParams{Delay: 30 * time.Second} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			for _, svc := range sel.Services {
				svc.GreetingDelay = p.(*slowGreetingParams).Delay
			}
			return nil
		},
	})
}

type slowGreetingParams struct {
	Delay time.Duration `yaml:"delay"`
}

func (p *slowGreetingParams) validate() error {
	if p.Delay <= 0 {
		return fmt.Errorf("delay must be positive")
	}
	return nil
}
