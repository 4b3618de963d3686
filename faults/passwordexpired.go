package faults

// The password-expired fault: the password is right but expired; IMAP
// answers NO [EXPIRED] (RFC 5530), SMTP 535 5.7.8 with the expiry spelled
// out, POP3 -ERR [AUTH] ... expired.

import (
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

func init() {
	Register(Definition{
		Name:       "password-expired",
		Summary:    "the account's password has expired: right password, refused with the expiry reason",
		Layer:      LayerAuth,
		NoServices: true,
		Params:     func() any { return &accountParams{} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			i, err := p.(*accountParams).account(l)
			if err != nil {
				return err
			}
			l.AuthPolicies = append(l.AuthPolicies, forAccounts(labAccounts{l.Store}, []string{l.Primary.Accounts[i].Email},
				func(req *auth.Request, u *mailstore.User, err error) (*mailstore.User, error) {
					if err != nil {
						return u, err
					}
					return nil, &auth.Error{Kind: auth.PasswordExpired}
				}))
			return nil
		},
	})
}
