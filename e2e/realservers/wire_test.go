//go:build e2e

package realservers

import (
	"bufio"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func reader(s string) *bufio.Reader { return bufio.NewReaderSize(strings.NewReader(s), 16) }

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", MaxLine)
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"crlf", "220 ready\r\nnext", "220 ready", nil},
		{"bare lf", "+OK\nnext", "+OK", nil},
		{"longer than the buffer", long + "\r\n", long, nil},
		{"too long", long + "yy\r\n", "", ErrLineTooLong},
		{"no line end", "220 half", "220 half", io.ErrUnexpectedEOF},
		{"empty stream", "", "", io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadLine(reader(tt.in))
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Errorf("ReadLine(%.20q) = %.20q, %v; want %.20q, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestReadSMTPReply(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		code  int
		lines int
		err   error
	}{
		{"one line", "220 mail.realmail.test ESMTP Postfix (Debian/GNU)\r\n", 220, 1, nil},
		{"ehlo", "250-mail.realmail.test\r\n250-SIZE 102400\r\n250-AUTH PLAIN\r\n250 CHUNKING\r\n", 250, 4, nil},
		{"bare code", "250\r\n", 250, 1, nil},
		{"code changes", "250-a\r\n251 b\r\n", 250, 1, ErrMalformed},
		{"no code", "hello\r\n", 0, 0, ErrMalformed},
		{"bad separator", "250_x\r\n", 0, 0, ErrMalformed},
		{"out of range", "999 x\r\n", 0, 0, ErrMalformed},
		{"cut", "250-a\r\n", 250, 1, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []string
			rep, err := ReadSMTPReply(reader(tt.in), func(l string) { seen = append(seen, l) })
			if !errors.Is(err, tt.err) || rep.Code != tt.code || len(rep.Lines) != tt.lines {
				t.Errorf("ReadSMTPReply(%q) = %d with %d lines, %v; want %d with %d lines, %v", tt.in, rep.Code, len(rep.Lines), err, tt.code, tt.lines, tt.err)
			}
			if len(seen) < len(rep.Lines) {
				t.Errorf("onLine saw %d lines, the reply has %d", len(seen), len(rep.Lines))
			}
		})
	}
	t.Run("too many lines", func(t *testing.T) {
		_, err := ReadSMTPReply(reader(strings.Repeat("250-x\r\n", MaxReplyLines+1)), nil)
		if !errors.Is(err, ErrTooManyLines) {
			t.Errorf("err = %v, want ErrTooManyLines", err)
		}
	})
}

func TestSMTPReplyParam(t *testing.T) {
	rep, err := ReadSMTPReply(reader("250-mail.realmail.test\r\n250-SIZE 102400\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		keyword, params string
		ok              bool
	}{
		{"SIZE", "102400", true},
		{"auth", "PLAIN LOGIN", true},
		{"STARTTLS", "", true},
		{"mail.realmail.test", "", false}, // the first line is the greeting name
		{"CHUNKING", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.keyword, func(t *testing.T) {
			params, ok := rep.Param(tt.keyword)
			if params != tt.params || ok != tt.ok {
				t.Errorf("Param(%q) = %q, %v; want %q, %v", tt.keyword, params, ok, tt.params, tt.ok)
			}
		})
	}
}

func TestParseIMAPStatus(t *testing.T) {
	tests := []struct {
		line                    string
		tag, status, code, text string
		err                     error
	}{
		{"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Dovecot (Debian) ready.", "*", "OK", "CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED", "Dovecot (Debian) ready.", nil},
		{"a2 NO [AUTHENTICATIONFAILED] Authentication failed.", "a2", "NO", "AUTHENTICATIONFAILED", "Authentication failed.", nil},
		{"a3 bad TLS support isn't enabled.", "a3", "BAD", "", "TLS support isn't enabled.", nil},
		{"+ ", "+", "", "", "", nil},
		{"+", "+", "", "", "", nil},
		{"* CAPABILITY IMAP4rev1", "", "", "", "", ErrMalformed},
		{"a1 OK [ALERT unterminated", "a1", "OK", "", "", ErrMalformed},
		{"lonely", "", "", "", "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			st, err := ParseIMAPStatus(tt.line)
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParseIMAPStatus(%q) error %v, want %v", tt.line, err, tt.err)
			}
			if err != nil {
				return
			}
			if st.Tag != tt.tag || st.Status != tt.status || st.Code != tt.code || st.Text != tt.text {
				t.Errorf("ParseIMAPStatus(%q) = %+v", tt.line, st)
			}
		})
	}
}

