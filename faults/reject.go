package faults

// The reject fault: connection attempts are refused (netx.Refuser).

import (
	"github.com/maillab/maillab/lab"
)

func init() {
	Register(Definition{
		Name:    "reject",
		Summary: "connection attempts are refused with RST, as with nothing listening or a REJECT rule",
		Layer:   LayerNetwork,
		Params:  func() any { return &packetFilterParams{Mode: modeListener} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			if p.(*packetFilterParams).Mode == modeNftables {
				return nftFilter(l, sel, "reject with tcp reset")
			}
			for _, svc := range sel.Services {
				svc.Network = lab.NetworkRefuse
			}
			return nil
		},
	})
}
