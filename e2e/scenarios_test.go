//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/scenarios"
	"github.com/maillab/maillab/settings"
)

// step is one real client run against a started scenario, with the
// customer's settings unless it says otherwise, and what it must show.
type step struct {
	// name is the subtest name: client and service, e.g. "curl-imaps";
	// "contrast-..." steps show what works beside the failure.
	name string
	// client is the program run.
	client string
	// does says in a few words what the client does.
	does string
	// expect is the client's exit code and the text of its output.
	expect expectation
	run    func(e *scenarioEnv) result
	// verify replaces run+expect for steps of several attempts; shows
	// describes what it asserts, for the assertion matrix.
	verify func(e *scenarioEnv)
	shows  string
	// skip names a lab bug that makes the step fail. The lab is fixed in
	// its own package; the step is unskipped then.
	skip string
	// sends is the subject of the message a passing step delivered, for
	// the reading steps after it.
	sends string
	// reads gives what a reading step's output must contain beyond
	// expect.want, from the subjects the steps before it delivered; a
	// sender that skipped (its client missing) is not expected. With
	// nothing delivered the step skips.
	reads func(sent []string) []string
}

// scenarioEnv is a started scenario as a step sees it.
type scenarioEnv struct {
	t *testing.T
	r *scenarios.Running
	// c is the customer's client: the settings the customer typed.
	c *mailClient
}

// correct returns a client with the lab's correct settings (every
// service, the right password), for contrast steps.
func (e *scenarioEnv) correct() *mailClient {
	return newMailClient(e.t, e.r.Scenario.Name, e.r.Lab.Settings())
}

// rightAccount is the customer's account with the lab's current
// password and the right user name.
func (e *scenarioEnv) rightAccount() settings.Account {
	return e.r.Lab.Settings().Account0()
}

// Steps used by many scenarios.

func curlRead(service string, x expectation) step {
	return step{name: "curl-" + service, client: "curl", does: "log in and list mailboxes over " + service, expect: x,
		run: func(e *scenarioEnv) result { return e.c.curl(service, "/") }}
}

func curlSend(service string, x expectation) step {
	return step{name: "curl-" + service, client: "curl", does: "send the customer's message over " + service, expect: x,
		run: func(e *scenarioEnv) result { return e.c.curlSend(service, "") }}
}

func swaksSend(service string, x expectation) step {
	return step{name: "swaks-" + service, client: "swaks", does: "send the customer's message over " + service, expect: x,
		run: func(e *scenarioEnv) result { return e.c.swaks(service) }}
}

func opensslConnect(service string, x expectation) step {
	return step{name: "openssl-" + service, client: "openssl", does: "s_client handshake on " + service + " verifying the chain and host name", expect: x,
		run: func(e *scenarioEnv) result { return e.c.openssl(service) }}
}

// digHost asks the customer's resolver for the A record of a service's host.
func digHost(service string, x expectation) step {
	return step{name: "dig-" + service + "-host", client: "dig", does: "A query for the " + service + " host at the customer's resolver", expect: x,
		run: func(e *scenarioEnv) result { return e.c.dig(e.c.service(service).Host, "A") }}
}

// certFailure is a certificate scenario: curl and openssl refuse the
// certificate on the implicit-TLS and the STARTTLS service alike.
func certFailure(curlText, opensslText string, more ...step) []step {
	steps := []step{
		curlRead("imaps", expectation{exit: 60, want: []string{curlText}}),
		curlSend("submission", expectation{exit: 60, want: []string{curlText}}),
		opensslConnect("imaps", expectation{exit: 1, want: []string{opensslText}}),
	}
	return append(steps, more...)
}

// Expected client texts (Debian 12: curl 7.88 with OpenSSL 3.0, swaks
// 20201014, fetchmail 6.4, msmtp 1.8 with GnuTLS, dig 9.18).
const (
	curlRefused      = "Connection refused"
	curlConnTimeout  = "Timeout was reached"
	curlReset        = "Connection reset by peer"
	curlLoginDenied  = "curl: (67) Login denied"
	curlNoGreeting   = "with 0 bytes received"
	opensslVerifyOK  = "Verify return code: 0 (ok)"
	sslWrongVersion  = "wrong version number"
	swaksNoSTARTTLS  = "Host did not advertise STARTTLS"
	swaksClosed      = "Remote host closed connection unexpectedly"
	digNoServers     = "no servers could be reached"
	lockedIMAP       = "NO [UNAVAILABLE] Account temporarily locked"
	impostorCertName = "CN=mail.mailhost-impostor.test"
)

