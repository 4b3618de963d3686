//go:build e2e

package realservers

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/diagnose"
	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/settings"
)

var (
	recordFlag  = flag.Bool("record", false, "rewrite e2e/testdata/recorded/*.txt from the real servers' replies")
	reportsFlag = flag.String("reports", "", "write the diagnoser's JSON report of each case to `dir`/<case>.json")
)

// recordedDir holds the transcripts, golden inputs of the diagnoser's
// unit tests.
const recordedDir = "../testdata/recorded"

// service is one service of a case's customer settings.
type service struct {
	// name is the settings service name.
	name string
	// backend is a Postfix listener or a DovecotBackend name.
	backend string
	// security is what the customer configured; "" is the service's usual.
	security string
}

// realCase is one customer's situation against the real servers.
type realCase struct {
	name string
	// setup says what the servers do, for the recording's header.
	setup string
	want  rootcause.Code
	// services are what the customer configured.
	services []service
	// password returns what the customer typed; nil means the right one.
	password func(right string) string
	// noLogin configures the client without credentials.
	noLogin bool
	// client are the client's limits (copied into settings.Client);
	// message is "big" for a message over SmallSizeLimit, "exe" for one
	// with an executable attachment.
	client  settings.Client
	message string
	// sendTo is the recipient; "" means the account itself.
	sendTo string
	// from is the sender (From) address the customer configured, e.g. an
	// alias; "" means the account's own. The login stays the account's.
	from string
	// delivered is how many messages must land in the account's Maildir
	// (the recorder's and the diagnoser's send); 0 means none.
	delivered int
	// timeout bounds each connect and reply wait of the recorder and the
	// diagnoser; 0 means the defaults (10 s and 5 s). Cases where a
	// client waits for a greeting that never comes set it short.
	timeout time.Duration
	// clientFails is set when a mail client's conversation with these
	// settings ends in an error (no greeting, another protocol's
	// reply): the recorder notes it, and the case expects it.
	clientFails bool
	// passdbExtra are Dovecot passdb extra fields of the case's account
	// (Account.PassdbExtra).
	passdbExtra string
	// sameClient runs the diagnoser through the recorder's fronts (the
	// customer's own address, right after the mail client), as a helpdesk
	// runs it on the customer's machine; otherwise it gets fronts, and
	// so a client address, of its own.
	sameClient bool
	// check, when set, checks more of the diagnoser's report.
	check func(t *testing.T, rep *diagnose.Report)
	// family names the server family of another package than Postfix
	// and Dovecot (families.go); "" means Postfix and Dovecot only.
	family string
	// resolver names the customer's resolver (a site.Other backend, e.g.
	// ResolverGood); "" means the site's DNS server.
	resolver string
}

