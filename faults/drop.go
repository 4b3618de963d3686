package faults

// The drop fault: connection attempts time out (netx.Blackhole).

import (
	"github.com/maillab/maillab/lab"
)

func init() {
	Register(Definition{
		Name:    "drop",
		Summary: "connection attempts time out, as behind a firewall that DROPs SYNs (an accept queue kept full; no root needed)",
		Layer:   LayerNetwork,
		Apply: func(l *lab.Lab, sel *Selection, _ any) error {
			for _, svc := range sel.Services {
				svc.Network = lab.NetworkDrop
			}
			return nil
		},
	})
}
