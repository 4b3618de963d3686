package transcript

import (
	"io"
	"strings"
	"testing"
)

type recorder struct{ got []string }

func (r *recorder) Record(e Entry) { r.got = append(r.got, string(e.Dir)+": "+e.Text) }

func run(t *testing.T, mk func(*Session) io.Writer, chunks []string) []string {
	t.Helper()
	r := &recorder{}
	s := NewSession(r, "test", nil)
	w := mk(s)
	for _, c := range chunks {
		if _, err := w.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	return r.got
}

func TestSMTPWriter(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   []string
	}{
		{
			name: "greeting and ehlo",
			chunks: []string{"220 mail.example.test ESMTP Service Ready\r\n", "EHLO client\r\n",
				"250-Hello client\r\n", "250-STARTTLS\r\n", "250 AUTH PLAIN LOGIN\r\n"},
			want: []string{"S: 220 mail.example.test ESMTP Service Ready", "C: EHLO client",
				"S: 250-Hello client", "S: 250-STARTTLS", "S: 250 AUTH PLAIN LOGIN"},
		},
		{
			name:   "auth plain initial response masked",
			chunks: []string{"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", "235 2.7.0 Authentication succeeded\r\n"},
			want:   []string{"C: AUTH PLAIN ****", "S: 235 2.7.0 Authentication succeeded"},
		},
		{
			name: "auth login challenges masked",
			chunks: []string{"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n", "YWxpY2U=\r\n", "334 UGFzc3dvcmQ6\r\n",
				"c2VjcmV0\r\n", "535 5.7.8 Authentication credentials invalid\r\n", "QUIT\r\n"},
			want: []string{"C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6", "C: ****", "S: 334 UGFzc3dvcmQ6", "C: ****",
				"S: 535 5.7.8 Authentication credentials invalid", "C: QUIT"},
		},
		{
			name: "data content that looks like replies",
			chunks: []string{"DATA\r\n", "354 Go ahead\r\n", "Subject: x\r\n\r\n250 not a reply\r\n", "220 nor this\r\n.\r\n",
				"250 2.0.0 OK: queued\r\n"},
			want: []string{"C: DATA", "S: 354 Go ahead", "C: <message content, 45 octets>", "C: .", "S: 250 2.0.0 OK: queued"},
		},
		{
			name:   "pipelined data end and quit",
			chunks: []string{"DATA\r\n", "354 Go ahead\r\n", "hi\r\n.\r\nQUIT\r\n", "250 OK\r\n"},
			want:   []string{"C: DATA", "S: 354 Go ahead", "C: <message content, 4 octets>", "C: .", "C: QUIT", "S: 250 OK"},
		},
		{
			name:   "empty message",
			chunks: []string{"DATA\r\n", "354 Go ahead\r\n", ".\r\n", "250 OK\r\n"},
			want:   []string{"C: DATA", "S: 354 Go ahead", "C: <message content, 0 octets>", "C: .", "S: 250 OK"},
		},
		{
			name:   "bdat content",
			chunks: []string{"BDAT 5 LAST\r\n250 x", "NOOP\r\n", "250 2.0.0 OK\r\n"},
			want:   []string{"C: BDAT 5 LAST", "C: <message content, 5 octets>", "C: NOOP", "S: 250 2.0.0 OK"},
		},
		{
			name:   "client line split across reads",
			chunks: []string{"MAIL FR", "OM:<a@example.test>\r\n", "250 2.0.0 Roger\r\n"},
			want:   []string{"C: MAIL FROM:<a@example.test>", "S: 250 2.0.0 Roger"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, (*Session).SMTPWriter, tt.chunks)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestIMAPWriter(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   []string
	}{
		{
			name:   "login masked",
			chunks: []string{"* OK [CAPABILITY IMAP4rev1] ready\r\n", "a1 LOGIN alice secret\r\n", "a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n"},
			want:   []string{"S: * OK [CAPABILITY IMAP4rev1] ready", "C: a1 LOGIN alice ****", "S: a1 OK [CAPABILITY IMAP4rev1] Logged in"},
		},
		{
			name: "login with literals masked",
			chunks: []string{"a1 LOGIN {5}\r\n", "+ Ready\r\n", "alice {6}\r\n", "+ Ready\r\n", "secret\r\n",
				"a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", "a2 LOGOUT\r\n"},
			want: []string{"C: a1 LOGIN {5}", "S: + Ready", "C: ****", "C: ****", "S: + Ready", "C: ****", "C: ****",
				"S: a1 NO [AUTHENTICATIONFAILED] Authentication failed.", "C: a2 LOGOUT"},
		},
		{
			name:   "authenticate masked",
			chunks: []string{"a AUTHENTICATE PLAIN\r\n", "+ \r\n", "AGFsaWNlAHNlY3JldA==\r\n", "a OK done\r\n", "b NOOP\r\n"},
			want:   []string{"C: a AUTHENTICATE PLAIN", "S: + ", "C: ****", "S: a OK done", "C: b NOOP"},
		},
		{
			name:   "authenticate initial response masked",
			chunks: []string{"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n", "a OK done\r\n"},
			want:   []string{"C: a AUTHENTICATE PLAIN ****", "S: a OK done"},
		},
		{
			name: "fetch literal content not parsed as lines",
			chunks: []string{"a UID FETCH 1 BODY[]\r\n", "* 1 FETCH (UID 1 BODY[] {19}\r\n", "a OK fake\r\n* 2 NO\r\n", ")\r\n",
				"a OK FETCH completed\r\n"},
			want: []string{"C: a UID FETCH 1 BODY[]", "S: * 1 FETCH (UID 1 BODY[] {19}", "S: <literal, 19 octets>", "S: )",
				"S: a OK FETCH completed"},
		},
		{
			name: "append literal",
			chunks: []string{"a APPEND INBOX {12}\r\n", "+ Ready for literal data\r\n", "* OK hello\r\n", "\r\n",
				"a OK [APPENDUID 1 1] APPEND completed\r\n"},
			want: []string{"C: a APPEND INBOX {12}", "S: + Ready for literal data", "C: <literal, 12 octets>", "C: ",
				"S: a OK [APPENDUID 1 1] APPEND completed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, (*Session).IMAPWriter, tt.chunks)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// FuzzWriters feeds arbitrary chunk sequences to both classifiers: they
// must not panic, and a password sent in a LOGIN or AUTH line must never
// appear in the transcript.
func FuzzWriters(f *testing.F) {
	f.Add([]byte("a1 LOGIN alice hunter2\r\n"), []byte("* OK x\r\n"))
	f.Add([]byte("AUTH PLAIN hunter2\r\n"), []byte("334 x\r\n"))
	f.Add([]byte("DATA\r\n"), []byte("354 go\r\n"))
	f.Add([]byte("a APPEND INBOX {3}\r\n"), []byte("+ \r\n"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		for _, mk := range []func(*Session) io.Writer{(*Session).SMTPWriter, (*Session).IMAPWriter} {
			r := &recorder{}
			w := mk(NewSession(r, "fuzz", nil))
			w.Write(a)
			w.Write(b)
			w.Write(a)
		}
		// Secrets: a fresh session whose first client line is a login.
		r := &recorder{}
		w := NewSession(r, "fuzz", nil).IMAPWriter()
		w.Write([]byte("a1 LOGIN alice hunter2\r\n"))
		w.Write(b)
		r2 := &recorder{}
		w2 := NewSession(r2, "fuzz", nil).SMTPWriter()
		w2.Write([]byte("AUTH PLAIN hunter2\r\n"))
		w2.Write(b)
		for _, line := range append(r.got, r2.got...) {
			if strings.Contains(line, "hunter2") && !strings.Contains(string(b), "hunter2") {
				t.Fatalf("secret leaked: %q", line)
			}
		}
	})
}

func TestClipNeutralizesControls(t *testing.T) {
	tests := []struct{ in, want string }{
		{"EHLO client\r\n", "EHLO client"},
		{"a\x00b\x1bc\x7fd", "a.b.c.d"},
		{"tab\tkept", "tab\tkept"},
		{"C1 \u0085 \u009b", "C1 . ."},
		{"RTL \u202eNIGOL\u202c end", "RTL .NIGOL. end"},
		{"isolates \u2066x\u2069 marks \u200e\u200f\u061c", "isolates .x. marks ..."},
		{"Jürgen 日本", "Jürgen 日本"},
	}
	for _, tt := range tests {
		if got := clip(tt.in); got != tt.want {
			t.Errorf("clip(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