var cases = []realCase{
	{
		name:      "healthy",
		setup:     "Postfix submission as in Debian's master.cf (STARTTLS required, SASL via Dovecot, TLS auth only); Dovecot IMAPS and POP3S; good certificate",
		want:      rootcause.Healthy,
		services:  []service{{"submission", ListenerSubmission, ""}, {"imaps", DovecotBackend(DovecotGood, "imaps"), ""}, {"pop3s", DovecotBackend(DovecotGood, "pop3s"), ""}},
		delivered: 2,
	},
	{
		name:      "healthy-other-ports",
		setup:     "Postfix submissions (implicit TLS, smtpd_tls_wrappermode); Dovecot IMAP and POP3 with STARTTLS/STLS; good certificate",
		want:      rootcause.Healthy,
		services:  []service{{"submissions", ListenerSubmissions, ""}, {"imap", DovecotBackend(DovecotGood, "imap"), ""}, {"pop3", DovecotBackend(DovecotGood, "pop3"), ""}},
		delivered: 2,
	},
	{
		name:     "wrong-password",
		setup:    "good servers; the customer types an old password",
		want:     rootcause.AuthFailed,
		services: []service{{"submission", ListenerSubmission, ""}, {"imaps", DovecotBackend(DovecotGood, "imaps"), ""}, {"pop3s", DovecotBackend(DovecotGood, "pop3s"), ""}},
		password: func(right string) string { return "old-" + right },
	},
	{
		name:     "expired-cert",
		setup:    "Postfix submission and Dovecot IMAPS/POP3S present a certificate that expired yesterday",
		want:     rootcause.TLSCertExpired,
		services: certServices(CertExpired),
	},
	{
		name:     "not-yet-valid-cert",
		setup:    "Postfix submission and Dovecot IMAPS/POP3S present a certificate valid from 30 days ahead",
		want:     rootcause.TLSCertNotYetValid,
		services: certServices(CertNotYetValid),
	},
	{
		name:     "self-signed-cert",
		setup:    "Postfix submission and Dovecot IMAPS/POP3S present a self-signed certificate",
		want:     rootcause.TLSCertSelfSigned,
		services: certServices(CertSelfSigned),
	},
	{
		name:     "untrusted-ca",
		setup:    "Postfix submission and Dovecot IMAPS/POP3S present a certificate of a private CA the client does not trust",
		want:     rootcause.TLSCertUntrusted,
		services: certServices(CertUntrusted),
	},
	{
		name:     "incomplete-chain",
		setup:    "Postfix submission and Dovecot IMAPS/POP3S present a leaf signed by an intermediate CA, without the intermediate",
		want:     rootcause.TLSCertChainIncomplete,
		services: certServices(CertNoIntermediate),
	},
	{
		name:     "hostname-mismatch",
		setup:    "Postfix submission and Dovecot IMAPS/POP3S present a certificate for www." + Domain + " only",
		want:     rootcause.TLSCertHostnameMismatch,
		services: certServices(CertWrongName),
	},
	{
		name:     "weak-cert",
		setup:    "Postfix submission and Dovecot IMAPS/POP3S present an RSA-1024 certificate from the trusted CA, loaded by lowering OpenSSL to security level 0 (" + WeakTLSCipherList + ")",
		want:     rootcause.TLSCertWeak,
		services: certServices(CertWeak),
	},
	{
		name:     "starttls-required",
		setup:    "Postfix submission with smtpd_tls_security_level = may and smtpd_tls_auth_only = yes; the customer configured no encryption",
		want:     rootcause.AuthRequiresTLS,
		services: []service{{"submission", ListenerTLSAuthOnly, settings.SecurityNone}},
	},
	{
		name:     "starttls-required-encrypt",
		setup:    "Postfix submission as in Debian's master.cf (smtpd_tls_security_level = encrypt); the customer configured no encryption",
		want:     rootcause.AuthRequiresTLS,
		services: []service{{"submission", ListenerSubmission, settings.SecurityNone}},
	},
	{
		name:     "dovecot-plaintext-auth-disabled",
		setup:    "Dovecot IMAP and POP3 with its defaults (disable_plaintext_auth = yes) for a remote client; the customer configured no encryption",
		want:     rootcause.AuthRequiresTLS,
		services: []service{{"imap", DovecotBackend(DovecotGood, "imap"), settings.SecurityNone}, {"pop3", DovecotBackend(DovecotGood, "pop3"), settings.SecurityNone}},
	},
	{
		name:     "starttls-not-offered",
		setup:    "Postfix submission with smtpd_tls_security_level = none; Dovecot with ssl = no; the customer requires STARTTLS",
		want:     rootcause.STARTTLSNotOffered,
		services: []service{{"submission", ListenerNoTLS, ""}, {"imap", DovecotBackend(DovecotNoSSL, "imap"), ""}, {"pop3", DovecotBackend(DovecotNoSSL, "pop3"), ""}},
	},
	{
		name:     "starttls-refused",
		setup:    "Postfix submission requiring TLS (smtpd_tls_security_level = encrypt) whose smtpd_tls_cert_file does not exist, so it cannot start TLS",
		want:     rootcause.STARTTLSRefused,
		services: []service{{"submission", ListenerTLSUnavailable, ""}},
	},
	{
		name:     "client-blocked",
		setup:    "Postfix submission with an IP access list (check_client_access cidr: 127.0.0.0/8 REJECT Access denied) before permit_sasl_authenticated",
		want:     rootcause.SMTPClientBlocked,
		services: []service{{"submission", ListenerClientBlocked, ""}},
	},
	{
		name:     "content-rejected",
		setup:    "Postfix with mime_header_checks rejecting executable attachments; the customer sends setup.exe",
		want:     rootcause.SMTPContentRejected,
		services: []service{{"submission", ListenerSubmission, ""}},
		message:  "exe",
	},
	{
		name:       "rate-limited",
		setup:      "Postfix submission with smtpd_client_connection_rate_limit = 1 and no exceptions: a second connection within a minute from the same address gets 421",
		want:       rootcause.SMTPRateLimited,
		services:   []service{{"submission", ListenerRateLimited, ""}},
		sameClient: true,
	},
	{
		name:        "account-disabled",
		setup:       "the account is disabled in Dovecot's passdb (extra field nologin=y, no reason: Dovecot's default text); Postfix SASL asks the same Dovecot; the password is right",
		want:        rootcause.AuthAccountLocked,
		services:    []service{{"submission", ListenerSubmission, ""}, {"imaps", DovecotBackend(DovecotGood, "imaps"), ""}, {"pop3s", DovecotBackend(DovecotGood, "pop3s"), ""}},
		passdbExtra: "nologin=y",
	},
	{
		name:     "tls10-only",
		setup:    "Postfix submission with TLS 1.0 only (smtpd_tls_protocols " + tls10Only + ") and Dovecot whose OpenSSL is capped at TLS 1.0 (MaxProtocol = TLSv1); the customer's client is current",
		want:     rootcause.TLSProtocolTooOld,
		services: []service{{"submission", ListenerTLS10, ""}, {"imaps", DovecotBackend(DovecotTLS10, "imaps"), ""}, {"pop3s", DovecotBackend(DovecotTLS10, "pop3s"), ""}},
	},
	{
		name:     "mailbox-full",
		setup:    "Dovecot quota (maildir, quota_rule = *:storage=" + quotaLimit + ") with its quota-status policy service asked by Postfix submission at RCPT; the customer sends to herself",
		want:     rootcause.MailboxFull,
		services: []service{{"submission", ListenerQuota, ""}, {"imaps", DovecotBackend(DovecotQuota, "imaps"), ""}},
	},
	{
		name:     "starttls-broken",
		setup:    "Postfix submission whose tls_medium_cipherlist names only 3DES, which Debian 12's OpenSSL no longer has: Postfix answers STARTTLS with 220, then logs 'no cipher match' and drops the connection",
		want:     rootcause.STARTTLSHandshakeFailed,
		services: []service{{"submission", ListenerNoSharedCipher, ""}},
	},
	{
		name:     "oauth-only",
		setup:    "Dovecot with auth_mechanisms = xoauth2 oauthbearer and an oauth2 passdb (password logins off); Postfix SASL asks that Dovecot; the customer's client logs in with a password",
		want:     rootcause.AuthBasicDisabled,
		services: []service{{"submission", ListenerOAuth, ""}, {"imaps", DovecotBackend(DovecotOAuth, "imaps"), ""}, {"pop3s", DovecotBackend(DovecotOAuth, "pop3s"), ""}},
		check: func(t *testing.T, rep *diagnose.Report) {
			// Every service says so, POP3 too, where Dovecot still lists
			// USER and answers PASS "Unsupported authentication mechanism".
			for _, svc := range rep.Services {
				for _, st := range svc.Steps {
					if !st.OK && st.Code != rootcause.AuthBasicDisabled {
						t.Errorf("%s %s: %s (%s), want every failure AUTH_BASIC_DISABLED", svc.Service, st.Step, st.Code, st.Evidence)
					}
				}
				if svc.OK {
					t.Errorf("%s passed; the server takes no password", svc.Service)
				}
			}
		},
	},
	{
		name:     "relay-denied",
		setup:    "Postfix port-25-style smtpd (no SASL, smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination); the customer sends without logging in to another domain",
		want:     rootcause.SMTPRelayDenied,
		services: []service{{"smtp", ListenerSMTP, settings.SecurityNone}},
		noLogin:  true,
		sendTo:   "someone@elsewhere.test",
	},
	{
		name:     "message-too-large",
		setup:    fmt.Sprintf("Postfix submission with message_size_limit = %d; the customer sends a larger message", SmallSizeLimit),
		want:     rootcause.SMTPMessageTooLarge,
		services: []service{{"submission", ListenerSmall, ""}},
		message:  "big",
	},
	{
		name:     "auth-mech-mismatch",
		setup:    "good servers offering PLAIN (Dovecot's default auth_mechanisms); the customer's client speaks CRAM-MD5 only",
		want:     rootcause.AuthMechUnsupported,
		services: []service{{"submission", ListenerSubmission, ""}, {"imaps", DovecotBackend(DovecotGood, "imaps"), ""}, {"pop3s", DovecotBackend(DovecotGood, "pop3s"), ""}},
		client:   settings.Client{AuthMechs: []string{"CRAM-MD5"}},
	},
	{
		name:        "plain-on-tls-port",
		setup:       "Postfix submissions (implicit TLS, smtpd_tls_wrappermode) and Dovecot IMAPS and POP3S; the customer configured STARTTLS (SMTP, IMAP) and no encryption (POP3) on those ports",
		want:        rootcause.PortSecurityMismatchPlainOnTLS,
		services:    []service{{"submission", ListenerSubmissions, settings.SecurityStartTLS}, {"imap", DovecotBackend(DovecotGood, "imaps"), settings.SecurityStartTLS}, {"pop3", DovecotBackend(DovecotGood, "pop3s"), settings.SecurityNone}},
		timeout:     2 * time.Second,
		clientFails: true,
	},
	{
		name:     "tls-on-plain-port",
		setup:    "Postfix submission (STARTTLS) and Dovecot IMAP and POP3 (STARTTLS/STLS); the customer configured SSL/TLS on those ports",
		want:     rootcause.PortSecurityMismatchTLSOnPlain,
		services: []service{{"submissions", ListenerSubmission, settings.SecurityTLS}, {"imaps", DovecotBackend(DovecotGood, "imap"), settings.SecurityTLS}, {"pop3s", DovecotBackend(DovecotGood, "pop3"), settings.SecurityTLS}},
	},
	{
		name:        "pop3-on-imap-port",
		setup:       "Dovecot IMAPS; the customer's POP3 (SSL/TLS) settings point at the IMAPS port",
		want:        rootcause.WrongProtocol,
		services:    []service{{"pop3s", DovecotBackend(DovecotGood, "imaps"), settings.SecurityTLS}},
		clientFails: true,
	},
	{
		name:     "outdated-client",
		setup:    "good servers: Dovecot refuses TLS below 1.2 (ssl_min_protocol default), Postfix 3.7 with its defaults still accepts TLS 1.0; the customer's client speaks TLS 1.0 at most",
		want:     rootcause.TLSClientOutdated,
		services: []service{{"submission", ListenerSubmission, ""}, {"imaps", DovecotBackend(DovecotGood, "imaps"), ""}, {"pop3s", DovecotBackend(DovecotGood, "pop3s"), ""}},
		client:   settings.Client{MaxTLS: "1.0"},
		check: func(t *testing.T, rep *diagnose.Report) {
			// Postfix negotiates TLS 1.0 because the client allows no
			// more: the server is not too old, the client is.
			for _, f := range rep.Findings {
				if f.Code == rootcause.TLSProtocolTooOld {
					t.Errorf("finding %s on %s: %s; the server speaks TLS 1.3", f.Code, f.Service, f.Summary)
				}
			}
			if !slices.ContainsFunc(rep.Findings, func(f diagnose.Finding) bool {
				return f.Code == rootcause.TLSClientOutdated && f.Service == "submission" && f.Severity == diagnose.SeverityWarning
			}) {
				t.Errorf("no TLS_CLIENT_OUTDATED warning for submission, where the client's TLS 1.0 limit chose the version: %+v", rep.Findings)
			}
		},
	},
}

