// Package rootcause lists the root-cause codes of maillab's failure catalog
// (shared/catalog.md). The codes are public API: scripts compare them as
// strings, so add, never rename.
package rootcause

import "slices"

// Code is one root-cause code such as "TLS_CERT_EXPIRED".
type Code string

// The codes of the catalog, in its order.
const (
	// Healthy: every configured service connects, secures, authenticates and works.
	Healthy Code = "HEALTHY"
	// DNSNXDomain: the host name does not exist (typo, wrong domain).
	DNSNXDomain Code = "DNS_NXDOMAIN"
	// DNSServFail: the resolver answered SERVFAIL (DNS outage).
	DNSServFail Code = "DNS_SERVFAIL"
	// DNSTimeout: the resolver never answered (DNS blocked, resolver down).
	DNSTimeout Code = "DNS_TIMEOUT"
	// DNSResolverUnreachable: the configured resolver refuses/does not exist (wrong DNS server setting).
	DNSResolverUnreachable Code = "DNS_RESOLVER_UNREACHABLE"
	// DNSWrongAddress: the name resolves, but to a host that is not the domain's mail server (poisoned cache, stale record).
	DNSWrongAddress Code = "DNS_WRONG_ADDRESS"
	// ConfigHostNotForDomain: settings name a server that the account's domain does not use (e.g. a generic provider host).
	ConfigHostNotForDomain Code = "CONFIG_HOST_NOT_FOR_DOMAIN"
	// TCPRefused: connection actively refused (nothing listening, REJECT rule, missing port forward).
	TCPRefused Code = "TCP_REFUSED"
	// TCPTimeout: connection attempts vanish (firewall DROP, blocked outbound port).
	TCPTimeout Code = "TCP_TIMEOUT"
	// TCPReset: connected, then reset by the peer or a middlebox.
	TCPReset Code = "TCP_RESET"
	// PortSecurityMismatchTLSOnPlain: client starts TLS on a port that speaks plaintext (e.g. SSL on 25/587/143/110).
	PortSecurityMismatchTLSOnPlain Code = "PORT_SECURITY_MISMATCH_TLS_ON_PLAIN"
	// PortSecurityMismatchPlainOnTLS: client speaks plaintext to an implicit-TLS port (465/993/995).
	PortSecurityMismatchPlainOnTLS Code = "PORT_SECURITY_MISMATCH_PLAIN_ON_TLS"
	// WrongProtocol: the port answers with another protocol (e.g. POP3 settings pointed at IMAP).
	WrongProtocol Code = "WRONG_PROTOCOL"
	// TLSProtocolTooOld: server offers only TLS versions the client refuses (e.g. TLS 1.0 only).
	TLSProtocolTooOld Code = "TLS_PROTOCOL_TOO_OLD"
	// TLSClientOutdated: the client's maximum TLS version is below what the server requires.
	TLSClientOutdated Code = "TLS_CLIENT_OUTDATED"
	// TLSCertExpired: certificate past NotAfter.
	TLSCertExpired Code = "TLS_CERT_EXPIRED"
	// TLSCertNotYetValid: certificate before NotBefore (often: wrong client clock).
	TLSCertNotYetValid Code = "TLS_CERT_NOT_YET_VALID"
	// TLSCertSelfSigned: self-signed leaf.
	TLSCertSelfSigned Code = "TLS_CERT_SELF_SIGNED"
	// TLSCertUntrusted: chain ends at a CA the client does not trust.
	TLSCertUntrusted Code = "TLS_CERT_UNTRUSTED"
	// TLSCertChainIncomplete: server omits the intermediate certificate.
	TLSCertChainIncomplete Code = "TLS_CERT_CHAIN_INCOMPLETE"
	// TLSCertHostnameMismatch: certificate does not name the host that was dialled.
	TLSCertHostnameMismatch Code = "TLS_CERT_HOSTNAME_MISMATCH"
	// TLSCertWeak: SHA-1 signature or RSA key under 2048 bits.
	TLSCertWeak Code = "TLS_CERT_WEAK"
	// TLSIntercepted: a middlebox re-signs the server's certificate (antivirus/proxy/VPN TLS inspection).
	TLSIntercepted Code = "TLS_INTERCEPTED"
	// STARTTLSNotOffered: client requires STARTTLS, server does not advertise it.
	STARTTLSNotOffered Code = "STARTTLS_NOT_OFFERED"
	// STARTTLSStripped: a middlebox removes STARTTLS from the capability list.
	STARTTLSStripped Code = "STARTTLS_STRIPPED"
	// STARTTLSRefused: STARTTLS advertised but the command is refused (454 / NO / -ERR).
	STARTTLSRefused Code = "STARTTLS_REFUSED"
	// STARTTLSHandshakeFailed: STARTTLS accepted, then the TLS handshake breaks.
	STARTTLSHandshakeFailed Code = "STARTTLS_HANDSHAKE_FAILED"
	// AuthRequiresTLS: server refuses login on an unencrypted channel (530 5.7.0, LOGINDISABLED, PRIVACYREQUIRED).
	AuthRequiresTLS Code = "AUTH_REQUIRES_TLS"
	// AuthFailed: wrong user name or password.
	AuthFailed Code = "AUTH_FAILED"
	// AuthBasicDisabled: password login disabled; OAuth2 (XOAUTH2/OAUTHBEARER) or app password required.
	AuthBasicDisabled Code = "AUTH_BASIC_DISABLED"
	// AuthMechUnsupported: no SASL mechanism in common.
	AuthMechUnsupported Code = "AUTH_MECH_UNSUPPORTED"
	// AuthPasswordExpired: credentials right but the password has expired.
	AuthPasswordExpired Code = "AUTH_PASSWORD_EXPIRED"
	// AuthAccountLocked: account locked after failed attempts or by an administrator.
	AuthAccountLocked Code = "AUTH_ACCOUNT_LOCKED"
	// PlaintextAuthBlocked: a firewall/filter cuts the connection when credentials are sent in clear text.
	PlaintextAuthBlocked Code = "PLAINTEXT_AUTH_BLOCKED"
	// SMTPRelayDenied: server refuses to relay (not authenticated / not allowed).
	SMTPRelayDenied Code = "SMTP_RELAY_DENIED"
	// SMTPClientBlocked: client IP refused (blocklist / IP restriction).
	SMTPClientBlocked Code = "SMTP_CLIENT_BLOCKED"
	// SMTPContentRejected: message refused for its content (attachment type, keyword).
	SMTPContentRejected Code = "SMTP_CONTENT_REJECTED"
	// SMTPMessageTooLarge: message over the server's SIZE limit.
	SMTPMessageTooLarge Code = "SMTP_MESSAGE_TOO_LARGE"
	// SMTPRateLimited: 421/450/451 throttling or greylisting.
	SMTPRateLimited Code = "SMTP_RATE_LIMITED"
	// MailboxFull: recipient or own mailbox over quota.
	MailboxFull Code = "MAILBOX_FULL"
	// ServerSlow: greeting or replies slower than the client waits.
	ServerSlow Code = "SERVER_SLOW"
	// LinkSlow: transfer rate too low for the message size (bandwidth/QoS).
	LinkSlow Code = "LINK_SLOW"
	// Intermittent: the same step sometimes works and sometimes fails (packet loss).
	Intermittent Code = "INTERMITTENT"
)

