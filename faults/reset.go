package faults

// The reset-after-greeting fault: RST once the greeting is out.

import (
	"net"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
)

func init() {
	Register(Definition{
		Name:          "reset-after-greeting",
		Summary:       "the connection is cut with RST after the server's greeting (after the TLS handshake on TLS ports), as by a middlebox",
		Layer:         LayerNetwork,
		PerConnection: true,
		Apply: func(l *lab.Lab, sel *Selection, _ any) error {
			wrapSelected(sel, func(svc *lab.Service) lab.ConnWrapper {
				return func(c net.Conn, ts *transcript.Session) net.Conn {
					r := netx.NewResetAfterGreeting(c, svc.TLS())
					r.OnReset = func() { ts.Eventf("fault reset-after-greeting: connection reset (RST)") }
					return r
				}
			})
			return nil
		},
	})
}
