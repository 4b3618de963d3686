package diagnose

import (
	"strings"

	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/settings"
)

// layer returns the layer of a code: its precedence in the root-cause
// order (rootcause.Layer).
func layer(c rootcause.Code) rootcause.Layer { return rootcause.LayerOf(c) }

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

// defaultFix returns the helpdesk fix for a code on service s (the
// table's, rootcause.All), for the cases where the probe has nothing more
// specific to say.
func defaultFix(c rootcause.Code, s Service) string { return rootcause.Fix(c, target(s)) }

// target describes s for the table's fixes.
func target(s Service) rootcause.Target {
	return rootcause.Target{
		Role:         role(s),
		Host:         s.Host,
		Port:         s.Port,
		Protocol:     protoWord(s),
		TLSPort:      settings.StandardPort(s.Protocol(), settings.SecurityTLS),
		StartTLSPort: settings.StandardPort(s.Protocol(), settings.SecurityStartTLS),
	}
}

// Target describes the service for the fixes of the root-cause table.
func (s Service) Target() rootcause.Target { return target(s) }
