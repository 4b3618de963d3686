package faults

// The plaintext-auth-filter fault: a firewall with application-level
// filtering resets any session that sends a login (SMTP AUTH, IMAP LOGIN or
// AUTHENTICATE, POP3 USER/PASS/AUTH) in clear text. After STARTTLS it can
// no longer see the commands and lets the session through.

import (
	"bytes"
	"net"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
)

type plaintextFilter struct{ proto string }

func (m *plaintextFilter) Serve(client net.Conn, ts *transcript.Session, dial func() (net.Conn, error)) {
	server, err := dial()
	if err != nil {
		ts.Eventf("fault plaintext-auth-filter: cannot reach the server: %v", err)
		client.Close()
		return
	}
	r := &lineRelay{proto: m.proto, ts: ts, name: "plaintext-auth-filter"}
	r.clientLine = func(line []byte) ([]byte, bool) {
		if credentialCommand(m.proto, line) {
			first, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
			ts.Eventf("fault plaintext-auth-filter: login command (%s ...) in clear text: connection reset", first)
			return nil, true
		}
		return line, false
	}
	r.serve(client, server)
}

func init() {
	Register(Definition{
		Name:      "plaintext-auth-filter",
		Summary:   "a firewall resets connections that send AUTH / LOGIN / USER in clear text (STARTTLS sessions pass)",
		Layer:     LayerProtocol,
		PlainOnly: true,
		Apply: func(l *lab.Lab, sel *Selection, _ any) error {
			for _, svc := range sel.Services {
				svc.Middlebox = &plaintextFilter{proto: svc.Protocol}
				// The server behind the filter is a legacy one that takes
				// passwords without TLS; the filter is what stops them.
				svc.AllowInsecureAuth = true
			}
			return nil
		},
	})
}