// certServices are submission, IMAPS and POP3S presenting cert.
func certServices(c Cert) []service {
	return []service{{"submission", ListenerCert(c), ""}, {"imaps", DovecotBackend(string(c), "imaps"), ""}, {"pop3s", DovecotBackend(string(c), "pop3s"), ""}}
}

// brokenCerts are the certificates that get servers of their own.
var brokenCerts = []Cert{CertExpired, CertNotYetValid, CertSelfSigned, CertUntrusted, CertNoIntermediate, CertWrongName, CertWeak}

func TestRealServers(t *testing.T) {
	users := make([]string, len(cases))
	for i, c := range cases {
		users[i] = accountName(c.name)
	}
	extra := map[string]string{}
	for _, c := range cases {
		if c.passdbExtra != "" {
			extra[accountName(c.name)] = c.passdbExtra
		}
	}
	site := StartSite(t, SiteOptions{Users: users, PassdbExtra: extra, DovecotCerts: brokenCerts})
	t.Logf("software: %s", site.Versions.Header())
	missing := startFamilies(t, site)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			require(t, missing[c.family], os.Getenv("CI"))
			runCase(t, site, c)
		})
	}
}

// accountName turns a case name into the local part of its own account,
// so that cases do not share mailboxes.
func accountName(caseName string) string { return strings.ReplaceAll(caseName, "-", ".") }

