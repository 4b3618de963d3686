// Package rootcause is maillab's table of root causes (docs/catalog.md):
// one row per code with everything known about it (its meaning, which is
// the catalog's text; its layer, which is its precedence; the helpdesk's
// default fix). The codes are public API: scripts compare them as strings,
// so add, never rename. Adding a root cause means adding its constant and
// its row here, and the rule that detects it.
package rootcause

import (
	"fmt"
	"slices"
)

// Code is one root-cause code such as "TLS_CERT_EXPIRED".
type Code string

// The codes of the catalog, in its order; what each means is in its row of
// All.
const (
	Healthy                        Code = "HEALTHY"
	DNSNXDomain                    Code = "DNS_NXDOMAIN"
	DNSServFail                    Code = "DNS_SERVFAIL"
	DNSTimeout                     Code = "DNS_TIMEOUT"
	DNSResolverUnreachable         Code = "DNS_RESOLVER_UNREACHABLE"
	DNSWrongAddress                Code = "DNS_WRONG_ADDRESS"
	ConfigHostNotForDomain         Code = "CONFIG_HOST_NOT_FOR_DOMAIN"
	SetupConfigStale               Code = "SETUP_CONFIG_STALE"
	SetupRedirectForeign           Code = "SETUP_REDIRECT_FOREIGN"
	SetupNotPublished              Code = "SETUP_NOT_PUBLISHED"
	SetupHTTPOnly                  Code = "SETUP_HTTP_ONLY"
	SetupRedirectLoop              Code = "SETUP_REDIRECT_LOOP"
	TCPRefused                     Code = "TCP_REFUSED"
	TCPTimeout                     Code = "TCP_TIMEOUT"
	TCPReset                       Code = "TCP_RESET"
	PortSecurityMismatchTLSOnPlain Code = "PORT_SECURITY_MISMATCH_TLS_ON_PLAIN"
	PortSecurityMismatchPlainOnTLS Code = "PORT_SECURITY_MISMATCH_PLAIN_ON_TLS"
	WrongProtocol                  Code = "WRONG_PROTOCOL"
	TLSProtocolTooOld              Code = "TLS_PROTOCOL_TOO_OLD"
	TLSClientOutdated              Code = "TLS_CLIENT_OUTDATED"
	TLSCertExpired                 Code = "TLS_CERT_EXPIRED"
	TLSCertNotYetValid             Code = "TLS_CERT_NOT_YET_VALID"
	TLSCertSelfSigned              Code = "TLS_CERT_SELF_SIGNED"
	TLSCertUntrusted               Code = "TLS_CERT_UNTRUSTED"
	TLSCertChainIncomplete         Code = "TLS_CERT_CHAIN_INCOMPLETE"
	TLSCertHostnameMismatch        Code = "TLS_CERT_HOSTNAME_MISMATCH"
	TLSCertWeak                    Code = "TLS_CERT_WEAK"
	TLSIntercepted                 Code = "TLS_INTERCEPTED"
	STARTTLSNotOffered             Code = "STARTTLS_NOT_OFFERED"
	STARTTLSStripped               Code = "STARTTLS_STRIPPED"
	STARTTLSRefused                Code = "STARTTLS_REFUSED"
	STARTTLSHandshakeFailed        Code = "STARTTLS_HANDSHAKE_FAILED"
	AuthRequiresTLS                Code = "AUTH_REQUIRES_TLS"
	AuthFailed                     Code = "AUTH_FAILED"
	AuthBasicDisabled              Code = "AUTH_BASIC_DISABLED"
	AuthMechUnsupported            Code = "AUTH_MECH_UNSUPPORTED"
	AuthPasswordExpired            Code = "AUTH_PASSWORD_EXPIRED"
	AuthAccountLocked              Code = "AUTH_ACCOUNT_LOCKED"
	PlaintextAuthBlocked           Code = "PLAINTEXT_AUTH_BLOCKED"
	SMTPRelayDenied                Code = "SMTP_RELAY_DENIED"
	SMTPSenderRejected             Code = "SMTP_SENDER_REJECTED"
	SMTPClientBlocked              Code = "SMTP_CLIENT_BLOCKED"
	SMTPContentRejected            Code = "SMTP_CONTENT_REJECTED"
	SMTPMessageTooLarge            Code = "SMTP_MESSAGE_TOO_LARGE"
	SMTPRateLimited                Code = "SMTP_RATE_LIMITED"
	MailboxFull                    Code = "MAILBOX_FULL"
	ServerSlow                     Code = "SERVER_SLOW"
	LinkSlow                       Code = "LINK_SLOW"
	Intermittent                   Code = "INTERMITTENT"
)