// scenarioSteps is what real clients must show for every scenario of the
// catalog, in the words of shared/catalog.md ("What reproduce means").
var scenarioSteps = map[string][]step{
	"healthy": {
		digHost("submission", expectation{exit: 0, want: []string{"status: NOERROR", "ANSWER: 1"}}),
		opensslConnect("submission", expectation{exit: 0, want: []string{opensslVerifyOK}}),
		opensslConnect("imaps", expectation{exit: 0, want: []string{opensslVerifyOK}}),
		{name: "curl-submission", client: "curl", does: "send a message with AUTH over STARTTLS", sends: "e2e healthy curl",
			expect: expectation{exit: 0, want: []string{"235 2.0.0 Authentication succeeded", "250 2.0.0 OK: queued"}},
			run: func(e *scenarioEnv) result {
				return e.c.curlSend("submission", e.c.messageFile("e2e healthy curl"))
			}},
		{name: "swaks-submission", client: "swaks", does: "send a message with -tls -a over STARTTLS", sends: "e2e healthy swaks",
			expect: expectation{exit: 0, want: []string{"235 2.0.0 Authentication succeeded", "250 2.0.0 OK: queued"}},
			run:    func(e *scenarioEnv) result { return e.c.swaks("submission", "--header", "Subject: e2e healthy swaks") }},
		{name: "msmtp-submission", client: "msmtp", does: "send a message with AUTH over STARTTLS", sends: "e2e healthy msmtp",
			expect: expectation{exit: 0, want: []string{"smtpstatus=250", "exitcode=EX_OK"}},
			run: func(e *scenarioEnv) result {
				return e.c.msmtp("submission", e.c.from(), []byte("Subject: e2e healthy msmtp\r\n\r\nSent by msmtp.\r\n"))
			}},
		{name: "curl-imaps", client: "curl", does: "read the sent messages' subjects over IMAPS",
			expect: expectation{exit: 0},
			reads:  func(sent []string) []string { return sent },
			run: func(e *scenarioEnv) result {
				return e.c.curl("imaps", "/INBOX", "-X", "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
			}},
		{name: "fetchmail-imaps", client: "fetchmail", does: "fetch the sent messages over IMAPS",
			expect: expectation{exit: 0},
			reads: func(sent []string) []string {
				want := []string{fmt.Sprintf("%d messages for", len(sent))}
				for _, s := range sent {
					want = append(want, "Subject: "+s)
				}
				return want
			},
			run: fetchmailRun("imaps")},
	},
	"smtp-host-typo": {
		digHost("submission", expectation{exit: 0, want: []string{"status: NXDOMAIN"}}),
		{name: "contrast-dig-imaps-host", client: "dig", does: "A query for the (right) incoming host",
			expect: expectation{exit: 0, want: []string{"status: NOERROR"}},
			run:    func(e *scenarioEnv) result { return e.c.dig(e.c.service("imaps").Host, "A") }},
	},
	"autoconfig-stale": {
		curlSetup("autoconfig", expectation{exit: 0, want: []string{"<socketType>plain</socketType>"}}),
		curlRead("imap", expectation{exit: 67, want: []string{"LOGINDISABLED"}}),
	},
	"autodiscover-foreign": {
		curlSetup("autodiscover", expectation{exit: 0, want: []string{"<Action>redirectUrl</Action>", "https://autodiscover.mail-settings.test:"}}),
		{name: "curl-imaps", client: "curl", does: "log in at the stranger's IMAPS server Outlook was sent to",
			expect: expectation{exit: 67, want: []string{"CN=mail.mail-settings.test", "NO [AUTHENTICATIONFAILED]", curlLoginDenied}},
			run:    func(e *scenarioEnv) result { return e.c.curl("imaps", "/") }},
	},
	"setup-nothing-published": {
		curlSetup("autoconfig", expectation{exit: 6, want: []string{"Could not resolve host: autoconfig.example.test"}}),
		curlRead("imaps", expectation{exit: 60, want: []string{"SSL: no alternative certificate subject name matches target host name 'imap.example.test'"}}),
	},
	"autoconfig-http-only": {
		curlSetup("autoconfig", expectation{exit: 7, want: []string{"Failed to connect to autoconfig.example.test port"}}),
		curlSetup("autoconfig-http", expectation{exit: 0, want: []string{"<hostname>mail.example.test</hostname>", "<socketType>SSL</socketType>"}}),
		digHost("imaps", expectation{exit: 0, want: []string{"status: NXDOMAIN"}}),
	},
	"autodiscover-loop": {
		curlSetup("autodiscover", expectation{exit: 0, want: []string{"<Action>redirectUrl</Action>", "https://autodiscover.example.test:"}}),
		digHost("imaps", expectation{exit: 0, want: []string{"status: NXDOMAIN"}}),
	},
	"srv-target-mismatch": {
		digSRV("_imaps._tcp", expectation{exit: 0, want: []string{"status: NOERROR", "mail.hosting.test."}}),
		curlRead("imaps", expectation{exit: 60, want: []string{"SSL: no alternative certificate subject name matches target host name 'mail.hosting.test'"}}),
		curlSetup("autoconfig", expectation{exit: 6, want: []string{"Could not resolve host: autoconfig.example.test"}}),
	},
	"imap-generic-host": {
		digHost("imaps", expectation{exit: 0, want: []string{"status: NOERROR", "ANSWER: 1"}}),
		{name: "curl-imaps", client: "curl", does: "log in at the other provider's IMAPS server",
			expect: expectation{exit: 67, want: []string{"CN=mail.bigmail.test", "NO [AUTHENTICATIONFAILED]", curlLoginDenied}},
			run:    func(e *scenarioEnv) result { return e.c.curl("imaps", "/") }},
	},
	"dns-outage": {
		digHost("submission", expectation{exit: 0, want: []string{"status: SERVFAIL"}}),
		digHost("imaps", expectation{exit: 0, want: []string{"status: SERVFAIL"}}),
	},
	"dns-blocked": {
		digHost("submission", expectation{exit: 9, want: []string{"timed out", digNoServers}}),
	},
	"dns-wrong-server": {
		digHost("submission", expectation{exit: 9, want: []string{"connection refused", digNoServers}}),
	},
	"dns-poisoned": {
		{name: "dig-imaps-host", client: "dig", does: "A query for the mail host at the customer's resolver",
			expect: expectation{exit: 0, want: []string{"127.0.0.66"}},
			run: func(e *scenarioEnv) result {
				return e.c.dig("+short", e.c.service("imaps").Host, "A")
			}},
		curlRead("imaps", expectation{exit: 60, want: []string{impostorCertName, "no alternative certificate subject name matches target host name 'mail.example.test'"}}),
		curlSend("submission", expectation{exit: 60, want: []string{"< 220 mail.mailhost-impostor.test", impostorCertName}}),
	},
	"starttls-required": {
		curlSend("submission", expectation{exit: 55, want: []string{"< 530 5.7.0 Must issue a STARTTLS command first"}}),
		swaksSend("submission", expectation{exit: 28, want: []string{"Host did not advertise authentication"}}),
	},
	"ssl-on-port-25": {
		curlSend("smtp", expectation{exit: 35, want: []string{sslWrongVersion}}),
		opensslConnect("smtp", expectation{exit: 1, want: []string{sslWrongVersion}}),
		swaksSend("smtp", expectation{exit: 29, want: []string{"TLS startup failed", sslWrongVersion}}),
	},
	"plain-on-993": {
		curlRead("imaps", expectation{exit: 28, want: []string{"Connected to", curlNoGreeting}}),
		{name: "contrast-openssl-imaps", client: "openssl", does: "TLS handshake on the same port",
			expect: expectation{exit: 0, want: []string{opensslVerifyOK}},
			run:    func(e *scenarioEnv) result { return e.correct().openssl("imaps") }},
	},
	"pop3-on-imap-port": {
		{name: "fetchmail-pop3s", client: "fetchmail", does: "POP3 over TLS to the configured (IMAPS) port",
			expect: expectation{exit: 4, want: []string{"POP3< * OK", "client/server protocol error"}},
			run:    fetchmailRun("pop3s")},
		{name: "curl-pop3s", client: "curl", does: "POP3 over TLS: waits for +OK, gets an IMAP greeting",
			expect: expectation{exit: 28, want: []string{"< * OK", "Operation timed out"}},
			run:    func(e *scenarioEnv) result { return e.c.curl("pop3s", "/", "--max-time", "4") }},
	},
	"port25-blocked": {
		curlSend("smtp", expectation{exit: 28, want: []string{curlConnTimeout}, avoid: []string{curlRefused}}),
		{name: "contrast-curl-submission", client: "curl", does: "send over the submission port instead",
			expect: expectation{exit: 0, want: []string{"250 2.0.0 OK: queued"}},
			run:    func(e *scenarioEnv) result { return e.correct().curlSend("submission", "") }},
	},
	"port-forward-missing": {
		curlRead("imaps", expectation{exit: 7, want: []string{curlRefused}}),
		opensslConnect("imaps", expectation{exit: 1, want: []string{"connect:errno=111"}}),
		{name: "contrast-curl-submission", client: "curl", does: "send over submission (forwarded)",
			expect: expectation{exit: 0, want: []string{"250 2.0.0 OK: queued"}},
			run:    func(e *scenarioEnv) result { return e.c.curlSend("submission", "") }},
	},
	"firewall-reject": {
		curlRead("imaps", expectation{exit: 7, want: []string{curlRefused}}),
		curlSend("submission", expectation{exit: 7, want: []string{curlRefused}}),
	},
	"firewall-drop": {
		curlRead("imaps", expectation{exit: 28, want: []string{curlConnTimeout}, avoid: []string{curlRefused}}),
		curlSend("submission", expectation{exit: 28, want: []string{curlConnTimeout}, avoid: []string{curlRefused}}),
	},
	"connection-reset": {
		curlRead("imaps", expectation{exit: 56, want: []string{"< * OK", curlReset}}),
		curlSend("submission", expectation{exit: 56, want: []string{"< 220 mail.example.test", curlReset}}),
		swaksSend("submission", expectation{exit: 6, want: []string{"<-  220 mail.example.test", swaksClosed}}),
	},
	"tls10-only": {
		curlRead("imaps", expectation{exit: 35, want: []string{"legacy sigalg disallowed or unsupported"}}),
		opensslConnect("imaps", expectation{exit: 1, want: []string{"Protocol  : TLSv1\n", "legacy sigalg disallowed or unsupported"}}),
		{name: "openssl-imaps-tls1.2", client: "openssl", does: "s_client -tls1_2 (a client that requires TLS 1.2)",
			expect: expectation{exit: 1, want: []string{"unsupported protocol"}},
			run:    func(e *scenarioEnv) result { return e.c.openssl("imaps", "-tls1_2") }},
	},
	"outdated-client": {
		curlRead("imaps", expectation{exit: 35, want: []string{"tlsv1 alert protocol version"}}),
		opensslConnect("imaps", expectation{exit: 1, want: []string{"tlsv1 alert protocol version"}}),
		swaksSend("submission", expectation{exit: 29, want: []string{"tlsv1 alert protocol version", "STARTTLS attempted but failed"}}),
		{name: "contrast-openssl-imaps", client: "openssl", does: "s_client without the customer's TLS 1.0 limit",
			expect: expectation{exit: 0, want: []string{opensslVerifyOK}},
			run:    func(e *scenarioEnv) result { return e.correct().openssl("imaps") }},
	},
	"expired-cert": certFailure("SSL certificate problem: certificate has expired", "verify error:num=10:certificate has expired",
		step{name: "msmtp-submission", client: "msmtp", does: "send over STARTTLS",
			expect: expectation{exit: 69, want: []string{"TLS certificate verification failed", "expired certificate"}},
			run: func(e *scenarioEnv) result {
				return e.c.msmtp("submission", e.c.from(), []byte("Subject: e2e\r\n\r\nx\r\n"))
			}},
		step{name: "fetchmail-imaps", client: "fetchmail", does: "fetch over IMAPS",
			expect: expectation{exit: 2, want: []string{"Server certificate verification error: certificate has expired"}},
			run:    fetchmailRun("imaps")},
		swaksSend("submission", expectation{exit: 29, want: []string{"certificate verify failed"}}),
	),
	"not-yet-valid-cert": certFailure("SSL certificate problem: certificate is not yet valid", "verify error:num=9:certificate is not yet valid"),
	"self-signed-cert":   certFailure("SSL certificate problem: self-signed certificate", "verify error:num=18:self-signed certificate"),
	"untrusted-ca": certFailure("SSL certificate problem: self-signed certificate in certificate chain", "verify error:num=19:self-signed certificate in certificate chain",
		opensslConnect("submission", expectation{exit: 1, want: []string{"i:O = Example Corp, CN = Example Corp Internal Root CA"}})),
	"incomplete-chain": certFailure("SSL certificate problem: unable to get local issuer certificate", "verify error:num=20:unable to get local issuer certificate",
		opensslConnect("submission", expectation{exit: 1, want: []string{"i:O = maillab, CN = maillab Intermediate CA 1"}})),
	"hostname-mismatch": certFailure("SSL: no alternative certificate subject name matches target host name 'mail.example.test'", "verify error:num=62:hostname mismatch"),
	"weak-cert": certFailure("SSL certificate problem: EE certificate key too weak", "verify error:num=66:EE certificate key too weak",
		opensslConnect("submission", expectation{exit: 1, want: []string{"a:PKEY: rsaEncryption, 1024 (bit); sigalg: ecdsa-with-SHA1"}})),
	"tls-interception": {
		curlRead("imaps", expectation{exit: 60, want: []string{"SSL certificate problem: unable to get local issuer certificate"}}),
		opensslConnect("imaps", expectation{exit: 1, want: []string{"verify error:num=20", "i:O = Antivirus Web/Mail Shield, CN = Mail Shield Root"}}),
		{name: "curl-submission", client: "curl", does: "send over STARTTLS (intercepted after the upgrade)",
			expect: expectation{exit: 60, want: []string{"< 220 2.0.0 Ready to start TLS", "SSL certificate problem: unable to get local issuer certificate"}},
			run:    func(e *scenarioEnv) result { return e.c.curlSend("submission", "") }},
	},
	"starttls-not-offered": {
		curlSend("submission", expectation{exit: 64, want: []string{"STARTTLS not supported."}}),
		curlRead("imap", expectation{exit: 64, want: []string{"STARTTLS not available."}}),
		swaksSend("submission", expectation{exit: 29, want: []string{swaksNoSTARTTLS}}),
	},
	"starttls-stripped": {
		swaksSend("submission", expectation{exit: 29, want: []string{"250-XXXXXXXA", swaksNoSTARTTLS}}),
		curlRead("imap", expectation{exit: 64, want: []string{"XXXXXXXX", "STARTTLS not available."}}),
	},
	"starttls-refused": {
		curlSend("submission", expectation{exit: 64, want: []string{"STARTTLS denied, code 454"}}),
		swaksSend("submission", expectation{exit: 29, want: []string{"454 4.7.0 TLS not available", "STARTTLS attempted but failed"}}),
		curlRead("imap", expectation{exit: 64, want: []string{"STARTTLS denied"}}),
	},
	"starttls-broken": {
		curlSend("submission", expectation{exit: 35, want: []string{"< 220 2.0.0 Ready to start TLS", sslWrongVersion}}),
		opensslConnect("submission", expectation{exit: 1, want: []string{sslWrongVersion}}),
		curlRead("imap", expectation{exit: 35, want: []string{sslWrongVersion}}),
	},
	"wrong-password": {
		swaksSend("submission", expectation{exit: 28, want: []string{"535 5.7.8 Error: authentication failed"}}),
		curlRead("imaps", expectation{exit: 67, want: []string{"NO [AUTHENTICATIONFAILED]", curlLoginDenied}}),
		{name: "contrast-curl-imaps", client: "curl", does: "log in with the password set on the web",
			expect: expectation{exit: 0, want: []string{"OK LIST completed"}},
			run:    func(e *scenarioEnv) result { return e.c.with(e.t, e.rightAccount()).curl("imaps", "/") }},
	},
	"wrong-username-case": {
		curlRead("imaps", expectation{exit: 67, want: []string{"NO [AUTHENTICATIONFAILED]", curlLoginDenied}}),
		swaksSend("submission", expectation{exit: 28, want: []string{"535 5.7.8"}}),
		{name: "contrast-curl-imaps", client: "curl", does: "log in with the user name in lower case",
			expect: expectation{exit: 0, want: []string{"OK LIST completed"}},
			run: func(e *scenarioEnv) result {
				a := e.c.acct
				a.Username = strings.ToLower(a.Username)
				return e.c.with(e.t, a).curl("imaps", "/")
			}},
	},
	"basic-auth-disabled": {
		swaksSend("submission", expectation{exit: 28, want: []string{"534 5.7.9 Application-specific password required"}}),
		curlRead("imaps", expectation{exit: 67, want: []string{"NO [ALERT] Application-specific password required"}}),
		{name: "curl-imaps-oauth2", client: "curl", does: "log in with --oauth2-bearer TOKEN",
			expect: expectation{exit: 0, want: []string{"OK LIST completed"}},
			run: func(e *scenarioEnv) result {
				return e.c.curl("imaps", "/", "--oauth2-bearer", e.r.Lab.Primary.Token(e.c.acct.Username))
			}},
		{name: "curl-submission-oauth2", client: "curl", does: "send with --oauth2-bearer TOKEN",
			expect: expectation{exit: 0, want: []string{"> AUTH OAUTHBEARER", "235 2.0.0 Authentication succeeded", "250 2.0.0 OK: queued"}},
			run: func(e *scenarioEnv) result {
				return e.c.curlSend("submission", "", "--oauth2-bearer", e.r.Lab.Primary.Token(e.c.acct.Username))
			}},
	},
	"auth-mech-mismatch": {
		curlSend("submission", expectation{exit: 67, want: []string{"< 250-AUTH PLAIN LOGIN", "Login denied"}}),
		swaksSend("submission", expectation{exit: 28, want: []string{"Auth not attempted, requested type not available"}}),
		curlRead("imaps", expectation{exit: 67, want: []string{"AUTH=PLAIN", "Login denied"}, avoid: []string{"AUTH=CRAM-MD5"}}),
	},
	"expired-password": {
		curlRead("imaps", expectation{exit: 67, want: []string{"NO [EXPIRED]", curlLoginDenied}}),
		swaksSend("submission", expectation{exit: 28, want: []string{"535 5.7.8", "password expired"}}),
	},
	"account-locked": {
		curlRead("imaps", expectation{exit: 67, want: []string{"NO [CONTACTADMIN]", curlLoginDenied}}),
		swaksSend("submission", expectation{exit: 28, want: []string{"525 5.7.13"}}),
	},
	"lockout-after-retries": {
		curlRead("imaps", expectation{exit: 67, want: []string{lockedIMAP, curlLoginDenied}}),
		{name: "curl-imaps-right-password", client: "curl", does: "log in with the CORRECT password",
			expect: expectation{exit: 67, want: []string{lockedIMAP, curlLoginDenied}},
			run:    func(e *scenarioEnv) result { return e.c.with(e.t, e.rightAccount()).curl("imaps", "/") }},
		{name: "swaks-submission-right-password", client: "swaks", does: "send with the CORRECT password",
			expect: expectation{exit: 28, want: []string{"454 4.7.0 Too many failed authentication attempts"}},
			run:    func(e *scenarioEnv) result { return e.c.with(e.t, e.rightAccount()).swaks("submission") }},
	},
	"plaintext-auth-filtered": {
		curlRead("imap", expectation{exit: 56, want: []string{"> A002 AUTHENTICATE PLAIN", curlReset}}),
		curlSend("submission", expectation{exit: 56, want: []string{"> AUTH PLAIN", curlReset}}),
		swaksSend("submission", expectation{exit: 6, want: []string{"-> AUTH LOGIN", swaksClosed}}),
		{name: "contrast-curl-imap-starttls", client: "curl", does: "the same login after STARTTLS",
			expect: expectation{exit: 0, want: []string{"OK LIST completed"}},
			run:    func(e *scenarioEnv) result { return e.c.curl("imap", "/", "--ssl-reqd") }},
	},
	"relay-denied": {
		swaksSend("smtp", expectation{exit: 24, want: []string{"554 5.7.1 <friend@elsewhere.test>: Relay access denied"}}),
		curlSend("smtp", expectation{exit: 55, want: []string{"< 554 5.7.1", "RCPT failed: 554"}}),
	},
	"sender-not-owned": {
		swaksSend("submission", expectation{exit: 24, want: []string{"553 5.7.1 <sales@example.test>: Sender address rejected: not owned by user"}}),
		curlSend("submission", expectation{exit: 55, want: []string{"< 553 5.7.1", "RCPT failed: 553"}}),
		{name: "contrast-swaks-submission", client: "swaks", does: "send from the login's own address",
			expect: expectation{exit: 0, want: []string{"250 2.0.0"}},
			run: func(e *scenarioEnv) result {
				a := e.c.acct
				a.Email = a.Username
				return e.c.with(e.t, a).swaks("submission")
			}},
	},
	"ip-blocklisted": {
		swaksSend("submission", expectation{exit: 24, want: []string{"554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.blocklist.test"}}),
		{name: "dig-blocklist", client: "dig", does: "TXT query for 1.0.0.127.zen.blocklist.test",
			expect: expectation{exit: 0, want: []string{"status: NOERROR", "Listed by zen.blocklist.test"}},
			run:    func(e *scenarioEnv) result { return e.c.dig("1.0.0.127.zen.blocklist.test", "TXT") }},
	},
	"attachment-blocked": {
		{name: "swaks-submission", client: "swaks", does: "send the customer's .exe attachment (--data @message_file)",
			expect: expectation{exit: 26, want: []string{"550 5.7.1 Message content rejected"}},
			run:    func(e *scenarioEnv) result { return e.c.swaks("submission") }},
		{name: "curl-submission", client: "curl", does: "send the customer's message file (-T)",
			expect: expectation{exit: 8, want: []string{"< 550 5.7.1 Message content rejected", "Weird server reply"}},
			run:    func(e *scenarioEnv) result { return e.c.curlSend("submission", "") }},
	},
	"message-too-large": {
		swaksSend("submission", expectation{exit: 26, want: []string{"250-SIZE 1048576", "552 5.3.4"}}),
		curlSend("submission", expectation{exit: 55, want: []string{"SIZE=", "< 552 5.3.4"}}),
	},
	"rate-limited": {
		swaksSend("submission", expectation{exit: 24, want: []string{"450 4.7.1", "Greylisted, please try again"}}),
		curlSend("submission", expectation{exit: 55, want: []string{"RCPT failed: 450"}}),
	},
	"mailbox-full": {
		swaksSend("submission", expectation{exit: 24, want: []string{"552 5.2.2", "Quota exceeded"}}),
		{name: "curl-imaps-append", client: "curl", does: "APPEND a message to INBOX (-T)",
			expect: expectation{exit: 25, want: []string{"NO [OVERQUOTA]"}},
			run: func(e *scenarioEnv) result {
				return e.c.curl("imaps", "/INBOX", "-T", e.c.messageFile("e2e append"))
			}},
	},
	"slow-greeting": {
		curlRead("imaps", expectation{exit: 28, want: []string{"SSL connection using", "Operation timed out", curlNoGreeting}}),
		curlSend("submission", expectation{exit: 28, want: []string{"Connected to", "Operation timed out", curlNoGreeting}}),
	},
	"bandwidth-throttled": {
		{name: "swaks-submission", client: "swaks", does: "send the customer's 512 KiB message (--data @file --timeout 3)",
			expect: expectation{exit: 26, want: []string{"Timeout (3 secs) waiting for server response"}},
			run:    func(e *scenarioEnv) result { return e.c.swaks("submission", "--timeout", "3") }},
		{name: "contrast-curl-submission", client: "curl", does: "send a small message over the same link",
			expect: expectation{exit: 0, want: []string{"250 2.0.0 OK: queued"}},
			run:    func(e *scenarioEnv) result { return e.c.curlSend("submission", e.c.messageFile("small")) }},
	},
	"packet-loss-handshake": {
		{name: "curl-imaps-attempts", client: "curl", does: "4 short attempts (--max-time 2) on imaps",
			shows:  "some exit 0, others exit 28 with \"Connection timed out\"",
			verify: func(e *scenarioEnv) { intermittent(e, "imaps", 4) }},
		{name: "curl-submissions-attempts", client: "curl", does: "4 short attempts (--max-time 2) on submissions",
			shows:  "some exit 0, others exit 28 with \"Connection timed out\"",
			verify: func(e *scenarioEnv) { intermittent(e, "submissions", 4) }},
	},

	// Compound scenarios: the primary as the client meets it, then the
	// secondary cause shown by a client that gets past the primary.
	"expired-cert-wrong-password": {
		curlRead("imaps", expectation{exit: 60, want: []string{"SSL certificate problem: certificate has expired"}, avoid: []string{"AUTHENTICATE"}}),
		swaksSend("submission", expectation{exit: 29, want: []string{"certificate verify failed"}, avoid: []string{"AUTH LOGIN"}}),
		{name: "curl-imaps-insecure", client: "curl", does: "log in accepting the expired certificate (-k, the warning clicked away)",
			expect: expectation{exit: 67, want: []string{"NO [AUTHENTICATIONFAILED]", curlLoginDenied}},
			run:    func(e *scenarioEnv) result { return e.c.curl("imaps", "/", "--insecure") }},
	},
	"wrong-port-starttls-stripped": {
		curlSend("submission", expectation{exit: 35, want: []string{sslWrongVersion}}),
		swaksSend("submission", expectation{exit: 29, want: []string{"TLS startup failed", sslWrongVersion}}),
		curlRead("imap", expectation{exit: 64, want: []string{"XXXXXXXX", "STARTTLS not available."}}),
		{name: "swaks-submission-starttls", client: "swaks", does: "send with STARTTLS on 587 (the security setting fixed)",
			expect: expectation{exit: 29, want: []string{"250-XXXXXXXA", swaksNoSTARTTLS}},
			run:    func(e *scenarioEnv) result { return e.correct().swaks("submission") }},
	},
	"dns-poisoned-impostor-cert": {
		{name: "dig-imaps-host", client: "dig", does: "A query for the mail host at the customer's resolver",
			expect: expectation{exit: 0, want: []string{"127.0.0.66"}},
			run: func(e *scenarioEnv) result {
				return e.c.dig("+short", e.c.service("imaps").Host, "A")
			}},
		curlRead("imaps", expectation{exit: 60, want: []string{impostorCertName, "no alternative certificate subject name matches target host name 'mail.example.test'"}}),
		opensslConnect("imaps", expectation{exit: 1, want: []string{"mailhost-impostor.test", "verify error:num=62:hostname mismatch"}}),
	},
	"lockout-old-password": {
		curlRead("imaps", expectation{exit: 67, want: []string{lockedIMAP, curlLoginDenied}}),
		swaksSend("submission", expectation{exit: 28, want: []string{"454 4.7.0 Too many failed authentication attempts"}}),
	},
	"size-limit-slow-link": {
		curlSend("submission", expectation{exit: 55, want: []string{"250-SIZE 1048576", "SIZE=", "< 552 5.3.4"}}),
		{name: "swaks-submission", client: "swaks", does: "send the customer's 3 MiB message without SIZE= (--timeout 3)",
			expect: expectation{exit: 26, want: []string{"250-SIZE 1048576", "Timeout (3 secs) waiting for server response"}},
			run:    func(e *scenarioEnv) result { return e.c.swaks("submission", "--timeout", "3") }},
	},
	"port587-blocked-old-password": {
		curlSend("submission", expectation{exit: 28, want: []string{curlConnTimeout}, avoid: []string{curlRefused}}),
		curlRead("imaps", expectation{exit: 67, want: []string{"NO [AUTHENTICATIONFAILED]", curlLoginDenied}}),
		{name: "contrast-swaks-submissions", client: "swaks", does: "send over port 465 (implicit TLS) with the new password",
			expect: expectation{exit: 0, want: []string{"235 2.0.0 Authentication succeeded", "250 2.0.0 OK: queued"}},
			run:    func(e *scenarioEnv) result { return e.correct().swaks("submissions") }},
	},
}

// closeWait bounds how long a test waits for a lab to close: Close waits
// up to two seconds for sessions, then cuts them.
const closeWait = 5 * time.Second

// closeLab closes a lab and fails the test if Close does not return in
// closeWait. Faults hold sessions open on purpose (a 30 s greeting delay,
// an upload a throttled link still drains after the client gave up); a
// lab that waits for them instead of cutting them would make every such
// test as slow as its fault. The test does not wait longer; the lab
// directory is the test's own and is removed either way.
func closeLab(t *testing.T, l *lab.Lab) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- l.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close lab: %v", err)
		}
	case <-time.After(closeWait):
		t.Errorf("lab Close did not return within %s: open sessions are not cut", closeWait)
	}
}

