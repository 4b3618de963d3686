package diagnose

import (
	"fmt"
	"strings"

	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/settings"
)

// Layers of the root-cause order: the lower, the more fundamental. A
// failure at a lower layer explains failures above it.
const (
	layerResolver = iota
	layerName
	layerHostNotForDomain
	layerTCP
	layerPort
	layerTLS
	layerStartTLS
	layerAuth
	layerPolicy
	layerSlow
)

// layer returns the layer of a code.
func layer(c rootcause.Code) int {
	switch c {
	case rootcause.DNSResolverUnreachable, rootcause.DNSTimeout, rootcause.DNSServFail:
		return layerResolver
	case rootcause.DNSNXDomain, rootcause.DNSWrongAddress:
		return layerName
	case rootcause.ConfigHostNotForDomain:
		return layerHostNotForDomain
	case rootcause.TCPRefused, rootcause.TCPTimeout, rootcause.TCPReset:
		return layerTCP
	case rootcause.PortSecurityMismatchTLSOnPlain, rootcause.PortSecurityMismatchPlainOnTLS, rootcause.WrongProtocol:
		return layerPort
	case rootcause.TLSProtocolTooOld, rootcause.TLSClientOutdated, rootcause.TLSCertExpired,
		rootcause.TLSCertNotYetValid, rootcause.TLSCertSelfSigned, rootcause.TLSCertUntrusted,
		rootcause.TLSCertChainIncomplete, rootcause.TLSCertHostnameMismatch, rootcause.TLSCertWeak,
		rootcause.TLSIntercepted:
		return layerTLS
	case rootcause.STARTTLSNotOffered, rootcause.STARTTLSStripped, rootcause.STARTTLSRefused, rootcause.STARTTLSHandshakeFailed:
		return layerStartTLS
	case rootcause.AuthRequiresTLS, rootcause.AuthFailed, rootcause.AuthBasicDisabled, rootcause.AuthMechUnsupported,
		rootcause.AuthPasswordExpired, rootcause.AuthAccountLocked, rootcause.PlaintextAuthBlocked:
		return layerAuth
	case rootcause.SMTPRelayDenied, rootcause.SMTPClientBlocked, rootcause.SMTPContentRejected,
		rootcause.SMTPMessageTooLarge, rootcause.SMTPRateLimited, rootcause.MailboxFull:
		return layerPolicy
	}
	return layerSlow
}

// role names a service the way mail clients' settings dialogs do.
func role(s Service) string {
	switch s.Protocol() {
	case settings.ProtocolSMTP:
		return "outgoing server (SMTP)"
	case settings.ProtocolIMAP:
		return "incoming server (IMAP)"
	case settings.ProtocolPOP3:
		return "incoming server (POP3)"
	}
	return "server"
}

// securityWord names a security mode the way mail clients' settings
// dialogs do ("Connection security: SSL/TLS, STARTTLS"), with "no
// encryption" for none, which reads as a phrase in a sentence where a bare
// "None" does not.
func securityWord(sec string) string {
	switch sec {
	case settings.SecurityTLS:
		return "SSL/TLS"
	case settings.SecurityStartTLS:
		return "STARTTLS"
	}
	return "no encryption"
}

// protoWord returns "SMTP", "IMAP" or "POP3".
func protoWord(s Service) string { return strings.ToUpper(s.Protocol()) }

