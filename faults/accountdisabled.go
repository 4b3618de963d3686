package faults

// The account-disabled fault: an administrator locked the account; every
// login is refused with the lock as reason (SMTP 525 5.7.13 per RFC 7372,
// IMAP NO [CONTACTADMIN], POP3 -ERR [SYS/PERM]).

import (
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

func init() {
	Register(Definition{
		Name:       "account-disabled",
		Summary:    "an administrator locked the account: every login is refused as disabled",
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
					if auth.KindOf(err) == auth.InvalidToken {
						return u, err
					}
					return nil, &auth.Error{Kind: auth.AccountDisabled}
				}))
			return nil
		},
	})
}
