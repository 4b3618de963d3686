package faults

// The password-changed fault: the account's password was changed on the
// provider's web portal; the lab's correct settings have the new one, the
// customer's mail client still has the old one.

import (
	"fmt"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/settings"
)

type accountParams struct {
	// Account is the email address of the account; default the first.
	Account string `yaml:"account"`
}

// account finds the primary provider's account, by email or the first.
func (p *accountParams) account(l *lab.Lab) (int, error) {
	for i, a := range l.Primary.Accounts {
		if p.Account == "" || a.Email == p.Account {
			return i, nil
		}
	}
	var valid []string
	for _, a := range l.Primary.Accounts {
		valid = append(valid, a.Email)
	}
	return 0, fmt.Errorf("no account %q; valid: %v", p.Account, valid)
}

func init() {
	Register(Definition{
		Name:       "password-changed",
		Summary:    "the account's password was changed on the server; the customer's settings keep the old one",
		Layer:      LayerAuth,
		NoServices: true,
		Params:     func() any { return &accountParams{} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			i, err := p.(*accountParams).account(l)
			if err != nil {
				return err
			}
			acct := &l.Primary.Accounts[i]
			u, err := l.Store.User(acct.Username)
			if err != nil {
				return err
			}
			old := acct.Password
			acct.Password = "new-" + old
			u.Password = acct.Password
			email := acct.Email
			l.OnCustomerSettings(func(s *settings.Settings) error {
				for j := range s.Accounts {
					if s.Accounts[j].Email == email && s.Accounts[j].Password != "" {
						s.Accounts[j].Password = old
					}
				}
				return nil
			})
			return nil
		},
	})
}