// Info describes a code for people.
type Info struct {
	Code    Code
	Meaning string
}

// All lists every code with its meaning, in catalog order.
var All = []Info{
	{Healthy, "every configured service connects, secures, authenticates and works"},
	{DNSNXDomain, "the host name does not exist (typo, wrong domain)"},
	{DNSServFail, "the resolver answered SERVFAIL (DNS outage)"},
	{DNSTimeout, "the resolver never answered (DNS blocked, resolver down)"},
	{DNSResolverUnreachable, "the configured resolver refuses/does not exist (wrong DNS server setting)"},
	{DNSWrongAddress, "the name resolves, but to a host that is not the domain's mail server (poisoned cache, stale record)"},
	{ConfigHostNotForDomain, "settings name a server that the account's domain does not use (e.g. a generic provider host)"},
	{TCPRefused, "connection actively refused (nothing listening, REJECT rule, missing port forward)"},
	{TCPTimeout, "connection attempts vanish (firewall DROP, blocked outbound port)"},
	{TCPReset, "connected, then reset by the peer or a middlebox"},
	{PortSecurityMismatchTLSOnPlain, "client starts TLS on a port that speaks plaintext (e.g. SSL on 25/587/143/110)"},
	{PortSecurityMismatchPlainOnTLS, "client speaks plaintext to an implicit-TLS port (465/993/995)"},
	{WrongProtocol, "the port answers with another protocol (e.g. POP3 settings pointed at IMAP)"},
	{TLSProtocolTooOld, "server offers only TLS versions the client refuses (e.g. TLS 1.0 only)"},
	{TLSClientOutdated, "the client's maximum TLS version is below what the server requires"},
	{TLSCertExpired, "certificate past NotAfter"},
	{TLSCertNotYetValid, "certificate before NotBefore (often: wrong client clock)"},
	{TLSCertSelfSigned, "self-signed leaf"},
	{TLSCertUntrusted, "chain ends at a CA the client does not trust"},
	{TLSCertChainIncomplete, "server omits the intermediate certificate"},
	{TLSCertHostnameMismatch, "certificate does not name the host that was dialled"},
	{TLSCertWeak, "SHA-1 signature or RSA key under 2048 bits"},
	{TLSIntercepted, "a middlebox re-signs the server's certificate (antivirus/proxy/VPN TLS inspection)"},
	{STARTTLSNotOffered, "client requires STARTTLS, server does not advertise it"},
	{STARTTLSStripped, "a middlebox removes STARTTLS from the capability list"},
	{STARTTLSRefused, "STARTTLS advertised but the command is refused (454 / NO / -ERR)"},
	{STARTTLSHandshakeFailed, "STARTTLS accepted, then the TLS handshake breaks"},
	{AuthRequiresTLS, "server refuses login on an unencrypted channel (530 5.7.0, LOGINDISABLED, PRIVACYREQUIRED)"},
	{AuthFailed, "wrong user name or password"},
	{AuthBasicDisabled, "password login disabled; OAuth2 (XOAUTH2/OAUTHBEARER) or app password required"},
	{AuthMechUnsupported, "no SASL mechanism in common"},
	{AuthPasswordExpired, "credentials right but the password has expired"},
	{AuthAccountLocked, "account locked after failed attempts or by an administrator"},
	{PlaintextAuthBlocked, "a firewall/filter cuts the connection when credentials are sent in clear text"},
	{SMTPRelayDenied, "server refuses to relay (not authenticated / not allowed)"},
	{SMTPClientBlocked, "client IP refused (blocklist / IP restriction)"},
	{SMTPContentRejected, "message refused for its content (attachment type, keyword)"},
	{SMTPMessageTooLarge, "message over the server's SIZE limit"},
	{SMTPRateLimited, "421/450/451 throttling or greylisting"},
	{MailboxFull, "recipient or own mailbox over quota"},
	{ServerSlow, "greeting or replies slower than the client waits"},
	{LinkSlow, "transfer rate too low for the message size (bandwidth/QoS)"},
	{Intermittent, "the same step sometimes works and sometimes fails (packet loss)"},
}

// Valid reports whether s is a code of the catalog.
func Valid(s string) bool {
	return slices.ContainsFunc(All, func(i Info) bool { return string(i.Code) == s })
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
	for _, info := range All {
		if info.Code == c {
			return info.Meaning
		}
	}
	return ""
}
