//go:build e2e

package realservers

import (
	"fmt"
	"time"

	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/settings"
)

// familyCases run against the server families of families.go; they join
// the Postfix and Dovecot cases of TestRealServers.
var familyCases = []realCase{
	{
		name:     "nginx-healthy",
		family:   FamilyNginx,
		setup:    "nginx mail proxy (IMAPS; POP3 with STLS) before Dovecot; logins checked by nginx's auth_http service, then passed on to Dovecot; good certificate",
		want:     rootcause.Healthy,
		services: []service{{"imaps", NginxIMAPS, ""}, {"pop3", NginxPOP3, ""}},
	},
	{
		name:     "nginx-wrong-password",
		family:   FamilyNginx,
		setup:    "nginx mail proxy before Dovecot; the auth_http service refuses the old password with nginx's documented 'Invalid login or password' and Auth-Wait: 3 (nginx holds the answer 3 s)",
		want:     rootcause.AuthFailed,
		services: []service{{"imaps", NginxIMAPS, ""}, {"pop3", NginxPOP3, ""}},
		password: func(right string) string { return "old-" + right },
	},
	{
		name:     "nginx-starttls-only",
		family:   FamilyNginx,
		setup:    "nginx mail proxy with starttls only on IMAP and POP3; the customer configured no encryption",
		want:     rootcause.AuthRequiresTLS,
		services: []service{{"imap", NginxIMAPTLSOnly, settings.SecurityNone}, {"pop3", NginxPOP3TLSOnly, settings.SecurityNone}},
	},
	{
		name:     "nginx-expired-cert",
		family:   FamilyNginx,
		setup:    "nginx mail proxy IMAPS and POP3S present a certificate that expired yesterday",
		want:     rootcause.TLSCertExpired,
		services: []service{{"imaps", NginxIMAPSExpired, ""}, {"pop3s", NginxPOP3SExpired, ""}},
	},
	{
		name:   "nginx-auth-service-down",
		family: FamilyNginx,
		setup:  "nginx mail proxy whose auth_http service is down (connection refused): nginx answers the login with its own '-ERR internal server error'; the password is right",
		want:   rootcause.Intermittent,
		// POP3 only: over IMAP nginx sends an untagged "* BAD internal
		// server error" and closes, which the diagnoser reads as a
		// connection cut (TCP_RESET) before any reply table sees it.
		services: []service{{"pop3s", NginxPOP3SAuthDown, ""}},
		// nginx closes the connection after its error.
		clientFails: true,
	},
	{
		name:     "haproxy-healthy",
		family:   FamilyHAProxy,
		setup:    "HAProxy (mode tcp) terminating IMAPS and POP3S for Dovecot's plain ports, telling Dovecot about the TLS by PROXY v2 (send-proxy-v2-ssl); good certificate",
		want:     rootcause.Healthy,
		services: []service{{"imaps", HAProxyIMAPS, ""}, {"pop3s", HAProxyPOP3S, ""}},
	},
	{
		name:     "haproxy-wrong-password",
		family:   FamilyHAProxy,
		setup:    "HAProxy TLS front before Dovecot; the customer types an old password; Dovecot's auth_failure_delay (2 s) is on",
		want:     rootcause.AuthFailed,
		services: []service{{"imaps", HAProxyIMAPS, ""}, {"pop3s", HAProxyPOP3S, ""}},
		password: func(right string) string { return "old-" + right },
	},
	{
		name:     "haproxy-expired-cert",
		family:   FamilyHAProxy,
		setup:    "HAProxy TLS front before Dovecot presents a certificate that expired yesterday",
		want:     rootcause.TLSCertExpired,
		services: []service{{"imaps", HAProxyIMAPSExpired, ""}, {"pop3s", HAProxyPOP3SExpired, ""}},
	},
	{
		name:     "haproxy-tls10-only",
		family:   FamilyHAProxy,
		setup:    "HAProxy TLS front before Dovecot with ssl-min-ver and ssl-max-ver TLSv1.0 (ciphers " + WeakTLSCipherList + "); the customer's client is current",
		want:     rootcause.TLSProtocolTooOld,
		services: []service{{"imaps", HAProxyIMAPSTLS10, ""}, {"pop3s", HAProxyPOP3STLS10, ""}},
	},
}