func TestReadIMAPResponse(t *testing.T) {
	tests := []struct {
		name, in, tag   string
		status          string
		untagged        int
		err             error
		wantCapsContain string
	}{
		{"login", "* CAPABILITY IMAP4rev1 SORT\r\na2 OK Logged in\r\n", "a2", "OK", 1, nil, "SORT"},
		{"logout", "* BYE Logging out\r\na4 OK Logout completed.\r\n", "a4", "OK", 1, nil, ""},
		{"bye then close", "* BYE Shutting down\r\n", "a4", "BYE", 1, nil, ""},
		{"literal", "* 1 FETCH (BODY[] {5}\r\nhello)\r\na5 OK done\r\n", "a5", "OK", 1, nil, ""},
		{"continuation", "+ \r\n", "a6", "", 0, nil, ""},
		{"greeting", "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n", "*", "OK", 0, nil, "AUTH=PLAIN"},
		{"foreign tag", "b1 OK other\r\n", "a1", "", 0, ErrMalformed, ""},
		{"huge literal", "* 1 FETCH (BODY[] {99999999}\r\n", "a1", "", 0, ErrLineTooLong, ""},
		{"cut", "* CAPABILITY IMAP4rev1\r\n", "a1", "", 1, io.EOF, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, un, err := ReadIMAPResponse(reader(tt.in), tt.tag, nil)
			if !errors.Is(err, tt.err) || st.Status != tt.status || len(un) != tt.untagged {
				t.Errorf("ReadIMAPResponse(%q) = %q with %d untagged, %v; want %q with %d, %v", tt.in, st.Status, len(un), err, tt.status, tt.untagged, tt.err)
			}
			if tt.wantCapsContain != "" && !slices.Contains(IMAPCapabilities(st, un), tt.wantCapsContain) {
				t.Errorf("capabilities %v lack %s", IMAPCapabilities(st, un), tt.wantCapsContain)
			}
		})
	}
}

func TestLiteralSize(t *testing.T) {
	tests := []struct {
		line string
		n    int
		ok   bool
	}{
		{"* 1 FETCH (BODY[] {5}", 5, true},
		{"a1 LOGIN {3+}", 3, true},
		{"{0}", 0, true},
		{"no literal", 0, false},
		{"{-1}", 0, false},
		{"{+1}", 0, false},
		{"{}", 0, false},
		{"{x}", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			n, ok := literalSize(tt.line)
			if n != tt.n || ok != tt.ok {
				t.Errorf("literalSize(%q) = %d, %v; want %d, %v", tt.line, n, ok, tt.n, tt.ok)
			}
		})
	}
}

func TestPOP3(t *testing.T) {
	status := []struct {
		line string
		ok   bool
		text string
		err  error
	}{
		{"+OK Dovecot (Debian) ready.", true, "Dovecot (Debian) ready.", nil},
		{"+OK", true, "", nil},
		{"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.", false, "[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.", nil},
		{"-ERR", false, "", nil},
		{"+OKAY", false, "", ErrMalformed},
		{"* OK imap", false, "", ErrMalformed},
	}
	for _, tt := range status {
		t.Run("status "+tt.line, func(t *testing.T) {
			ok, text, err := ParsePOP3Status(tt.line)
			if ok != tt.ok || text != tt.text || !errors.Is(err, tt.err) {
				t.Errorf("ParsePOP3Status(%q) = %v, %q, %v", tt.line, ok, text, err)
			}
		})
	}
	multi := []struct {
		name, in string
		want     []string
		err      error
	}{
		{"capa", "TOP\r\nUIDL\r\nSASL PLAIN\r\n.\r\n", []string{"TOP", "UIDL", "SASL PLAIN"}, nil},
		{"byte-stuffed", "..hidden\r\n.\r\n", []string{".hidden"}, nil},
		{"cut", "TOP\r\n", []string{"TOP"}, io.EOF},
	}
	for _, tt := range multi {
		t.Run("multi "+tt.name, func(t *testing.T) {
			got, err := ReadPOP3Multi(reader(tt.in), nil)
			if !slices.Equal(got, tt.want) || !errors.Is(err, tt.err) {
				t.Errorf("ReadPOP3Multi(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}
