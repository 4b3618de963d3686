package wire

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		code     int
		enhanced string
		lines    int
		wantErr  error
	}{
		{"postfix greeting", "220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n", 220, "", 1, nil},
		{"gmail auth failure", "535-5.7.8 Username and Password not accepted. For more information, go to\r\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials a1-20020a05 - gsmtp\r\n", 535, "5.7.8", 2, nil},
		{"bare code", "250\r\n", 250, "", 1, nil},
		{"bare LF", "250 2.0.0 Ok\n", 250, "2.0.0", 1, nil},
		{"not a reply", "HTTP/1.1 400 Bad Request\r\n", 0, "", 0, ErrMalformedReply},
		{"truncated", "250-first\r\n250-sec", 250, "", 1, io.ErrUnexpectedEOF},
		{"endless", strings.Repeat("250-x\r\n", 20), 250, "", 10, ErrTooManyLines},
		{"long line", "220 " + strings.Repeat("x", 5000) + "\r\n", 0, "", 0, ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := ReadReply(NewReader(strings.NewReader(tt.in), 0), 10)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ReadReply err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadReply: %v", err)
			}
			if rep.Code != tt.code || rep.Enhanced.String() != tt.enhanced || len(rep.Lines) != tt.lines {
				t.Errorf("ReadReply = code %d enhanced %q lines %d, want %d %q %d", rep.Code, rep.Enhanced, len(rep.Lines), tt.code, tt.enhanced, tt.lines)
			}
		})
	}
}

func TestParseEnhancedCode(t *testing.T) {
	tests := []struct {
		in   string
		want string
		rest string
	}{
		{"5.7.8 Error: authentication failed", "5.7.8", "Error: authentication failed"},
		{"4.7.139 x", "4.7.139", "x"},
		{"2.0.0", "2.0.0", ""},
		{"3.1.1 x", "", "3.1.1 x"},
		{"5.7 x", "", "5.7 x"},
		{"55.7.1 x", "", "55.7.1 x"},
		{"5.1234.1 x", "", "5.1234.1 x"},
		{"5.+1.1 x", "", "5.+1.1 x"},
		{"Ok", "", "Ok"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ec, rest, _ := ParseEnhancedCode(tt.in)
			if ec.String() != tt.want || rest != tt.rest {
				t.Errorf("ParseEnhancedCode(%q) = %q, %q; want %q, %q", tt.in, ec, rest, tt.want, tt.rest)
			}
		})
	}
}

func TestParseEHLO(t *testing.T) {
	// Postfix 3.7 on port 587 after STARTTLS, and an old-style AUTH= line.
	rep, err := ParseReply([]string{
		"250-mail.example.com",
		"250-PIPELINING",
		"250-SIZE 10240000",
		"250-VRFY",
		"250-ETRN",
		"250-AUTH PLAIN LOGIN",
		"250-AUTH=PLAIN LOGIN",
		"250-ENHANCEDSTATUSCODES",
		"250-8BITMIME",
		"250-DSN",
		"250-SMTPUTF8",
		"250 CHUNKING",
	})
	if err != nil {
		t.Fatal(err)
	}
	e := ParseEHLO(rep)
	if e.Domain != "mail.example.com" {
		t.Errorf("Domain = %q", e.Domain)
	}
	if got := e.AuthMechanisms(); !slices.Equal(got, []string{"PLAIN", "LOGIN"}) {
		t.Errorf("AuthMechanisms = %v", got)
	}
	if n, ok := e.Size(); !ok || n != 10240000 {
		t.Errorf("Size = %d, %v", n, ok)
	}
	if e.Has("STARTTLS") || !e.Has("chunking") {
		t.Errorf("Has: STARTTLS %v, CHUNKING %v", e.Has("STARTTLS"), e.Has("chunking"))
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		line                      string
		tag, status, code, keywrd string
		number                    int
	}{
		{"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot (Debian) ready.", "*", "OK", "CAPABILITY", "", 0},
		{"a1 NO [AUTHENTICATIONFAILED] Authentication failed.", "a1", "NO", "AUTHENTICATIONFAILED", "", 0},
		{"a1 NO [ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)", "a1", "NO", "ALERT", "", 0},
		{"* 172 EXISTS", "*", "", "", "EXISTS", 172},
		{"* CAPABILITY IMAP4rev1 AUTH=PLAIN", "*", "", "", "CAPABILITY", 0},
		{"+ ", "+", "", "", "", 0},
		{"* BYE Too many connections", "*", "BYE", "", "", 0},
		{"a2 ok done", "a2", "OK", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			r, err := ParseResponse(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			if r.Tag != tt.tag || r.Status != tt.status || r.Code != tt.code || r.Number != tt.number || (tt.keywrd != "" && r.Keyword() != tt.keywrd) {
				t.Errorf("ParseResponse(%q) = %+v", tt.line, r)
			}
		})
	}
	for _, bad := range []string{"", "a1 FOO bar", "(x OK"} {
		if _, err := ParseResponse(bad); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("ParseResponse(%q) err = %v, want ErrMalformedResponse", bad, err)
		}
	}
}

