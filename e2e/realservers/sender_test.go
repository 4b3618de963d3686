//go:build e2e

package realservers

import (
	"slices"

	"github.com/maillab/maillab/rootcause"
)

// ListenerSenderLogin is submission where each login may send only from the
// addresses it owns: smtpd_sender_login_maps names the owner of every
// sender address (here: the address itself, as with virtual mailboxes whose
// login is the address) and reject_sender_login_mismatch refuses the
// others, as Postfix's SASL_README sets it up against address forgery.
// Postfix evaluates smtpd_sender_restrictions at RCPT TO (smtpd_delay_reject
// = yes), so the refusal answers RCPT.
const ListenerSenderLogin = "submission-sender-login"

func init() {
	postfixFiles["sender-login-maps.regexp"] = "# every address is owned by the login of the same name\n/^(.+)$/\t${1}\n"
	extraListeners = append(extraListeners, SMTPListener{Name: ListenerSenderLogin, Options: append(slices.Clone(SubmissionOptions),
		"smtpd_sender_login_maps=regexp:$config_directory/sender-login-maps.regexp",
		"smtpd_sender_restrictions=reject_sender_login_mismatch")})
	cases = append(cases, realCase{
		name:     "sender-not-owned",
		setup:    "Postfix submission with smtpd_sender_login_maps (each address owned by the login of the same name) and smtpd_sender_restrictions = reject_sender_login_mismatch; the customer sends from the shared alias sales@ while logging in as herself",
		want:     rootcause.SMTPSenderRejected,
		services: []service{{"submission", ListenerSenderLogin, ""}},
		from:     "sales@" + Domain,
	})
}
