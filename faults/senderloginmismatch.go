package faults

// The sender-login-mismatch fault: the SMTP server accepts a sender
// address only from the login that owns it, as Postfix does with
// smtpd_sender_login_maps and reject_sender_login_mismatch
// (postconf(5)): a logged-in client that sends from an address its login
// does not own gets "553 5.7.1 <x>: Sender address rejected: not owned by
// user y". Postfix answers at RCPT TO, where its restrictions run by
// default (smtpd_delay_reject = yes); so does this fault. Any real client
// sees it: swaks --from an alias, Thunderbird sending from an identity the
// provider does not know.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/smtpd"
)

type senderLoginParams struct {
	// Aliases maps a login to the sender addresses it owns besides its
	// account's own address (smtpd_sender_login_maps' other entries).
	Aliases map[string][]string `yaml:"aliases"`
}

// owns reports whether login may send from addr: addr is the address of
// one of the lab's accounts with that login, or one of its aliases.
// Addresses compare case-insensitively (RFC 5321 §2.4 leaves the local
// part's case to the server; Postfix's maps fold it).
func (p *senderLoginParams) owns(l *lab.Lab, login, addr string) bool {
	for _, a := range l.Primary.Accounts {
		if strings.EqualFold(a.Username, login) && strings.EqualFold(a.Email, addr) {
			return true
		}
	}
	return slices.ContainsFunc(p.Aliases[login], func(alias string) bool { return strings.EqualFold(alias, addr) })
}

func init() {
	Register(Definition{
		Name:      "sender-login-mismatch",
		Summary:   "a logged-in client may send only from addresses its login owns: 553 5.7.1 Sender address rejected: not owned by user (Postfix reject_sender_login_mismatch)",
		Layer:     LayerPolicy,
		Protocols: []string{"smtp"},
		Params:    func() any { return &senderLoginParams{} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*senderLoginParams)
			l.SMTPChecks = append(l.SMTPChecks, smtpd.CheckFuncs{
				Rcpt: func(ctx context.Context, env *smtpd.Envelope, rcpt string) error {
					// Without a login the map has no owner to compare: relay
					// rules decide, as in Postfix.
					if !sel.Has(env.Service) || env.Authenticated == "" || env.From == "" {
						return nil
					}
					if params.owns(l, env.Authenticated, env.From) {
						return nil
					}
					return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
						Message: fmt.Sprintf("<%s>: Sender address rejected: not owned by user %s", env.From, env.Authenticated)}
				},
			})
			return nil
		},
	})
}