// fetchmailRun runs fetchmail on a service; its result shows what it
// delivered after its own output.
func fetchmailRun(service string) func(e *scenarioEnv) result {
	return func(e *scenarioEnv) result { return fetchmailRead(service)(e.c) }
}

// intermittent makes several short attempts on a service and wants both
// outcomes: some handshakes complete, the others stall until the client's
// timeout.
func intermittent(e *scenarioEnv, service string, attempts int) {
	e.t.Helper()
	var ok, stalled int
	for i := 0; i < attempts; i++ {
		var r result
		if e.c.protocol(service) == settings.ProtocolSMTP {
			r = e.c.curlSend(service, "", "--max-time", "2")
		} else {
			r = e.c.curl(service, "/", "--max-time", "2")
		}
		switch {
		case r.exit == 0:
			ok++
		case r.exit == 28 && strings.Contains(r.out, "Connection timed out"):
			stalled++
		default:
			e.t.Errorf("curl on %s: attempt %d: exit %d, want 0 or 28 with \"Connection timed out\"\n%s", e.r.Scenario.Name, i+1, r.exit, r)
		}
	}
	e.t.Logf("%s: %d of %d attempts succeeded, %d stalled in the TLS handshake", service, ok, attempts, stalled)
	if ok == 0 || stalled == 0 {
		e.t.Errorf("curl on %s: %d attempts succeeded and %d timed out, want some of each", e.r.Scenario.Name, ok, stalled)
	}
}