// Layer is where a failure sits in the order of diagnosis: the lower, the
// more fundamental. A failure at a lower layer explains failures above it,
// so the layer is a code's precedence when several services or steps fail
// (ties go to the service, then the step, probed first).
type Layer int

// Layers, lowest (most fundamental) first.
const (
	LayerResolver         Layer = iota + 1 // the DNS resolver itself
	LayerName                              // the host name's records
	LayerHostNotForDomain                  // settings that name another domain's server
	LayerTCP                               // the TCP connection
	LayerPort                              // what the port speaks
	LayerTLS                               // TLS and the certificate
	LayerStartTLS                          // the STARTTLS upgrade
	LayerAuth                              // the login
	LayerPolicy                            // the server's acceptance of mail and mailboxes
	LayerSlow                              // timing: slow servers, slow links, lossy paths
	LayerHealthy                           // nothing failed
)

// layerNames are each layer's stable id (for APIs and forms) and its
// title in plain words, in layer order.
var layerNames = map[Layer][2]string{
	LayerResolver:         {"resolver", "The computer's DNS server"},
	LayerName:             {"name", "Server name and address"},
	LayerHostNotForDomain: {"setup", "Account settings and automatic set-up"},
	LayerTCP:              {"tcp", "Reaching the server (network and firewall)"},
	LayerPort:             {"port", "Port and security type"},
	LayerTLS:              {"tls", "Encryption and the certificate"},
	LayerStartTLS:         {"starttls", "The STARTTLS upgrade"},
	LayerAuth:             {"auth", "Logging in"},
	LayerPolicy:           {"policy", "The server's rules for sending and storing mail"},
	LayerSlow:             {"timing", "Speed and reliability of the connection"},
	LayerHealthy:          {"healthy", "Nothing wrong"},
}

// ID returns the layer's stable lower-case id ("tls", "auth"), or "" for
// a value that is not a layer.
func (l Layer) ID() string { return layerNames[l][0] }

// Title returns the layer in plain words ("Encryption and the
// certificate"), or "" for a value that is not a layer.
func (l Layer) Title() string { return layerNames[l][1] }

// Target is the service a fix is written for, in the words of mail
// clients' settings dialogs.
type Target struct {
	// Role is e.g. "outgoing server (SMTP)".
	Role string
	Host string
	Port int
	// Protocol is "SMTP", "IMAP" or "POP3".
	Protocol string
	// TLSPort and StartTLSPort are the protocol's standard ports for
	// SSL/TLS and STARTTLS (465/587, 993/143, 995/110).
	TLSPort, StartTLSPort int
}

func (t Target) hostPort() string { return fmt.Sprintf("%s port %d", t.Host, t.Port) }

// Info is one row of the table: everything known about one code.
type Info struct {
	Code Code
	// Title says what went wrong in plain words a trainee understands
	// ("The certificate has expired"): the console's answer list shows it.
	Title string
	// Meaning says what the code means in one line: the catalog's text
	// (docs/catalog.md's table of codes is generated from it).
	Meaning string
	// Layer is the code's layer and precedence.
	Layer Layer
	// Fix is the helpdesk's default fix for a service, used where the
	// diagnoser has nothing more specific to say.
	Fix func(Target) string
	// TimeoutBound is set for a code that a diagnoser names only after a
	// wait runs out (a connect or reply timeout, a stalled handshake, a
	// silent port tried with TLS): its time to diagnosis is the timeout's.
	TimeoutBound bool
}

