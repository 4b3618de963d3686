package wire

import (
	"bytes"
	"fmt"
	"strings"
)

// Protocol names what the first bytes of a connection look like.
type Protocol string

// Protocols that Sniff recognises.
const (
	ProtoUnknown Protocol = ""
	ProtoSMTP    Protocol = "SMTP"
	ProtoIMAP    Protocol = "IMAP"
	ProtoPOP3    Protocol = "POP3"
	ProtoTLS     Protocol = "TLS"
	ProtoHTTP    Protocol = "HTTP"
	ProtoSSH     Protocol = "SSH"
	ProtoFTP     Protocol = "FTP"
	ProtoVNC     Protocol = "VNC"
	ProtoMySQL   Protocol = "MySQL"
)

// Sniffed is the verdict of Sniff.
type Sniffed struct {
	Protocol Protocol
	// Line is the first line (printable form, at most 200 bytes), or a
	// description of binary data.
	Line string
}

// Sniff names the protocol of a connection from the first bytes the server
// sent, before the client said anything (server-speaks-first protocols).
// It never looks at library error strings: only at the bytes.
func Sniff(b []byte) Sniffed {
	line := firstLine(b)
	s := Sniffed{Line: line}
	switch {
	case len(b) == 0:
		return s
	case IsTLSRecord(b):
		s.Protocol = ProtoTLS
		s.Line = DescribeTLS(b)
	case bytes.HasPrefix(b, []byte("* OK")), bytes.HasPrefix(b, []byte("* PREAUTH")), bytes.HasPrefix(b, []byte("* BYE")):
		// RFC 3501 §7.1: greeting is OK, PREAUTH or BYE.
		s.Protocol = ProtoIMAP
	case hasPrefixFold(b, "+OK"), hasPrefixFold(b, "-ERR"):
		// RFC 1939 §4: the POP3 greeting is a positive response; servers
		// refusing service send -ERR.
		s.Protocol = ProtoPOP3
	case bytes.HasPrefix(b, []byte("HTTP/")):
		s.Protocol = ProtoHTTP
	case bytes.HasPrefix(b, []byte("SSH-")):
		s.Protocol = ProtoSSH
	case bytes.HasPrefix(b, []byte("RFB ")):
		s.Protocol = ProtoVNC
	case smtpGreeting(b, line):
		s.Protocol = ProtoSMTP
	case ftpGreeting(line):
		s.Protocol = ProtoFTP
	case len(b) > 5 && b[3] == 0 && b[4] == 0x0a:
		// MySQL handshake v10: 3-byte length, sequence 0, protocol 10.
		s.Protocol = ProtoMySQL
		s.Line = "MySQL server handshake"
	}
	return s
}

// smtpGreeting recognises "220 " / "220-" (RFC 5321 §4.2) and the
// rejecting greetings 554 and 421 (§3.1). FTP also greets with 220, so a 220
// whose text names FTP and not SMTP is FTP.
func smtpGreeting(b []byte, line string) bool {
	if len(b) < 4 || (b[3] != ' ' && b[3] != '-') {
		return false
	}
	switch string(b[:3]) {
	case "220":
		upper := strings.ToUpper(line)
		return !(strings.Contains(upper, "FTP") && !strings.Contains(upper, "SMTP"))
	case "554", "421":
		return !strings.Contains(strings.ToUpper(line), "FTP")
	}
	return false
}

func ftpGreeting(line string) bool {
	return (strings.HasPrefix(line, "220") || strings.HasPrefix(line, "120")) && strings.Contains(strings.ToUpper(line), "FTP")
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// firstLine returns the first line of b in printable form, at most 200
// bytes, with non-printable bytes escaped.
func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimSuffix(b, []byte{'\r'})
	if len(b) > 200 {
		b = b[:200]
	}
	return Printable(b)
}

// Printable returns b with bytes outside printable ASCII escaped as \xNN, so
// evidence never carries control characters to a terminal.
func Printable(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			sb.WriteByte(c)
			continue
		}
		fmt.Fprintf(&sb, "\\x%02x", c)
	}
	return sb.String()
}