func runCase(t *testing.T, site *Site, c realCase) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	acct := site.Accounts[accountName(c.name)]
	msgFile := ""
	switch c.message {
	case "big":
		msgFile = filepath.Join(t.TempDir(), "big.eml")
		writeFile(t, msgFile, bigMessage(acct.Email, 3*SmallSizeLimit), 0o644)
	case "exe":
		msgFile = filepath.Join(t.TempDir(), "invoice.eml")
		writeFile(t, msgFile, exeMessage(acct.Email), 0o644)
	}

	// The recorder, as the customer's mail client, first.
	tr := &Transcript{}
	recSettings := customerSettings(t, site, c, acct, msgFile)
	recordCase(ctx, t, site, c, acct, recSettings, tr)
	checkRecording(t, site, c, tr)

	// Then the diagnoser, with the same settings through fronts of its
	// own (another client address) unless the case says otherwise.
	st := recSettings
	if !c.sameClient {
		st = customerSettings(t, site, c, acct, msgFile)
	}
	rep, elapsed := diagnoseSettings(ctx, t, c, st)
	t.Logf("Diagnose(%s) = %s in %s", c.name, rep.RootCause, elapsed.Round(time.Millisecond))
	js, err := rep.JSON()
	if err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	if *reportsFlag != "" {
		writeFile(t, filepath.Join(*reportsFlag, c.name+".json"), js, 0o644)
	}
	if rep.RootCause != c.want {
		t.Errorf("Diagnose(%s) = %s, want %s\nsummary: %s\nreport:\n%s\nserver transcript:\n%s", c.name, rep.RootCause, c.want, rep.Summary, js, tr.Body())
	}
	if c.check != nil {
		c.check(t, rep)
	}
	if c.delivered > 0 {
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		defer wcancel()
		if n, err := site.WaitMessages(wctx, acct, c.delivered); err != nil {
			t.Errorf("after the diagnoser's send test: %v", err)
		} else if n != c.delivered {
			t.Errorf("%s holds %d messages, want %d", acct.Email, n, c.delivered)
		}
	}
}

