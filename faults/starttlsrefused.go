package faults

// The starttls-refused fault: STARTTLS is advertised but answered with a
// temporary refusal (SMTP 454 4.7.0, IMAP NO, POP3 -ERR).

import (
	"net"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
)

func init() {
	Register(Definition{
		Name:          "starttls-refused",
		Summary:       "STARTTLS is advertised but refused: 454 4.7.0 TLS not available / NO [UNAVAILABLE] / -ERR [SYS/TEMP]",
		Layer:         LayerProtocol,
		PlainOnly:     true,
		PerConnection: true,
		Apply: func(l *lab.Lab, sel *Selection, _ any) error {
			wrapSelected(sel, func(svc *lab.Service) lab.ConnWrapper {
				return func(c net.Conn, ts *transcript.Session) net.Conn {
					return &starttlsFilter{Wrapped: netx.Wrapped{Conn: c}, proto: svc.Protocol, ts: ts}
				}
			})
			return nil
		},
	})
}