// defaultFix returns the helpdesk fix for a code on service s, for the
// cases where the probe has nothing more specific to say.
func defaultFix(c rootcause.Code, s Service) string {
	r, hp := role(s), fmt.Sprintf("%s port %d", s.Host, s.Port)
	switch c {
	case rootcause.DNSNXDomain:
		return fmt.Sprintf("Check the spelling of the %s name %q in the mail client.", r, s.Host)
	case rootcause.DNSServFail:
		return fmt.Sprintf("The DNS server cannot resolve %s right now (an outage at the domain's DNS provider or at the resolver). Wait and retry, or use another DNS server.", s.Host)
	case rootcause.DNSTimeout:
		return "The DNS server does not answer. Check that the firewall lets DNS through (UDP and TCP port 53), or set the computer to use a working DNS server."
	case rootcause.DNSResolverUnreachable:
		return "The computer's DNS server setting points at a server that does not resolve names. Set the DNS server to the router's or the provider's resolver."
	case rootcause.DNSWrongAddress:
		return fmt.Sprintf("%s resolves to a server of another organisation. Flush the DNS cache, look for a stale entry for %s in the hosts file, and check the domain's DNS records.", s.Host, s.Host)
	case rootcause.ConfigHostNotForDomain:
		return fmt.Sprintf("In the mail client, replace the %s %q with the server of the account's domain.", r, s.Host)
	case rootcause.TCPRefused:
		return fmt.Sprintf("Nothing accepts connections on %s. Check the port in the mail client, that the mail server runs, and the firewall and port forwarding in front of it.", hp)
	case rootcause.TCPTimeout:
		return fmt.Sprintf("Connections to %s vanish: a firewall drops them (many networks block outgoing port 25). Use another port the provider offers, or ask the network administrator to open this one.", hp)
	case rootcause.TCPReset:
		return fmt.Sprintf("The connection to %s is reset: a firewall, antivirus, VPN or the server itself cuts it. Check their logs, or try from another network.", hp)
	case rootcause.PortSecurityMismatchTLSOnPlain:
		return fmt.Sprintf("Port %d speaks plaintext first: in the mail client set the %s security to STARTTLS for port %d, or use the port for SSL/TLS (%d).", s.Port, r, s.Port, settings.StandardPort(s.Protocol(), settings.SecurityTLS))
	case rootcause.PortSecurityMismatchPlainOnTLS:
		return fmt.Sprintf("Port %d expects SSL/TLS from the first byte: in the mail client set the %s security to SSL/TLS.", s.Port, r)
	case rootcause.WrongProtocol:
		return fmt.Sprintf("Port %d on %s is not a %s port: set the %s port to the %s port of the provider.", s.Port, s.Host, protoWord(s), r, protoWord(s))
	case rootcause.TLSProtocolTooOld:
		return "The server speaks only old TLS versions that current clients refuse: the administrator must enable TLS 1.2 or 1.3 on the server."
	case rootcause.TLSClientOutdated:
		return "The mail client (or the operating system it relies on) speaks only old TLS versions the server refuses: update the mail client or enable TLS 1.2 in the system."
	case rootcause.TLSCertExpired:
		return "The server's certificate has expired: the administrator must renew it. Do not add a security exception in the client."
	case rootcause.TLSCertNotYetValid:
		return "Check this computer's date, time and time zone. If they are right, the server's certificate starts in the future and the administrator must replace it."
	case rootcause.TLSCertSelfSigned:
		return "The server uses a self-signed certificate: the administrator should install a certificate from a public CA; for a private server, import this certificate into the client after checking its fingerprint with the administrator."
	case rootcause.TLSCertUntrusted:
		return "The certificate comes from a CA this computer does not trust: if it is the organisation's own CA, install its root certificate on this computer; otherwise the server needs a certificate from a public CA."
	case rootcause.TLSCertChainIncomplete:
		return "The server must send its intermediate certificate(s) with its own: the administrator should configure the full chain (e.g. fullchain.pem instead of cert.pem)."
	case rootcause.TLSCertHostnameMismatch:
		return fmt.Sprintf("In the mail client, use a host name that the server's certificate names, or the administrator must add %s to the certificate.", s.Host)
	case rootcause.TLSCertWeak:
		return "The administrator must replace the certificate with one signed with SHA-256 or better and an RSA key of at least 2048 bits (or an ECDSA key)."
	case rootcause.TLSIntercepted:
		return "An antivirus, firewall or proxy on the way re-signs the server's certificate. Turn off its SSL/TLS or e-mail scanning, or exempt the mail server from inspection."
	case rootcause.STARTTLSNotOffered:
		return fmt.Sprintf("The server does not offer STARTTLS on port %d: set the %s security to SSL/TLS with its port (%d), or ask the administrator to enable STARTTLS.", s.Port, r, settings.StandardPort(s.Protocol(), settings.SecurityTLS))
	case rootcause.STARTTLSStripped:
		return fmt.Sprintf("A device on the way removes STARTTLS from the server's answer (e.g. Cisco ESMTP inspection). Turn that inspection off, or use SSL/TLS on port %d, which it cannot rewrite.", settings.StandardPort(s.Protocol(), settings.SecurityTLS))
	case rootcause.STARTTLSRefused:
		return fmt.Sprintf("The server offers STARTTLS but refuses it: its TLS setup is broken and the administrator must fix it. Meanwhile try SSL/TLS on port %d.", settings.StandardPort(s.Protocol(), settings.SecurityTLS))
	case rootcause.STARTTLSHandshakeFailed:
		return fmt.Sprintf("The server accepts STARTTLS but the TLS handshake then fails: the administrator must check the server's TLS configuration, or a device on the way breaks TLS. Meanwhile try SSL/TLS on port %d.", settings.StandardPort(s.Protocol(), settings.SecurityTLS))
	case rootcause.AuthRequiresTLS:
		return fmt.Sprintf("The server refuses to log in over an unencrypted connection: set the %s security to STARTTLS (port %d) or SSL/TLS (port %d).",
			r, settings.StandardPort(s.Protocol(), settings.SecurityStartTLS), settings.StandardPort(s.Protocol(), settings.SecurityTLS))
	case rootcause.AuthFailed:
		return "Re-enter the user name and password in the mail client; if the password was changed (e.g. on the web), use the new one on every device."
	case rootcause.AuthBasicDisabled:
		return "Password login is disabled for this account: switch the mail client to OAuth2 (Modern Authentication) or create an app password, or ask the administrator to allow authenticated SMTP/IMAP/POP."
	case rootcause.AuthMechUnsupported:
		return "Set the authentication method in the mail client to one the server offers; \"normal password\" over SSL/TLS or STARTTLS is the usual choice."
	case rootcause.AuthPasswordExpired:
		return "The password has expired: change it (e.g. in the provider's web mail or portal), then enter the new one in the mail client."
	case rootcause.AuthAccountLocked:
		return "The account is locked or disabled: ask the administrator to unlock it, and make sure no device keeps retrying an old password (that locks it again)."
	case rootcause.PlaintextAuthBlocked:
		return fmt.Sprintf("A firewall or filter cuts connections that send a login in clear text: set the %s security to STARTTLS or SSL/TLS.", r)
	case rootcause.SMTPRelayDenied:
		return "Turn on \"outgoing server requires authentication\" in the mail client and use the submission port (587 with STARTTLS or 465 with SSL/TLS), so that the server relays for you."
	case rootcause.SMTPClientBlocked:
		return "The server refuses this computer's IP address (a blocklist or an IP restriction): send through the provider's authenticated submission service, or have the IP delisted."
	case rootcause.SMTPContentRejected:
		return "The server refused the message for its content: remove the blocked attachment (or share it by link) or the flagged content, and send again."
	case rootcause.SMTPMessageTooLarge:
		return "The message is larger than the server accepts: send it without the large attachment and share the file by link."
	case rootcause.SMTPRateLimited:
		return "The server is throttling this sender (too many messages or connections, or greylisting): wait a few minutes and retry; the client will succeed on a later attempt."
	case rootcause.MailboxFull:
		return "The mailbox is over its quota: delete or archive messages and empty the trash, or ask the administrator for more space."
	case rootcause.ServerSlow:
		return "The server answers more slowly than the client waits: raise the server timeout in the mail client, and ask the administrator to check the server's load."
	case rootcause.LinkSlow:
		return "The network link is too slow for this message: send it from a faster connection, make it smaller, or check for bandwidth limits (QoS, a metered or throttled line)."
	case rootcause.Intermittent:
		return "The connection works only some of the time (packet loss): check Wi-Fi, VPN and cabling, or try another network; the server itself answers."
	}
	return ""
}
