package faults

// The stall-handshake fault: TLS handshakes that never finish.

import (
	"net"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
)

func init() {
	Register(Definition{
		Name:          "stall-handshake",
		Summary:       "the TLS handshake stalls: the server's answer to the ClientHello never arrives (use one_in for a share of connections, as with packet loss)",
		Layer:         LayerNetwork,
		TLSOnly:       true,
		PerConnection: true,
		Apply: func(l *lab.Lab, sel *Selection, _ any) error {
			wrapSelected(sel, func(svc *lab.Service) lab.ConnWrapper {
				return func(c net.Conn, ts *transcript.Session) net.Conn {
					return netx.NewStallTLS(c, func() { ts.Eventf("fault stall-handshake: the server's TLS handshake messages are lost") })
				}
			})
			return nil
		},
	})
}