// All is the table: every code, in catalog order.
var All = []Info{
	{Code: Healthy, Layer: LayerHealthy,
		Title:   "Nothing is wrong: the account works",
		Meaning: "every configured service connects, secures, authenticates and works",
		Fix: func(Target) string {
			return "Nothing to fix on the server side: the account connects, encrypts, logs in and sends or fetches mail. If the mail client still fails, compare its settings with the ones tested here."
		}},
	{Code: DNSNXDomain, Layer: LayerName,
		Title:   "The server name does not exist",
		Meaning: "the host name does not exist (typo, wrong domain)",
		Fix: func(t Target) string {
			return fmt.Sprintf("Check the spelling of the %s name %q in the mail client.", t.Role, t.Host)
		}},
	{Code: DNSServFail, Layer: LayerResolver,
		Title:   "The DNS server cannot answer for the name (DNS outage)",
		Meaning: "the resolver answered SERVFAIL (DNS outage)",
		Fix: func(t Target) string {
			return fmt.Sprintf("The DNS server cannot resolve %s right now (an outage at the domain's DNS provider or at the resolver). Wait and retry, or use another DNS server.", t.Host)
		}},
	{Code: DNSTimeout, Layer: LayerResolver, TimeoutBound: true,
		Title:   "The DNS server never answers",
		Meaning: "the resolver never answered (DNS blocked, resolver down)",
		Fix: func(Target) string {
			return "The DNS server does not answer. Check that the firewall lets DNS through (UDP and TCP port 53), or set the computer to use a working DNS server."
		}},
	{Code: DNSResolverUnreachable, Layer: LayerResolver,
		Title:   "The computer's DNS server setting is wrong",
		Meaning: "the configured resolver refuses/does not exist (wrong DNS server setting)",
		Fix: func(Target) string {
			return "The computer's DNS server setting points at a server that does not resolve names. Set the DNS server to the router's or the provider's resolver."
		}},
	{Code: DNSWrongAddress, Layer: LayerName,
		Title:   "The server name points at the wrong address",
		Meaning: "the name resolves, but to a host that is not the domain's mail server (poisoned cache, stale record)",
		Fix: func(t Target) string {
			return fmt.Sprintf("%s resolves to a server of another organisation. Flush the DNS cache, look for a stale entry for %s in the hosts file, and check the domain's DNS records.", t.Host, t.Host)
		}},
	{Code: ConfigHostNotForDomain, Layer: LayerHostNotForDomain,
		Title:   "The settings name another domain's mail server",
		Meaning: "settings name a server that the account's domain does not use (e.g. a generic provider host)",
		Fix: func(t Target) string {
			return fmt.Sprintf("In the mail client, replace the %s %q with the server of the account's domain.", t.Role, t.Host)
		}},
	{Code: SetupConfigStale, Layer: LayerHostNotForDomain,
		Title:   "The published automatic set-up is out of date",
		Meaning: "the domain's autoconfig/Autodiscover documents advertise servers or security that no longer work (stale after a migration), so the wizard set the client up wrong",
		Fix: func(t Target) string {
			return fmt.Sprintf("Set the %s as the domain's SRV records and servers say (the set-up document is stale), and have the domain's administrator update its autoconfig and Autodiscover documents.", t.Role)
		}},
	{Code: SetupRedirectForeign, Layer: LayerHostNotForDomain,
		Title:   "Automatic set-up redirects to a foreign server",
		Meaning: "the domain's Autodiscover redirects to a host outside the domain, whose servers the client was set up with (a known way to collect passwords)",
		Fix: func(t Target) string {
			return fmt.Sprintf("Do not use %s: it was proposed by an Autodiscover redirect to another domain. Set up the account with the domain's own servers, change the password if it was sent there, and have the administrator fix the Autodiscover record.", t.Host)
		}},
	{Code: SetupNotPublished, Layer: LayerHostNotForDomain,
		Title:   "No automatic set-up is published for the domain",
		Meaning: "the domain publishes no mail configuration (no autoconfig, Autodiscover or SRV), and the host the wizard guessed is not its mail server",
		Fix: func(t Target) string {
			return fmt.Sprintf("The %s %q was guessed by the mail client: ask the provider for the real server names; the domain's administrator should publish autoconfig, Autodiscover or SRV records.", t.Role, t.Host)
		}},
	{Code: SetupHTTPOnly, Layer: LayerHostNotForDomain,
		Title:   "Automatic set-up is published over plain HTTP only",
		Meaning: "the domain publishes its set-up documents over plain HTTP only; clients that demand HTTPS (Outlook's Autodiscover) find nothing, and the host they guessed or were given is not its mail server",
		Fix: func(t Target) string {
			return fmt.Sprintf("The %s %q is a guess: set the servers the domain's autoconfig (over HTTP) and SRV records name, and have the domain's administrator serve autoconfig and Autodiscover over HTTPS with a certificate that names their hosts.", t.Role, t.Host)
		}},
	{Code: SetupRedirectLoop, Layer: LayerHostNotForDomain,
		Title:   "Automatic set-up redirects in a loop",
		Meaning: "the domain's Autodiscover redirects in a loop, so Outlook finds no settings, and the host it guessed or was given is not its mail server",
		Fix: func(t Target) string {
			return fmt.Sprintf("The %s %q is a guess: set the servers the domain's autoconfig or SRV records name, and have the domain's administrator make one Autodiscover URL answer with settings instead of redirecting to the other.", t.Role, t.Host)
		}},
	{Code: TCPRefused, Layer: LayerTCP,
		Title:   "The server refuses the connection (nothing listens or a firewall rejects it)",
		Meaning: "connection actively refused (nothing listening, REJECT rule, missing port forward)",
		Fix: func(t Target) string {
			return fmt.Sprintf("Nothing accepts connections on %s. Check the port in the mail client, that the mail server runs, and the firewall and port forwarding in front of it.", t.hostPort())
		}},
	{Code: TCPTimeout, Layer: LayerTCP, TimeoutBound: true,
		Title:   "The connection never gets through (a firewall drops it)",
		Meaning: "connection attempts vanish (firewall DROP, blocked outbound port)",
		Fix: func(t Target) string {
			return fmt.Sprintf("Connections to %s vanish: a firewall drops them (many networks block outgoing port 25). Use another port the provider offers, or ask the network administrator to open this one.", t.hostPort())
		}},
	{Code: TCPReset, Layer: LayerTCP,
		Title:   "The connection is cut off (reset)",
		Meaning: "connected, then reset by the peer or a middlebox",
		Fix: func(t Target) string {
			return fmt.Sprintf("The connection to %s is reset: a firewall, antivirus, VPN or the server itself cuts it. Check their logs, or try from another network.", t.hostPort())
		}},
	{Code: PortSecurityMismatchTLSOnPlain, Layer: LayerPort,
		Title:   "The client starts SSL/TLS on a port that expects plain text or STARTTLS",
		Meaning: "client starts TLS on a port that speaks plaintext (e.g. SSL on 25/587/143/110)",
		Fix: func(t Target) string {
			return fmt.Sprintf("Port %d speaks plaintext first: in the mail client set the %s security to STARTTLS for port %d, or use the port for SSL/TLS (%d).", t.Port, t.Role, t.Port, t.TLSPort)
		}},
	{Code: PortSecurityMismatchPlainOnTLS, Layer: LayerPort, TimeoutBound: true,
		Title:   "The client talks plain text on an SSL/TLS port",
		Meaning: "client speaks plaintext to an implicit-TLS port (465/993/995)",
		Fix: func(t Target) string {
			return fmt.Sprintf("Port %d expects SSL/TLS from the first byte: in the mail client set the %s security to SSL/TLS.", t.Port, t.Role)
		}},
	{Code: WrongProtocol, Layer: LayerPort,
		Title:   "The port speaks another mail protocol",
		Meaning: "the port answers with another protocol (e.g. POP3 settings pointed at IMAP)",
		Fix: func(t Target) string {
			return fmt.Sprintf("Port %d on %s is not a %s port: set the %s port to the %s port of the provider.", t.Port, t.Host, t.Protocol, t.Role, t.Protocol)
		}},
	{Code: TLSProtocolTooOld, Layer: LayerTLS,
		Title:   "The server only offers an old TLS version",
		Meaning: "server offers only TLS versions the client refuses (e.g. TLS 1.0 only)",
		Fix: func(Target) string {
			return "The server speaks only old TLS versions that current clients refuse: the administrator must enable TLS 1.2 or 1.3 on the server."
		}},
	{Code: TLSClientOutdated, Layer: LayerTLS,
		Title:   "The mail client is too old for the server's TLS",
		Meaning: "the client's maximum TLS version is below what the server requires",
		Fix: func(Target) string {
			return "The mail client (or the operating system it relies on) speaks only old TLS versions the server refuses: update the mail client or enable TLS 1.2 in the system."
		}},
	{Code: TLSCertExpired, Layer: LayerTLS,
		Title:   "The certificate has expired",
		Meaning: "certificate past NotAfter",
		Fix: func(t Target) string {
			return "The server's certificate has expired: the administrator must renew it. Do not add a security exception in the client."
		}},
	{Code: TLSCertNotYetValid, Layer: LayerTLS,
		Title:   "The certificate is not valid yet",
		Meaning: "certificate before NotBefore (often: wrong client clock)",
		Fix: func(t Target) string {
			return "Check this computer's date, time and time zone. If they are right, the server's certificate starts in the future and the administrator must replace it."
		}},
	{Code: TLSCertSelfSigned, Layer: LayerTLS,
		Title:   "The certificate is self-signed",
		Meaning: "self-signed leaf",
		Fix: func(Target) string {
			return "The server uses a self-signed certificate: the administrator should install a certificate from a public CA; for a private server, import this certificate into the client after checking its fingerprint with the administrator."
		}},
	{Code: TLSCertUntrusted, Layer: LayerTLS,
		Title:   "The certificate is signed by an unknown authority",
		Meaning: "chain ends at a CA the client does not trust",
		Fix: func(Target) string {
			return "The certificate comes from a CA this computer does not trust: if it is the organisation's own CA, install its root certificate on this computer; otherwise the server needs a certificate from a public CA."
		}},
	{Code: TLSCertChainIncomplete, Layer: LayerTLS,
		Title:   "The server does not send the whole certificate chain",
		Meaning: "server omits the intermediate certificate",
		Fix: func(t Target) string {
			return "The server must send its intermediate certificate(s) with its own: the administrator should configure the full chain (e.g. fullchain.pem instead of cert.pem)."
		}},
	{Code: TLSCertHostnameMismatch, Layer: LayerTLS,
		Title:   "The certificate is for another server name",
		Meaning: "certificate does not name the host that was dialled",
		Fix: func(t Target) string {
			return fmt.Sprintf("In the mail client, use a host name that the server's certificate names, or the administrator must add %s to the certificate.", t.Host)
		}},
	{Code: TLSCertWeak, Layer: LayerTLS,
		Title:   "The certificate uses a weak key or signature",
		Meaning: "SHA-1 signature or RSA key under 2048 bits",
		Fix: func(Target) string {
			return "The administrator must replace the certificate with one signed with SHA-256 or better and an RSA key of at least 2048 bits (or an ECDSA key)."
		}},
	{Code: TLSIntercepted, Layer: LayerTLS,
		Title:   "Something in between replaces the certificate (interception)",
		Meaning: "a middlebox re-signs the server's certificate (antivirus/proxy/VPN TLS inspection)",
		Fix: func(Target) string {
			return "An antivirus, firewall or proxy on the way re-signs the server's certificate. Turn off its SSL/TLS or e-mail scanning, or exempt the mail server from inspection."
		}},
	{Code: STARTTLSNotOffered, Layer: LayerStartTLS,
		Title:   "The server does not offer STARTTLS",
		Meaning: "client requires STARTTLS, server does not advertise it",
		Fix: func(t Target) string {
			return fmt.Sprintf("The server does not offer STARTTLS on port %d: set the %s security to SSL/TLS with its port (%d), or ask the administrator to enable STARTTLS.", t.Port, t.Role, t.TLSPort)
		}},
	{Code: STARTTLSStripped, Layer: LayerStartTLS,
		Title:   "Something in between removes STARTTLS",
		Meaning: "a middlebox removes STARTTLS from the capability list",
		Fix: func(t Target) string {
			return fmt.Sprintf("A device on the way removes STARTTLS from the server's answer (e.g. Cisco ESMTP inspection). Turn that inspection off, or use SSL/TLS on port %d, which it cannot rewrite.", t.TLSPort)
		}},
	{Code: STARTTLSRefused, Layer: LayerStartTLS,
		Title:   "The server refuses STARTTLS",
		Meaning: "STARTTLS advertised but the command is refused (454 / NO / -ERR)",
		Fix: func(t Target) string {
			return fmt.Sprintf("The server offers STARTTLS but refuses it: its TLS setup is broken and the administrator must fix it. Meanwhile try SSL/TLS on port %d.", t.TLSPort)
		}},
	{Code: STARTTLSHandshakeFailed, Layer: LayerStartTLS,
		Title:   "Encryption fails after STARTTLS",
		Meaning: "STARTTLS accepted, then the TLS handshake breaks",
		Fix: func(t Target) string {
			return fmt.Sprintf("The server accepts STARTTLS but the TLS handshake then fails: the administrator must check the server's TLS configuration, or a device on the way breaks TLS. Meanwhile try SSL/TLS on port %d.", t.TLSPort)
		}},
	{Code: AuthRequiresTLS, Layer: LayerAuth,
		Title:   "The server wants encryption before the login",
		Meaning: "server refuses login on an unencrypted channel (530 5.7.0, LOGINDISABLED, PRIVACYREQUIRED)",
		Fix: func(t Target) string {
			return fmt.Sprintf("The server refuses to log in over an unencrypted connection: set the %s security to STARTTLS (port %d) or SSL/TLS (port %d).",
				t.Role, t.StartTLSPort, t.TLSPort)
		}},
	{Code: AuthFailed, Layer: LayerAuth,
		Title:   "The user name or password is wrong",
		Meaning: "wrong user name or password",
		Fix: func(Target) string {
			return "Re-enter the user name and password in the mail client; if the password was changed (e.g. on the web), use the new one on every device."
		}},
	{Code: AuthBasicDisabled, Layer: LayerAuth,
		Title:   "Password (basic) login is switched off",
		Meaning: "password login disabled; OAuth2 (XOAUTH2/OAUTHBEARER) or app password required",
		Fix: func(Target) string {
			return "Password login is disabled for this account: switch the mail client to OAuth2 (Modern Authentication) or create an app password, or ask the administrator to allow authenticated SMTP/IMAP/POP."
		}},
	{Code: AuthMechUnsupported, Layer: LayerAuth,
		Title:   "Client and server share no login method",
		Meaning: "no SASL mechanism in common",
		Fix: func(Target) string {
			return "Set the authentication method in the mail client to one the server offers; \"normal password\" over SSL/TLS or STARTTLS is the usual choice."
		}},
	{Code: AuthPasswordExpired, Layer: LayerAuth,
		Title:   "The password has expired",
		Meaning: "credentials right but the password has expired",
		Fix: func(t Target) string {
			return "The password has expired: change it (e.g. in the provider's web mail or portal), then enter the new one in the mail client."
		}},
	{Code: AuthAccountLocked, Layer: LayerAuth,
		Title:   "The account is locked after failed logins",
		Meaning: "account locked after failed attempts or by an administrator",
		Fix: func(Target) string {
			return "The account is locked or disabled: ask the administrator to unlock it, and make sure no device keeps retrying an old password (that locks it again)."
		}},
	{Code: PlaintextAuthBlocked, Layer: LayerAuth,
		Title:   "Something in between blocks the unencrypted login",
		Meaning: "a firewall/filter cuts the connection when credentials are sent in clear text",
		Fix: func(t Target) string {
			return fmt.Sprintf("A firewall or filter cuts connections that send a login in clear text: set the %s security to STARTTLS or SSL/TLS.", t.Role)
		}},
	{Code: SMTPRelayDenied, Layer: LayerPolicy,
		Title:   "The server will not pass mail on (relay denied)",
		Meaning: "server refuses to relay (not authenticated / not allowed)",
		Fix: func(Target) string {
			return "Turn on \"outgoing server requires authentication\" in the mail client and use the submission port (587 with STARTTLS or 465 with SSL/TLS), so that the server relays for you."
		}},
	{Code: SMTPSenderRejected, Layer: LayerPolicy,
		Title:   "The sender address is not the account's",
		Meaning: "server refuses the sender address: the From is not one the login may send as (alias, typo), or its domain is not accepted",
		Fix: func(Target) string {
			return "The server refuses the sender (From) address: check it for typos in the mail client's account settings, and send from an address this login owns; to send as an alias or another address, ask the administrator to allow it for this login (Postfix smtpd_sender_login_maps, Exchange Send As permission)."
		}},
	{Code: SMTPClientBlocked, Layer: LayerPolicy,
		Title:   "The server blocks the client's address",
		Meaning: "client IP refused (blocklist / IP restriction)",
		Fix: func(Target) string {
			return "The server refuses this computer's IP address (a blocklist or an IP restriction): send through the provider's authenticated submission service, or have the IP delisted."
		}},
	{Code: SMTPContentRejected, Layer: LayerPolicy,
		Title:   "The server rejects the message's content",
		Meaning: "message refused for its content (attachment type, keyword)",
		Fix: func(Target) string {
			return "The server refused the message for its content: remove the blocked attachment (or share it by link) or the flagged content, and send again."
		}},
	{Code: SMTPMessageTooLarge, Layer: LayerPolicy,
		Title:   "The message is too large for the server",
		Meaning: "message over the server's SIZE limit",
		Fix: func(Target) string {
			return "The message is larger than the server accepts: send it without the large attachment and share the file by link."
		}},
	{Code: SMTPRateLimited, Layer: LayerPolicy,
		Title:   "The account sends too much too fast (rate limit)",
		Meaning: "421/450/451 throttling or greylisting",
		Fix: func(t Target) string {
			return "The server is throttling this sender (too many messages or connections, or greylisting): wait a few minutes and retry; the client will succeed on a later attempt."
		}},
	{Code: MailboxFull, Layer: LayerPolicy,
		Title:   "The mailbox is full",
		Meaning: "recipient or own mailbox over quota",
		Fix: func(Target) string {
			return "The mailbox is over its quota: delete or archive messages and empty the trash, or ask the administrator for more space."
		}},
	{Code: ServerSlow, Layer: LayerSlow, TimeoutBound: true,
		Title:   "The server answers too slowly",
		Meaning: "greeting or replies slower than the client waits",
		Fix: func(Target) string {
			return "The server answers more slowly than the client waits: raise the server timeout in the mail client, and ask the administrator to check the server's load."
		}},
	{Code: LinkSlow, Layer: LayerSlow, TimeoutBound: true,
		Title:   "The network link is too slow",
		Meaning: "transfer rate too low for the message size (bandwidth/QoS)",
		Fix: func(Target) string {
			return "The network link is too slow for this message: send it from a faster connection, make it smaller, or check for bandwidth limits (QoS, a metered or throttled line)."
		}},
	{Code: Intermittent, Layer: LayerSlow, TimeoutBound: true,
		Title:   "The connection fails now and then (packet loss)",
		Meaning: "the same step sometimes works and sometimes fails (packet loss)",
		Fix: func(Target) string {
			return "The connection works only some of the time (packet loss): check Wi-Fi, VPN and cabling, or try another network; the server itself answers."
		}},
}