func init() {
	cases = append(append(append(append(cases, familyCases...), openSMTPDCases...), resolverCases...), courierCases...)
}

// resolverCases give the customer a validating resolver of her own (BIND)
// in front of the domain's DNS.
var resolverCases = []realCase{
	{
		name:      "bind-healthy",
		family:    FamilyBIND,
		setup:     "good servers; the customer's resolver is BIND 9 (validating, forwarding " + Domain + " to its DNS server)",
		want:      rootcause.Healthy,
		services:  []service{{"submission", ListenerSubmission, ""}, {"imaps", DovecotBackend(DovecotGood, "imaps"), ""}},
		resolver:  ResolverGood,
		delivered: 2,
	},
	{
		name:        "bind-dnssec-bogus",
		family:      FamilyBIND,
		setup:       "the customer's BIND 9 resolver holds a DS trust anchor for " + Domain + " whose zone is served unsigned (signatures gone, DS still published): every answer is bogus",
		want:        rootcause.DNSServFail,
		services:    []service{{"submission", ListenerSubmission, ""}, {"imaps", DovecotBackend(DovecotGood, "imaps"), ""}},
		resolver:    ResolverBogus,
		clientFails: true,
	},
	{
		name:        "bind-dead-forwarder",
		family:      FamilyBIND,
		setup:       "the customer's BIND 9 resolver forwards " + Domain + " (forward only) to an upstream where nothing listens",
		want:        rootcause.DNSServFail,
		services:    []service{{"submission", ListenerSubmission, ""}, {"imaps", DovecotBackend(DovecotGood, "imaps"), ""}},
		resolver:    ResolverDeadForwarder,
		clientFails: true,
	},
}

// openSMTPDCases run against OpenSMTPD, unpacked from its .deb. Its TLS
// is broken on Debian 12 (see OpenSMTPD), so its healthy case is the MX
// path without TLS and AUTH.
var openSMTPDCases = []realCase{
	{
		name:      "opensmtpd-healthy",
		family:    FamilyOpenSMTPD,
		setup:     "OpenSMTPD port-25-style listener (no TLS, no AUTH) delivering mail for " + Domain + " to the Maildirs Dovecot serves (maildir action, virtual table); the customer sends to her own address without logging in; Dovecot IMAPS",
		want:      rootcause.Healthy,
		services:  []service{{"smtp", OpenSMTPDMX, settings.SecurityNone}, {"imaps", DovecotBackend(DovecotGood, "imaps"), ""}},
		noLogin:   true,
		delivered: 2,
	},
	{
		name:     "opensmtpd-starttls-broken",
		family:   FamilyOpenSMTPD,
		setup:    "OpenSMTPD 6.8 submission (tls-require, auth) as Debian 12 ships it: it offers STARTTLS and answers 220, then fails every handshake with an 'internal error' alert (its privilege-separated signing does not work with OpenSSL 3)",
		want:     rootcause.STARTTLSHandshakeFailed,
		services: []service{{"submission", OpenSMTPDSubmission, ""}},
	},
	{
		name:     "opensmtpd-starttls-required",
		family:   FamilyOpenSMTPD,
		setup:    "OpenSMTPD submission with tls-require; the customer configured no encryption",
		want:     rootcause.AuthRequiresTLS,
		services: []service{{"submission", OpenSMTPDSubmission, settings.SecurityNone}},
	},
	{
		name:     "opensmtpd-relay-denied",
		family:   FamilyOpenSMTPD,
		setup:    "OpenSMTPD port-25-style listener (no AUTH; mail accepted for " + Domain + " only); the customer sends without logging in to another domain",
		want:     rootcause.SMTPRelayDenied,
		services: []service{{"smtp", OpenSMTPDMX, settings.SecurityNone}},
		noLogin:  true,
		sendTo:   "someone@elsewhere.test",
	},
	{
		name:     "opensmtpd-message-too-large",
		family:   FamilyOpenSMTPD,
		setup:    fmt.Sprintf("OpenSMTPD port-25-style listener with smtp max-message-size %d; the customer sends a larger message to her own address", SmallSizeLimit),
		want:     rootcause.SMTPMessageTooLarge,
		services: []service{{"smtp", OpenSMTPDSmall, settings.SecurityNone}},
		noLogin:  true,
		message:  "big",
	},
}

