package faults

import (
	"context"
	"strings"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

// Helpers of the authentication faults (one file each): a middleware that
// applies to the chosen accounts only.

// forAccounts returns middleware that runs decide for logins of the given
// emails (all accounts if empty); decide gets the result of the rest of
// the chain.
func forAccounts(l labAccounts, emails []string, decide func(req *auth.Request, u *mailstore.User, err error) (*mailstore.User, error)) auth.Middleware {
	return func(next auth.Authenticator) auth.Authenticator {
		return auth.Func(func(ctx context.Context, req *auth.Request) (*mailstore.User, error) {
			u, err := next.Authenticate(ctx, req)
			if !l.matches(emails, req.Username) {
				return u, err
			}
			return decide(req, u, err)
		})
	}
}

// labAccounts resolves login names to accounts.
type labAccounts struct{ store *mailstore.Store }

func (a labAccounts) matches(emails []string, username string) bool {
	if len(emails) == 0 {
		return true
	}
	u, err := a.store.User(username)
	if err != nil {
		return false
	}
	for _, e := range emails {
		if strings.EqualFold(e, u.Email) {
			return true
		}
	}
	return false
}
