package faults

import (
	"bytes"
	"strings"

	"github.com/maillab/maillab/settings"
)

// What the STARTTLS faults and middleboxes need to know of each
// protocol's plaintext phase.

// startTLSCommand reports whether a client line asks to start TLS: SMTP
// "STARTTLS" (RFC 3207 §4), IMAP "<tag> STARTTLS" (RFC 3501 §6.2.1), POP3
// "STLS" (RFC 2595 §4). It returns the IMAP tag.
func startTLSCommand(proto string, line []byte) (tag string, ok bool) {
	l := strings.TrimRight(string(line), "\r\n")
	switch proto {
	case settings.ProtocolSMTP:
		return "", strings.EqualFold(strings.TrimSpace(l), "STARTTLS")
	case settings.ProtocolIMAP:
		t, cmd, found := strings.Cut(l, " ")
		return t, found && strings.EqualFold(strings.TrimSpace(cmd), "STARTTLS")
	case settings.ProtocolPOP3:
		return "", strings.EqualFold(strings.TrimSpace(l), "STLS")
	}
	return "", false
}

// startTLSRefusal is the reply of a server that advertises STARTTLS but
// cannot start it (Postfix, Dovecot wording).
func startTLSRefusal(proto, tag string) string {
	switch proto {
	case settings.ProtocolSMTP:
		return "454 4.7.0 TLS not available due to local problem\r\n"
	case settings.ProtocolIMAP:
		return tag + " NO [UNAVAILABLE] STARTTLS is temporarily unavailable: TLS initialization failed\r\n"
	}
	return "-ERR [SYS/TEMP] TLS initialization failed\r\n"
}

// isPositive reports whether a server reply line accepts a command: SMTP
// 2xx, IMAP "<tag> OK", POP3 "+OK".
func isPositive(proto, tag string, line []byte) bool {
	switch proto {
	case settings.ProtocolSMTP:
		return len(line) >= 3 && line[0] == '2'
	case settings.ProtocolIMAP:
		return bytes.HasPrefix(bytes.ToUpper(line), []byte(strings.ToUpper(tag)+" OK"))
	}
	return bytes.HasPrefix(line, []byte("+OK"))
}

// isFinalReply reports whether line ends a server reply to tag: the last
// line of an SMTP multi-line reply ("250 x", not "250-x"), IMAP's tagged
// completion, or any POP3 status line.
func isFinalReply(proto, tag string, line []byte) bool {
	switch proto {
	case settings.ProtocolSMTP:
		return len(line) >= 4 && line[3] == ' ' || len(bytes.TrimRight(line, "\r\n")) == 3
	case settings.ProtocolIMAP:
		return bytes.HasPrefix(line, []byte(tag+" "))
	}
	return bytes.HasPrefix(line, []byte("+OK")) || bytes.HasPrefix(line, []byte("-ERR"))
}

// credentialCommand reports whether a client line sends credentials or
// starts a login: SMTP AUTH, IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS/
// AUTH/APOP.
func credentialCommand(proto string, line []byte) bool {
	fields := strings.Fields(string(line))
	if len(fields) == 0 {
		return false
	}
	switch proto {
	case settings.ProtocolSMTP:
		return strings.EqualFold(fields[0], "AUTH")
	case settings.ProtocolIMAP:
		return len(fields) >= 2 && (strings.EqualFold(fields[1], "LOGIN") || strings.EqualFold(fields[1], "AUTHENTICATE"))
	}
	switch strings.ToUpper(fields[0]) {
	case "USER", "PASS", "AUTH", "APOP":
		return true
	}
	return false
}