// customerSettings are the settings the customer typed, each service
// reached through a new front (a client address of its own).
func customerSettings(t *testing.T, site *Site, c realCase, acct Account, msgFile string) *settings.Settings {
	t.Helper()
	st := &settings.Settings{
		Domain:   site.Domain,
		Resolver: site.DNS.Addr,
		CAFile:   site.Certs.CAFile,
		Services: map[string]settings.Service{},
	}
	a := settings.Account{Email: acct.Email}
	if c.from != "" {
		a.Email = c.from
	}
	if !c.noLogin {
		a.Username, a.Password = acct.Email, acct.Password
		if c.password != nil {
			a.Password = c.password(acct.Password)
		}
	}
	st.Accounts = []settings.Account{a}
	for _, s := range c.services {
		info, ok := settings.LookupService(s.name)
		if !ok {
			t.Fatalf("unknown service %q", s.name)
		}
		sec := s.security
		if sec == "" {
			sec = info.Security
		}
		st.Services[s.name] = site.Service(site.NewFront(t, s.backend), sec)
	}
	cl := c.client
	cl.SendTo, cl.MessageFile = c.sendTo, msgFile
	if cl.MaxTLS != "" || len(cl.AuthMechs) > 0 || cl.SendTo != "" || cl.MessageFile != "" {
		st.Client = &cl
	}
	if c.resolver != "" {
		st.Resolver = site.Backend(t, c.resolver)
	}
	if err := st.Validate(); err != nil {
		t.Fatalf("settings of %s: %v", c.name, err)
	}
	return st
}

