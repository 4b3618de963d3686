package faults

// The greylisting fault: the first delivery attempt of each (client,
// sender, recipient) triple is deferred with 450 4.7.1; a retry after
// delay is accepted, as with postgrey.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/smtpd"
)

type greylistParams struct {
	Delay time.Duration `yaml:"delay"`
}

func init() {
	Register(Definition{
		Name:      "greylisting",
		Summary:   "each new (client, sender, recipient) is deferred with 450 4.7.1 until it retries after delay",
		Layer:     LayerPolicy,
		Protocols: []string{"smtp"},
		Params:    func() any { return &greylistParams{Delay: 5 * time.Minute} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			delay := p.(*greylistParams).Delay
			var mu sync.Mutex
			first := map[string]time.Time{}
			l.SMTPChecks = append(l.SMTPChecks, smtpd.CheckFuncs{
				Rcpt: func(ctx context.Context, env *smtpd.Envelope, rcpt string) error {
					if !sel.Has(env.Service) {
						return nil
					}
					ip := ""
					if tcp, ok := env.Remote.(*net.TCPAddr); ok {
						ip = tcp.IP.String()
					}
					key := ip + "|" + strings.ToLower(env.From) + "|" + strings.ToLower(rcpt)
					mu.Lock()
					defer mu.Unlock()
					t, seen := first[key]
					if !seen {
						first[key] = time.Now()
						t = first[key]
					}
					if time.Since(t) >= delay {
						return nil
					}
					return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 1},
						Message: fmt.Sprintf("<%s>: Recipient address rejected: Greylisted, please try again in %d seconds", rcpt, int((delay-time.Since(t)).Seconds())+1)}
				},
			})
			return nil
		},
	})
}
