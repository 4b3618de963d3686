package faults

// The starttls-not-offered fault: the server has no TLS on its plaintext
// port, so it neither advertises nor accepts STARTTLS.

import (
	"github.com/maillab/maillab/lab"
)

func init() {
	Register(Definition{
		Name:      "starttls-not-offered",
		Summary:   "plaintext ports do not advertise STARTTLS/STLS and answer it as an unknown command",
		Layer:     LayerProtocol,
		PlainOnly: true,
		Apply: func(l *lab.Lab, sel *Selection, _ any) error {
			for _, svc := range sel.Services {
				svc.OfferSTARTTLS = false
			}
			return nil
		},
	})
}