// recordCase runs the recorder for every service of st, SMTP first; after
// a send that the server accepted it waits for the delivery, so that the
// IMAP and POP3 conversations see the message.
func recordCase(ctx context.Context, t *testing.T, site *Site, c realCase, acct Account, st *settings.Settings, tr *Transcript) {
	t.Helper()
	tr.Mask(acct.Password)
	if c.resolver != "" {
		ok, err := recordLookup(ctx, tr, st.Resolver)
		if err != nil && !c.clientFails {
			t.Errorf("recording: %v", err)
		}
		if !ok {
			if !c.clientFails {
				t.Errorf("recording: no address for %s from the customer's resolver", MailHost)
			}
			return
		}
	}
	a := st.Account0()
	o := ClientOptions{Username: a.Username, Password: a.Password, From: a.Email, To: acct.Email, Roots: site.Certs.Pool(), Timeout: c.timeout}
	tr.Mask(a.Password)
	if st.Client != nil {
		o.AuthMechs = st.Client.AuthMechs
		if st.Client.SendTo != "" {
			o.To = st.Client.SendTo
		}
		if st.Client.MaxTLS != "" {
			o.MaxTLS = map[string]uint16{"1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}[st.Client.MaxTLS]
		}
	}
	for _, name := range st.SortedServiceNames() {
		svc := st.Services[name]
		info, _ := settings.LookupService(name)
		cs := ClientService{Name: name, Protocol: info.Protocol, Security: svc.Security, Host: svc.Host, Addr: fmt.Sprintf("127.0.0.1:%d", svc.Port)}
		so := o
		if info.Protocol == settings.ProtocolSMTP {
			so.Message = recordedMessage(c.name, o.From, o.To)
			if st.Client != nil && st.Client.MessageFile != "" {
				data, err := os.ReadFile(st.Client.MessageFile)
				if err != nil {
					t.Fatal(err)
				}
				so.Message = data
			}
		}
		out, err := Record(ctx, tr, cs, so)
		switch {
		case err != nil && !c.clientFails:
			t.Errorf("recording %s: %v", name, err)
		case err == nil && c.clientFails:
			t.Errorf("recording %s: the conversation ended normally; the case expects a mail client's conversation to fail", name)
		}
		if out.Sent && info.Protocol == settings.ProtocolSMTP {
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			if _, err := site.WaitMessages(wctx, acct, 1); err != nil {
				t.Errorf("message accepted by %s did not land: %v", name, err)
			}
			cancel()
		}
	}
}

// checkRecording writes the transcript with -record, and otherwise
// compares it with the recorded file (the body: the header names the
// software versions and may differ).
func checkRecording(t *testing.T, site *Site, c realCase, tr *Transcript) {
	t.Helper()
	path := filepath.Join(recordedDir, c.name+".txt")
	body := tr.Body()
	if *recordFlag {
		header := RecordingHeader(
			"maillab e2e recording "+c.name+": what real servers sent to a mail client",
			"software: "+site.Versions.Header()+familyVersion(site, c.family),
			"setup: "+c.setup,
			"expected root cause: "+string(c.want),
			"recorded by: go test -tags e2e ./e2e/realservers -run 'TestRealServers/"+c.name+"$' -record",
			`lines: "S: " server, "C: " client, "## " recorder notes; `+MailHost+" is 127.0.0.1 via the test DNS",
			"placeholders: <QUEUEID> Postfix or OpenSMTPD queue id, <TIMING> Dovecot's command timing, <N> UIDVALIDITY/UIDNEXT, <CLIENTIP> the client address a front claims, <secret> credentials",
		)
		if err := os.MkdirAll(recordedDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WriteRecording(path, header, body); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (record it with -record)", err)
	}
	_, want := SplitRecording(data)
	if !bytes.Equal(want, []byte(body)) {
		t.Errorf("the servers' replies differ from %s (re-record with -record if the software changed):\n%s", path, lineDiff(string(want), body))
	}
}

// lineDiff lists the lines only in want ("-") or only in got ("+").
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(same lines in another order)"
	}
	return b.String()
}

