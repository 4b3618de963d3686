package faults

// The starttls-broken fault: STARTTLS is accepted, then the TLS handshake
// fails because the server sends bytes that are not TLS and hangs up.

import (
	"net"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
)

func init() {
	Register(Definition{
		Name:          "starttls-broken",
		Summary:       "STARTTLS is accepted (220 / OK / +OK) but the handshake breaks: the client receives non-TLS bytes and the connection closes",
		Layer:         LayerProtocol,
		PlainOnly:     true,
		PerConnection: true,
		Apply: func(l *lab.Lab, sel *Selection, _ any) error {
			wrapSelected(sel, func(svc *lab.Service) lab.ConnWrapper {
				return func(c net.Conn, ts *transcript.Session) net.Conn {
					return &starttlsFilter{Wrapped: netx.Wrapped{Conn: c}, proto: svc.Protocol, broken: true, ts: ts}
				}
			})
			return nil
		},
	})
}
