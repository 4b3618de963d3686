package faults

// The tls-versions fault: the server speaks only a range of TLS versions,
// e.g. only TLS 1.0 like an unpatched old server.

import (
	"crypto/tls"
	"fmt"

	"github.com/maillab/maillab/lab"
)

var tlsVersionNames = map[string]uint16{
	"1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13,
}

type tlsVersionsParams struct {
	Min string `yaml:"min"`
	Max string `yaml:"max"`
}

func (p *tlsVersionsParams) validate() error {
	for _, v := range []string{p.Min, p.Max} {
		if _, ok := tlsVersionNames[v]; !ok {
			return fmt.Errorf("TLS version %q: valid: 1.0, 1.1, 1.2, 1.3", v)
		}
	}
	if tlsVersionNames[p.Min] > tlsVersionNames[p.Max] {
		return fmt.Errorf("min %s is above max %s", p.Min, p.Max)
	}
	return nil
}

func init() {
	Register(Definition{
		Name:    "tls-versions",
		Summary: "the server accepts only TLS versions min to max (e.g. 1.0 to 1.0: a server too old for current clients)",
		Layer:   LayerTLS,
		TLSOnly: true,
		Params:  func() any { return &tlsVersionsParams{Min: "1.2", Max: "1.3"} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*tlsVersionsParams)
			for _, svc := range sel.Services {
				svc.MinTLS, svc.MaxTLS = tlsVersionNames[params.Min], tlsVersionNames[params.Max]
			}
			return nil
		},
	})
}