// recordedMessage is the recorder's small test message; it is the same
// every run.
func recordedMessage(caseName, from, to string) []byte {
	return []byte(fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: maillab e2e realservers recording (%s)\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <%s.recording@maillab.invalid>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThis message was sent by the maillab e2e recorder.\r\n", from, to, caseName, caseName))
}

// bigMessage is an RFC 5322 message with a base64 attachment, of at least
// size bytes.
func bigMessage(from string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: the quarterly report\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <big@maillab.invalid>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThe report is attached.\r\n--b1\r\nContent-Type: application/pdf; name=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n", from, from)
	line := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", 3)[:76] + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

// exeMessage is an RFC 5322 message with a small Windows executable
// attached (its first bytes, "MZ"), as a customer forwards an installer.
func exeMessage(from string) []byte {
	return []byte(fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: the installer\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <exe@maillab.invalid>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nHere is the installer.\r\n--b1\r\nContent-Type: application/octet-stream; name=\"setup.exe\"\r\nContent-Disposition: attachment; filename=\"setup.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAA=\r\n--b1--\r\n", from, from))
}

// diagnoseSettings runs the diagnoser on a case's customer settings, trusting
// only the site's CA, with the case's timeout (5 s by default), and
// returns the report and how long it took.
func diagnoseSettings(ctx context.Context, t *testing.T, c realCase, st *settings.Settings) (*diagnose.Report, time.Duration) {
	t.Helper()
	cfg, err := diagnose.FromSettings(st)
	if err != nil {
		t.Fatalf("FromSettings: %v", err)
	}
	cfg.ConnectTimeout, cfg.ReplyTimeout = 5*time.Second, 5*time.Second
	if c.timeout > 0 {
		cfg.ConnectTimeout, cfg.ReplyTimeout = c.timeout, c.timeout
	}
	cfg.NoSystemRoots = true
	start := time.Now()
	rep, err := diagnose.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Diagnose(%s): %v", c.name, err)
	}
	return rep, time.Since(start)
}
