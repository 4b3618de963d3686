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
		Params:  func() any { return &packetFilterParams{Mode: modeListener} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			if p.(*packetFilterParams).Mode == modeNftables {
				return nftFilter(l, sel, "drop")
			}
			for _, svc := range sel.Services {
				svc.Network = lab.NetworkDrop
			}
			return nil
		},
	})
}