// TestScenarios starts every catalog scenario and runs real clients with
// the customer's settings against it.
func TestScenarios(t *testing.T) {
	for _, name := range scenarios.Names() {
		steps, ok := scenarioSteps[name]
		if !ok {
			continue // TestScenarioTableCoversCatalog reports it
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc, err := scenarios.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			// The lab directory is the test's: it is removed even when a
			// lab bug keeps Close from returning (see closeLab).
			r, err := sc.Start(lab.Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatalf("start %s: %v", name, err)
			}
			t.Cleanup(func() { closeLab(t, r.Lab) })
			t.Cleanup(func() {
				if t.Failed() {
					if data, err := os.ReadFile(filepath.Join(r.Lab.Dir, "lab.log")); err == nil {
						t.Logf("lab transcript of %s:\n%s", name, data)
					}
				}
			})
			logNetworkMechanism(t, sc)
			c := newMailClient(t, name, r.Customer)
			var sent []string
			for _, st := range steps {
				t.Run(st.name, func(t *testing.T) {
					if st.skip != "" {
						t.Skip(st.skip)
					}
					e := &scenarioEnv{t: t, r: r, c: c.in(t)}
					if st.verify != nil {
						st.verify(e)
						return
					}
					x := st.expect
					if st.reads != nil {
						if len(sent) == 0 {
							t.Skip("no message to read: every sending step skipped or failed")
						}
						x.want = append(slices.Clip(x.want), st.reads(sent)...)
					}
					x.check(t, name, st.run(e))
					if st.sends != "" && !t.Failed() {
						sent = append(sent, st.sends)
					}
				})
			}
		})
	}
}

