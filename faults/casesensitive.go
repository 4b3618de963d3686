package faults

// The case-sensitive-username fault: the server compares user names
// exactly, as Dovecot does unless told to lower-case them, so
// "Alice@Example.test" is not "alice@example.test".

import (
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

func init() {
	Register(Definition{
		Name:       "case-sensitive-username",
		Summary:    "user names must match exactly, letter case included (Alice@Example.test fails)",
		Layer:      LayerAuth,
		NoServices: true,
		Apply: func(l *lab.Lab, sel *Selection, _ any) error {
			l.AuthPolicies = append(l.AuthPolicies, forAccounts(labAccounts{l.Store}, nil,
				func(req *auth.Request, u *mailstore.User, err error) (*mailstore.User, error) {
					if err == nil && u != nil && req.Username != u.Username {
						return nil, &auth.Error{Kind: auth.InvalidCredentials}
					}
					return u, err
				}))
			return nil
		},
	})
}
