package faults

// The mailbox-full fault: the account's mailbox is over its quota, so
// deliveries to it are refused (SMTP 552 5.2.2) and IMAP APPEND gets
// NO [OVERQUOTA].

import (
	"fmt"
	"strings"
	"time"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/mailstore"
)

func init() {
	Register(Definition{
		Name:       "mailbox-full",
		Summary:    "the account's mailbox is filled past its quota: 552 5.2.2 for new mail, NO [OVERQUOTA] for APPEND",
		Layer:      LayerPolicy,
		NoServices: true,
		Params:     func() any { return &accountParams{} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			i, err := p.(*accountParams).account(l)
			if err != nil {
				return err
			}
			acct := l.Primary.Accounts[i]
			u, err := l.Store.User(acct.Username)
			if err != nil {
				return err
			}
			mb, err := u.Mailbox(mailstore.Inbox)
			if err != nil {
				return err
			}
			big := fmt.Sprintf("From: newsletter@%s\r\nTo: %s\r\nSubject: Your monthly photo archive\r\n\r\n%s\r\n",
				l.Domain, acct.Email, strings.Repeat("A large attachment that filled the mailbox.\r\n", 2000))
			if _, err := mb.Append([]byte(big), nil, time.Time{}); err != nil {
				return err
			}
			_, used := u.Quota()
			u.SetQuota(used - 1)
			return nil
		},
	})
}