func TestReadResponseLiteral(t *testing.T) {
	in := "* 1 FETCH (ENVELOPE (\"date\" {5}\r\nhello \"x\"))\r\na1 OK\r\n"
	r := NewReader(strings.NewReader(in), 0)
	resp, err := ReadResponse(r, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp.Raw, "hello") || resp.Number != 1 {
		t.Errorf("ReadResponse = %+v", resp)
	}
	if _, err := ReadResponse(NewReader(strings.NewReader("* 1 FETCH {999999}\r\n"), 0), 1<<16); !errors.Is(err, ErrLineTooLong) {
		t.Errorf("huge literal err = %v, want ErrLineTooLong", err)
	}
}

func TestCapabilities(t *testing.T) {
	r, _ := ParseResponse("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN AUTH=XOAUTH2 auth=plain] ready")
	caps, ok := r.Capabilities()
	if !ok || !slices.Contains(caps, "STARTTLS") {
		t.Fatalf("Capabilities = %v, %v", caps, ok)
	}
	if got := IMAPAuthMechanisms(caps); !slices.Equal(got, []string{"PLAIN", "XOAUTH2"}) {
		t.Errorf("IMAPAuthMechanisms = %v", got)
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
		code string
		text string
	}{
		{"+OK Dovecot (Debian) ready.", true, "", "Dovecot (Debian) ready."},
		{"-ERR [AUTH] Authentication failed.", false, "AUTH", "Authentication failed."},
		{"-ERR [SYS/TEMP] Temporary failure", false, "SYS/TEMP", "Temporary failure"},
		{"-ERR [IN-USE] Mailbox locked", false, "IN-USE", "Mailbox locked"},
		{"+OK", true, "", ""},
		{"-ERR [not a code] x", false, "", "[not a code] x"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			s, err := ParseStatus(tt.line)
			if err != nil || s.OK != tt.ok || s.Code != tt.code || s.Text != tt.text {
				t.Errorf("ParseStatus(%q) = %+v, %v", tt.line, s, err)
			}
		})
	}
	for _, bad := range []string{"* OK imap", "+OKAY", ""} {
		if _, err := ParseStatus(bad); !errors.Is(err, ErrMalformedStatus) {
			t.Errorf("ParseStatus(%q) err = %v", bad, err)
		}
	}
}

func TestReadMultilineCAPA(t *testing.T) {
	in := "CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nSASL PLAIN LOGIN\r\n..dot\r\n.\r\n"
	lines, err := ReadMultiline(NewReader(strings.NewReader(in), 0), 100)
	if err != nil {
		t.Fatal(err)
	}
	c := ParseCAPA(lines)
	if !c.Has("stls") || !slices.Equal(c.SASL(), []string{"PLAIN", "LOGIN"}) || !c.Has(".DOT") {
		t.Errorf("ParseCAPA = %v", c)
	}
	if _, err := ReadMultiline(NewReader(strings.NewReader(strings.Repeat("x\r\n", 50)), 0), 10); !errors.Is(err, ErrTooManyLines) {
		t.Errorf("endless multi-line err = %v", err)
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		in   string
		want Protocol
	}{
		{"220 mail.example.com ESMTP Postfix\r\n", ProtoSMTP},
		{"220-mx.google.com ESMTP\r\n", ProtoSMTP},
		{"554 5.7.1 blocked\r\n", ProtoSMTP},
		{"220 (vsFTPd 3.0.3)\r\n", ProtoFTP},
		{"220 ProFTPD Server (Debian)\r\n", ProtoFTP},
		{"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n", ProtoIMAP},
		{"* BYE too many\r\n", ProtoIMAP},
		{"+OK Dovecot ready.\r\n", ProtoPOP3},
		{"-ERR go away\r\n", ProtoPOP3},
		{"\x16\x03\x03\x00\x02\x02\x00", ProtoTLS},
		{"\x15\x03\x01\x00\x02\x02\x46", ProtoTLS},
		{"HTTP/1.1 400 Bad Request\r\n", ProtoHTTP},
		{"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", ProtoSSH},
		{"RFB 003.008\n", ProtoVNC},
		{"hello\r\n", ProtoUnknown},
	}
	for _, tt := range tests {
		t.Run(Printable([]byte(tt.in)), func(t *testing.T) {
			if got := Sniff([]byte(tt.in)); got.Protocol != tt.want {
				t.Errorf("Sniff(%q) = %q, want %q", tt.in, got.Protocol, tt.want)
			}
		})
	}
}

func TestFindAlert(t *testing.T) {
	// What a TLS-1.0-only OpenSSL server answers to a 1.2+ ClientHello.
	a, ok := FindAlert([]byte{0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46})
	if !ok || a.Description != AlertProtocolVersion || a.String() != "protocol_version" {
		t.Errorf("FindAlert = %v, %v", a, ok)
	}
	if _, ok := FindAlert([]byte("220 smtp\r\n")); ok {
		t.Error("FindAlert found an alert in an SMTP banner")
	}
	// ServerHello record followed by an alert record.
	b := []byte{0x16, 0x03, 0x03, 0x00, 0x01, 0x02, 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}
	if a, ok := FindAlert(b); !ok || a.Description != AlertHandshakeFailure {
		t.Errorf("FindAlert after handshake record = %v, %v", a, ok)
	}
}

func TestQuoteIMAP(t *testing.T) {
	if q, ok := QuoteIMAP(`pa"ss\w`); !ok || q != `"pa\"ss\\w"` {
		t.Errorf("QuoteIMAP = %q, %v", q, ok)
	}
	if _, ok := QuoteIMAP("p\u00e4ss"); ok {
		t.Error("QuoteIMAP accepted 8-bit")
	}
}