// logNetworkMechanism says how a scenario's drop and reject faults are
// made (docs/faults.md tells which mechanism a run used): the catalog uses
// the default mode, sockets of the lab's own; netns_test.go covers mode
// nftables.
func logNetworkMechanism(t *testing.T, sc *scenarios.Scenario) {
	t.Helper()
	for _, f := range sc.Faults {
		if f.Type != "drop" && f.Type != "reject" {
			continue
		}
		var p struct {
			Mode string `yaml:"mode"`
		}
		if f.Params != nil {
			if err := f.Params.Decode(&p); err != nil {
				t.Fatalf("fault %s: %v", f.Type, err)
			}
		}
		how := map[string]string{
			"drop":   "an accept queue kept full, so the kernel drops SYNs",
			"reject": "a bound socket that never listens, so the kernel answers RST",
		}[f.Type]
		if p.Mode == "nftables" {
			how = "an nftables rule"
		}
		t.Logf("mechanism: fault %s on %s in mode %s: %s", f.Type, orDefault(strings.Join(f.Services, ","), "every service"), orDefault(p.Mode, "listener"), how)
	}
}

// TestScenarioTableCoversCatalog checks that every catalog scenario has
// client steps and that the table names no scenario the catalog lacks.
func TestScenarioTableCoversCatalog(t *testing.T) {
	names := scenarios.Names()
	if len(names) == 0 {
		t.Error("the catalog has no scenarios")
	}
	for _, n := range names {
		if len(scenarioSteps[n]) == 0 {
			t.Errorf("scenario %s: no client steps", n)
		}
	}
	for n := range scenarioSteps {
		if !slices.Contains(names, n) {
			t.Errorf("steps for %s, which is not in the catalog", n)
		}
	}
	for n, steps := range scenarioSteps {
		seen := map[string]bool{}
		failing := false
		for _, st := range steps {
			if seen[st.name] {
				t.Errorf("scenario %s: two steps named %s", n, st.name)
			}
			seen[st.name] = true
			if (st.run == nil) == (st.verify == nil) {
				t.Errorf("scenario %s step %s: want exactly one of run and verify", n, st.name)
			}
			if _, ok := clientPackages[st.client]; !ok {
				t.Errorf("scenario %s step %s: unknown client %q", n, st.name, st.client)
			}
			if st.verify == nil && len(st.expect.want) == 0 && st.reads == nil {
				t.Errorf("scenario %s step %s: asserts no text", n, st.name)
			}
			failing = failing || !strings.HasPrefix(st.name, "contrast-")
		}
		if !failing {
			t.Errorf("scenario %s: only contrast steps", n)
		}
	}
}