// courierCases run against Courier-IMAP and Courier POP3, unpacked from
// their .debs, with the packages' own configuration and delays.
var courierCases = []realCase{
	{
		name:     "courier-healthy",
		family:   FamilyCourier,
		setup:    "Courier-IMAP (IMAPS through couriertls) and Courier POP3 with STLS, authdaemond with the userdb module, the packages' configuration; good certificate",
		want:     rootcause.Healthy,
		services: []service{{"imaps", CourierIMAPS, ""}, {"pop3", CourierPOP3, ""}},
	},
	{
		name:     "courier-wrong-password",
		family:   FamilyCourier,
		setup:    "Courier-IMAP with STARTTLS and Courier POP3S; the customer types an old password; authlib's delay of a refused login (5 s) is on",
		want:     rootcause.AuthFailed,
		services: []service{{"imap", CourierIMAP, ""}, {"pop3s", CourierPOP3S, ""}},
		password: func(right string) string { return "old-" + right },
		// Courier answers a refused login 5 s late, right at the
		// harness's 5 s default (a client waits 60 s or more): with it the
		// case read SERVER_SLOW under load.
		timeout: 15 * time.Second,
	},
	{
		name:     "courier-tls-required",
		family:   FamilyCourier,
		setup:    "Courier-IMAP and Courier POP3 with IMAP_TLS_REQUIRED=1 and POP3_TLS_REQUIRED=1; the customer configured no encryption",
		want:     rootcause.AuthRequiresTLS,
		services: []service{{"imap", CourierIMAPTLSRequired, settings.SecurityNone}, {"pop3", CourierPOP3TLSRequired, settings.SecurityNone}},
	},
	{
		name:     "courier-expired-cert",
		family:   FamilyCourier,
		setup:    "Courier-IMAP and Courier POP3 over couriertls (GnuTLS) present a certificate that expired yesterday",
		want:     rootcause.TLSCertExpired,
		services: []service{{"imaps", CourierIMAPSExpired, ""}, {"pop3s", CourierPOP3SExpired, ""}},
	},
	{
		name:      "courier-mta-healthy",
		family:    FamilyCourier,
		setup:     "Courier MTA esmtpd as esmtpd-msa configures it (port 587; STARTTLS, then AUTH LOGIN PLAIN through authdaemond), courierd delivering " + Domain + " (a hosted domain) to the Maildirs Dovecot serves; Courier-IMAP IMAPS",
		want:      rootcause.Healthy,
		services:  []service{{"submission", CourierSubmission, ""}, {"imaps", CourierIMAPS, ""}},
		delivered: 2,
	},
	{
		name:     "courier-mta-wrong-password",
		family:   FamilyCourier,
		setup:    "Courier MTA esmtpd-msa; the customer types an old password; authlib's delay of a refused login is on",
		want:     rootcause.AuthFailed,
		services: []service{{"submission", CourierSubmission, ""}},
		password: func(right string) string { return "old-" + right },
		timeout:  15 * time.Second,
	},
	{
		name:     "courier-mta-relay-denied",
		family:   FamilyCourier,
		setup:    "Courier MTA esmtpd-msa; the customer sends to another domain without logging in, on the plaintext port",
		want:     rootcause.SMTPRelayDenied,
		services: []service{{"smtp", CourierSubmission, settings.SecurityNone}},
		noLogin:  true,
		sendTo:   "someone@elsewhere.test",
		timeout:  30 * time.Second,
	},
}
