package faults

// The reset-after-bytes fault: the server's side of the connection is cut
// with an RST after it has sent a number of octets (counted below TLS), in
// the middle of a greeting, a handshake or a download.

import (
	"fmt"
	"net"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
)

type resetAfterBytesParams struct {
	Bytes int64 `yaml:"bytes"`
}

func (p *resetAfterBytesParams) validate() error {
	if p.Bytes < 0 {
		return fmt.Errorf("bytes must not be negative")
	}
	return nil
}

func init() {
	Register(Definition{
		Name:          "reset-after-bytes",
		Summary:       "the connection is cut with RST once the server has sent bytes octets (0: at once)",
		Layer:         LayerNetwork,
		PerConnection: true,
		Params:        func() any { return &resetAfterBytesParams{Bytes: 10} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			n := p.(*resetAfterBytesParams).Bytes
			wrapSelected(sel, func(svc *lab.Service) lab.ConnWrapper {
				return func(c net.Conn, ts *transcript.Session) net.Conn {
					r := netx.NewResetAfterBytes(c, n)
					r.OnReset = func() { ts.Eventf("fault reset-after-bytes: connection reset (RST) after %d bytes", n) }
					return r
				}
			})
			return nil
		},
	})
}