// TestScenarioAssertionsGolden keeps testdata/scenario-assertions.md, the
// matrix of what each scenario's clients must show, in step with the
// table (go test -tags e2e -run Golden ./e2e -update rewrites it).
func TestScenarioAssertionsGolden(t *testing.T) {
	var b strings.Builder
	b.WriteString("# What real clients show for each scenario\n\n")
	b.WriteString("Generated from e2e/scenarios_test.go by `go test -tags e2e -run TestScenarioAssertionsGolden ./e2e -update`.\n")
	b.WriteString("Every client runs with the customer's settings (contrast steps with the correct ones).\n\n")
	b.WriteString("| scenario | step | client does | exit | output contains |\n| --- | --- | --- | --- | --- |\n")
	for _, name := range scenarios.Names() {
		var sent []string
		for _, st := range scenarioSteps[name] {
			exit, shows := fmt.Sprint(st.expect.exit), quoteAll(st.expect.want)
			if st.reads != nil {
				shows = quoteAll(append(slices.Clip(st.expect.want), st.reads(sent)...)) + " (for the messages of the sending steps that passed)"
			}
			if st.sends != "" {
				sent = append(sent, st.sends)
			}
			if st.verify != nil {
				exit, shows = "see text", st.shows
			}
			if len(st.expect.avoid) > 0 {
				shows += "; not " + quoteAll(st.expect.avoid)
			}
			if st.skip != "" {
				shows += " (skipped: lab bug)"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, st.name, st.does, exit, strings.ReplaceAll(shows, "|", `\|`))
		}
	}
	golden(t, "scenario-assertions.md", b.String())
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "`" + strings.ReplaceAll(s, "\n", `\n`) + "`"
	}
	return strings.Join(q, ", ")
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s is out of date; run go test -tags e2e -run TestScenarioAssertionsGolden ./e2e -update\n--- got\n%s", path, got)
	}
}
