package faults

// The throttle fault: a slow link.

import (
	"fmt"
	"net"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
)

func init() {
	Register(Definition{
		Name:          "throttle",
		Summary:       "the link carries only bytes_per_second in each direction, with small socket buffers, like a congested or shaped line",
		Layer:         LayerNetwork,
		PerConnection: true,
		Params:        func() any { return &throttleParams{BytesPerSecond: 2048} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			rate := p.(*throttleParams).BytesPerSecond
			wrapSelected(sel, func(svc *lab.Service) lab.ConnWrapper {
				return func(c net.Conn, ts *transcript.Session) net.Conn {
					ts.Eventf("fault throttle: link limited to %d bytes/s", rate)
					return netx.NewThrottle(c, rate)
				}
			})
			return nil
		},
	})
}

type throttleParams struct {
	BytesPerSecond int `yaml:"bytes_per_second"`
}

func (p *throttleParams) validate() error {
	if p.BytesPerSecond < 1 {
		return fmt.Errorf("bytes_per_second must be at least 1")
	}
	return nil
}
