//go:build e2e

package realservers

import (
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

func init() { cases = append(cases, familyCases...) }