// Lookup returns the row of c.
func Lookup(c Code) (Info, bool) {
	i := slices.IndexFunc(All, func(info Info) bool { return info.Code == c })
	if i < 0 {
		return Info{}, false
	}
	return All[i], true
}

// Valid reports whether s is a code of the catalog.
func Valid(s string) bool {
	_, ok := Lookup(Code(s))
	return ok
}

// Names returns every code as a string, in catalog order.
func Names() []string {
	names := make([]string, len(All))
	for i, info := range All {
		names[i] = string(info.Code)
	}
	return names
}

// Meaning returns the catalog's one-line meaning of c, or "" if c is unknown.
func Meaning(c Code) string {
	info, _ := Lookup(c)
	return info.Meaning
}

// LayerOf returns the layer of c; an unknown code sorts with the slow ones.
func LayerOf(c Code) Layer {
	if info, ok := Lookup(c); ok {
		return info.Layer
	}
	return LayerSlow
}

// Fix returns the default fix of c for t, or "" if c is unknown.
func Fix(c Code, t Target) string {
	info, ok := Lookup(c)
	if !ok || info.Fix == nil {
		return ""
	}
	return info.Fix(t)
}

// IsTimeoutBound reports whether the code c is named only after a wait
// runs out (Info.TimeoutBound).
func IsTimeoutBound(c Code) bool {
	info, _ := Lookup(c)
	return info.TimeoutBound
}
