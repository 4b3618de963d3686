package wire

import (
	"bytes"
	"strings"
	"testing"
)

// The seeds are real server output: Postfix, Dovecot, Exchange Online and
// Gmail (see ../testdata/replies for sources).

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n",
		"535-5.7.8 Username and Password not accepted. For more information, go to\r\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials - gsmtp\r\n",
		"250-smtp.office365.com Hello [192.0.2.1]\r\n250-SIZE 157286400\r\n250-AUTH LOGIN XOAUTH2\r\n250 SMTPUTF8\r\n",
		"535 5.7.139 Authentication unsuccessful, basic authentication is disabled.\r\n",
		"554 5.7.1 <x@y.test>: Relay access denied\r\n",
		"250\n",
		"4",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), 512)
		for i := 0; i < 20; i++ {
			rep, err := ReadReply(r, 50)
			if err != nil {
				return
			}
			if rep.Code < 200 || rep.Code > 599 || len(rep.Lines) != len(rep.Raw) || len(rep.Raw) > 50 {
				t.Fatalf("bad reply %+v", rep)
			}
			e := ParseEHLO(rep)
			e.AuthMechanisms()
			e.Size()
		}
	})
}

func FuzzParseEnhancedCode(f *testing.F) {
	for _, s := range []string{"5.7.8 x", "4.7.139 y", "2.0.0", "5.5.5.5", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ec, rest, ok := ParseEnhancedCode(s)
		if !ok {
			if rest != s || !ec.IsZero() {
				t.Fatalf("failed parse changed input")
			}
			return
		}
		again, _, ok2 := ParseEnhancedCode(ec.String())
		if !ok2 || again != ec {
			t.Fatalf("round trip %q -> %v -> %v", s, ec, again)
		}
	})
}

func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot (Debian) ready.\r\n",
		"a1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n",
		"* 1 FETCH (ENVELOPE (\"Mon, 1 Jan 2024\" {3}\r\nabc NIL))\r\n",
		"+ \r\n",
		"* 3 EXISTS\r\n",
		"a2 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), 1024)
		for i := 0; i < 20; i++ {
			resp, err := ReadResponse(r, 4096)
			if err != nil {
				return
			}
			if len(resp.Raw) > 4096 {
				t.Fatalf("response exceeds limit: %d bytes", len(resp.Raw))
			}
			caps, _ := resp.Capabilities()
			IMAPAuthMechanisms(caps)
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"+OK Dovecot (Debian) ready.", "-ERR [AUTH] Authentication failed.", "-ERR [SYS/TEMP] x", "+OK", "-ERR"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStatus(s)
		if err == nil && st.OK != strings.HasPrefix(strings.ToUpper(s), "+OK") {
			t.Fatalf("OK mismatch for %q", s)
		}
	})
}

func FuzzCAPA(f *testing.F) {
	f.Add([]byte("CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nSTLS\r\nSASL PLAIN LOGIN\r\n.\r\n"))
	f.Add([]byte("USER\r\nSASL\r\n..x\r\n.\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := ReadMultiline(NewReader(bytes.NewReader(data), 256), 100)
		if err != nil {
			return
		}
		c := ParseCAPA(lines)
		c.SASL()
		c.Names()
	})
}

func FuzzSniff(f *testing.F) {
	for _, s := range []string{
		"220 mail.example.com ESMTP Postfix\r\n", "* OK ready\r\n", "+OK ready\r\n",
		"\x16\x03\x03\x00\x02\x02\x00", "\x15\x03\x01\x00\x02\x02\x46", "SSH-2.0-x\r\n", "HTTP/1.0 200 OK\r\n", "\x4a\x00\x00\x00\x0a8.0",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := Sniff(data)
		for _, c := range []byte(s.Line) {
			if c < 0x20 || c >= 0x7f {
				t.Fatalf("unprintable byte in %q", s.Line)
			}
		}
		FindAlert(data)
	})
}
