package faults

// The strip-starttls fault: a middlebox between the client and the server
// masks STARTTLS the way Cisco's "ESMTP inspection" does: the capability
// becomes "XXXXXXXA" in the EHLO reply and the client's STARTTLS command
// becomes "XXXXXXXX", which the server rejects as unknown. IMAP and POP3
// capabilities are masked the same way. Clients that require encryption
// fail; clients that don't send passwords in clear text.

import (
	"bytes"
	"net"
	"regexp"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
	"github.com/maillab/maillab/settings"
)

var (
	smtpStartTLSCap = regexp.MustCompile(`(?i)^(\d{3}[ -])STARTTLS\b`)
	imapStartTLSCap = regexp.MustCompile(`(?i)(CAPABILITY[^\]\r\n]*?) STARTTLS\b`)
)

type stripStartTLS struct{ proto string }

func (m *stripStartTLS) Serve(client net.Conn, ts *transcript.Session, dial func() (net.Conn, error)) {
	server, err := dial()
	if err != nil {
		ts.Eventf("fault strip-starttls: cannot reach the server: %v", err)
		client.Close()
		return
	}
	ts.Eventf("fault strip-starttls: a middlebox inspects this session")
	r := &lineRelay{proto: m.proto, ts: ts, name: "strip-starttls"}
	r.serverLine = func(line []byte) []byte {
		var out []byte
		switch m.proto {
		case settings.ProtocolSMTP:
			out = smtpStartTLSCap.ReplaceAll(line, []byte("${1}XXXXXXXA"))
		case settings.ProtocolIMAP:
			out = imapStartTLSCap.ReplaceAll(line, []byte("$1 XXXXXXXX"))
		default:
			if bytes.EqualFold(bytes.TrimRight(line, "\r\n"), []byte("STLS")) {
				out = []byte("XXXX\r\n")
			} else {
				out = line
			}
		}
		if !bytes.Equal(out, line) {
			ts.Eventf("fault strip-starttls: rewrote server line %q to %q", bytes.TrimRight(line, "\r\n"), bytes.TrimRight(out, "\r\n"))
		}
		return out
	}
	r.clientLine = func(line []byte) ([]byte, bool) {
		tag, ok := startTLSCommand(m.proto, line)
		if !ok {
			return line, false
		}
		var out []byte
		switch m.proto {
		case settings.ProtocolIMAP:
			out = []byte(tag + " XXXXXXXX\r\n")
		case settings.ProtocolSMTP:
			out = []byte("XXXXXXXX\r\n")
		default:
			out = []byte("XXXX\r\n")
		}
		ts.Eventf("fault strip-starttls: rewrote client command %q to %q", bytes.TrimRight(line, "\r\n"), bytes.TrimRight(out, "\r\n"))
		return out, false
	}
	r.serve(client, server)
}

func init() {
	Register(Definition{
		Name:      "strip-starttls",
		Summary:   "a middlebox masks STARTTLS in the capabilities (250-XXXXXXXA, Cisco ESMTP inspection style) and in the client's command",
		Layer:     LayerProtocol,
		PlainOnly: true,
		Apply: func(l *lab.Lab, sel *Selection, _ any) error {
			for _, svc := range sel.Services {
				svc.Middlebox = &stripStartTLS{proto: svc.Protocol}
			}
			return nil
		},
	})
}
