package transcript

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"testing"
)

// step is one write of one direction.
type step struct {
	dir  Direction
	text string
}

// runTee feeds steps the way go-smtp and go-imap do: what the server reads
// through io.TeeReader, what it writes through io.MultiWriter.
func runTee(t testing.TB, mk func(*Session) io.Writer, steps []step) []string {
	t.Helper()
	r := &recorder{}
	w := mk(NewSession(r, "test", nil))
	for _, s := range steps {
		teeWrite(w, s.dir, []byte(s.text))
	}
	return r.got
}

func teeWrite(w io.Writer, dir Direction, b []byte) {
	if dir == Server {
		io.MultiWriter(io.Discard, w).Write(b)
		return
	}
	buf := make([]byte, len(b))
	io.ReadFull(io.TeeReader(bytes.NewReader(b), w), buf)
}

// TestCredentialsInOneWrite is the regression test of issue 12, defect 2:
// a client that sends its AUTH command and its responses in one write, or
// whose password segment begins like a server response, had them logged.
func TestCredentialsInOneWrite(t *testing.T) {
	blob := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00hunter2"))
	user := base64.StdEncoding.EncodeToString([]byte("alice"))
	pass := base64.StdEncoding.EncodeToString([]byte("hunter2"))
	tests := []struct {
		name  string
		mk    func(*Session) io.Writer
		steps []step
		want  []string
	}{
		{
			name: "smtp auth plain and response in one write",
			mk:   (*Session).SMTPWriter,
			steps: []step{{Server, "220 lab ESMTP\r\n"}, {Client, "AUTH PLAIN\r\n" + blob + "\r\n"},
				{Server, "334 \r\n"}, {Server, "235 2.7.0 Authentication succeeded\r\n"}, {Client, "QUIT\r\n"}},
			want: []string{"S: 220 lab ESMTP", "C: AUTH PLAIN", "C: ****", "S: 334 ", "S: 235 2.7.0 Authentication succeeded", "C: QUIT"},
		},
		{
			name: "smtp auth login user and password in one write",
			mk:   (*Session).SMTPWriter,
			steps: []step{{Server, "220 lab ESMTP\r\n"}, {Client, "AUTH LOGIN\r\n" + user + "\r\n" + pass + "\r\n"},
				{Server, "334 VXNlcm5hbWU6\r\n"}, {Server, "334 UGFzc3dvcmQ6\r\n"}, {Server, "535 5.7.8 no\r\n"}, {Client, "QUIT\r\n"}},
			want: []string{"S: 220 lab ESMTP", "C: AUTH LOGIN", "C: ****", "C: ****", "S: 334 VXNlcm5hbWU6",
				"S: 334 UGFzc3dvcmQ6", "S: 535 5.7.8 no", "C: QUIT"},
		},
		{
			name: "smtp auth login rejected before the password arrived",
			mk:   (*Session).SMTPWriter,
			steps: []step{{Client, "AUTH LOGIN\r\n" + user + "\r\n"}, {Server, "504 5.5.4 no LOGIN\r\n"},
				{Server, "500 5.5.2 what\r\n"}, {Client, pass + "\r\n"}, {Client, "MAIL FROM:<a@example.test>\r\n"}},
			want: []string{"C: AUTH LOGIN", "C: ****", "S: 504 5.5.4 no LOGIN", "S: 500 5.5.2 what", "C: ****",
				"C: MAIL FROM:<a@example.test>"},
		},
		{
			name:  "imap quoted password split before a \"* \"",
			mk:    (*Session).IMAPWriter,
			steps: []step{{Server, "* OK ready\r\n"}, {Client, `a1 LOGIN alice "pa`}, {Client, `* ss"` + "\r\n"}, {Server, "a1 OK done\r\n"}},
			want:  []string{"S: * OK ready", "C: a1 LOGIN alice ****", "S: a1 OK done"},
		},
		{
			name: "imap authenticate and response in one write",
			mk:   (*Session).IMAPWriter,
			steps: []step{{Client, "a AUTHENTICATE PLAIN\r\n" + blob + "\r\n"}, {Server, "+ \r\n"}, {Server, "a OK done\r\n"},
				{Client, "b NOOP\r\n"}},
			want: []string{"C: a AUTHENTICATE PLAIN", "C: ****", "S: + ", "S: a OK done", "C: b NOOP"},
		},
		{
			name: "imap password literal that looks like a response",
			mk:   (*Session).IMAPWriter,
			steps: []step{{Client, "a LOGIN alice {9}\r\n"}, {Server, "+ Ready\r\n"}, {Client, "* OK pass"}, {Client, "\r\n"},
				{Server, "a OK done\r\n"}},
			want: []string{"C: a LOGIN alice {9}", "S: + Ready", "C: ****", "C: ****", "S: a OK done"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"tee", "direct"} {
				var got []string
				if path == "tee" {
					got = runTee(t, tt.mk, tt.steps)
				} else {
					chunks := make([]string, len(tt.steps))
					for i, s := range tt.steps {
						chunks[i] = s.text
					}
					got = run(t, tt.mk, chunks)
				}
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("%s: transcript:\n%s\nwant:\n%s", path, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
				}
			}
		})
	}
}

// exchange is a scripted session: each client line with the server's
// replies to it once the server has read the whole line.
type exchange struct {
	greeting string
	lines    []exchangeLine
	secrets  []string
}

type exchangeLine struct {
	client  string
	replies []string
}

func quoteIMAP(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// authExchange builds scenario kind (0..8) for user and password.
func authExchange(kind int, user, pass string) (mk func(*Session) io.Writer, ex exchange) {
	b64 := base64.StdEncoding.EncodeToString
	blob := b64([]byte("\x00" + user + "\x00" + pass))
	ex.secrets = []string{pass, b64([]byte(pass)), blob}
	smtp := func(lines ...exchangeLine) exchange {
		ex.greeting = "220 lab.test ESMTP\r\n"
		ex.lines = append([]exchangeLine{{"EHLO client\r\n", []string{"250-lab.test\r\n", "250-PIPELINING\r\n", "250 AUTH PLAIN LOGIN\r\n"}}}, lines...)
		ex.lines = append(ex.lines, exchangeLine{"MAIL FROM:<a@lab.test>\r\n", []string{"250 2.0.0 Roger\r\n"}},
			exchangeLine{"QUIT\r\n", []string{"221 2.0.0 Bye\r\n"}})
		return ex
	}
	imap := func(lines ...exchangeLine) exchange {
		ex.greeting = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"
		ex.lines = append(lines, exchangeLine{"a2 SELECT INBOX\r\n", []string{"* 0 EXISTS\r\n", "a2 OK [READ-WRITE] done\r\n"}},
			exchangeLine{"a3 LOGOUT\r\n", []string{"* BYE bye\r\n", "a3 OK done\r\n"}})
		return ex
	}
	lit := func(s string, sync bool) string {
		if sync {
			return fmt.Sprintf("{%d}\r\n", len(s))
		}
		return fmt.Sprintf("{%d+}\r\n", len(s))
	}
	switch kind {
	case 0:
		return (*Session).SMTPWriter, smtp(exchangeLine{"AUTH PLAIN " + blob + "\r\n", []string{"235 2.7.0 ok\r\n"}})
	case 1:
		return (*Session).SMTPWriter, smtp(exchangeLine{"AUTH PLAIN\r\n", []string{"334 \r\n"}},
			exchangeLine{blob + "\r\n", []string{"235 2.7.0 ok\r\n"}})
	case 2:
		return (*Session).SMTPWriter, smtp(exchangeLine{"AUTH LOGIN\r\n", []string{"334 VXNlcm5hbWU6\r\n"}},
			exchangeLine{b64([]byte(user)) + "\r\n", []string{"334 UGFzc3dvcmQ6\r\n"}},
			exchangeLine{b64([]byte(pass)) + "\r\n", []string{"535 5.7.8 no\r\n"}})
	case 3:
		return (*Session).SMTPWriter, smtp(exchangeLine{"AUTH LOGIN " + b64([]byte(user)) + "\r\n", []string{"334 UGFzc3dvcmQ6\r\n"}},
			exchangeLine{b64([]byte(pass)) + "\r\n", []string{"235 2.7.0 ok\r\n"}})
	case 4:
		return (*Session).IMAPWriter, imap(exchangeLine{"a1 LOGIN " + quoteIMAP(user) + " " + quoteIMAP(pass) + "\r\n", []string{"a1 OK done\r\n"}})
	case 5, 6:
		sync := kind == 5
		var after []string
		if sync {
			after = []string{"+ Ready\r\n"}
		}
		return (*Session).IMAPWriter, imap(exchangeLine{"a1 LOGIN " + quoteIMAP(user) + " " + lit(pass, sync), after},
			exchangeLine{pass + "\r\n", []string{"a1 NO [AUTHENTICATIONFAILED] no\r\n"}})
	case 7:
		// Both as literals: the server reads "user {n}" as one line after
		// the user literal's octets.
		return (*Session).IMAPWriter, imap(exchangeLine{"a1 LOGIN " + lit(user, true), []string{"+ Ready\r\n"}},
			exchangeLine{user + " " + lit(pass, true), []string{"+ Ready\r\n"}},
			exchangeLine{pass + "\r\n", []string{"a1 OK done\r\n"}})
	case 8:
		return (*Session).IMAPWriter, imap(exchangeLine{"a1 AUTHENTICATE PLAIN\r\n", []string{"+ \r\n"}},
			exchangeLine{blob + "\r\n", []string{"a1 OK done\r\n"}})
	default:
		return (*Session).IMAPWriter, imap(exchangeLine{"a1 AUTHENTICATE PLAIN " + blob + "\r\n", []string{"a1 OK done\r\n"}})
	}
}

// FuzzAuthSegmentation cuts the client's side of an AUTH exchange at
// arbitrary points (pipelining included: a cut may hold several lines,
// the server answers each line once it has read all of it) and checks
// that neither the password, nor its base64, nor the base64 of the PLAIN
// message appears in any transcript line when the writer is fed as the
// libraries feed it (io.TeeReader, io.MultiWriter).
func FuzzAuthSegmentation(f *testing.F) {
	f.Add(uint8(0), "alice", "hunter2-pw", []byte{3, 40})
	f.Add(uint8(1), "alice", "hunter2-pw", []byte{12})
	f.Add(uint8(2), "alice", "* OK pass", []byte{0, 7, 5})
	f.Add(uint8(3), "bob", "235 pass", []byte{1, 2, 3})
	f.Add(uint8(4), "alice", `pa* s"s\w`, []byte{24, 1})
	f.Add(uint8(5), "alice", "* BYE x", []byte{20, 0})
	f.Add(uint8(6), "alice", "+ pass", []byte{255})
	f.Add(uint8(7), "al ice", "a2 OK p", []byte{9, 9, 9})
	f.Add(uint8(8), "alice", "hunter2-pw", []byte{30})
	f.Add(uint8(9), "alice", "hunter2-pw", []byte{})
	f.Fuzz(func(t *testing.T, kind uint8, user, pass string, cuts []byte) {
		if strings.ContainsAny(user+pass, "\r\n\x00") || len(pass) > 100 || len(user) > 100 {
			t.Skip()
		}
		// A marked password: nothing but the secret can contain it.
		pass = "Zq" + pass + "qZ"
		mk, ex := authExchange(int(kind)%10, user, pass)
		for _, tee := range []bool{true, false} {
			r := &recorder{}
			w := mk(NewSession(r, "fuzz", nil))
			write := func(dir Direction, b []byte) {
				if tee {
					teeWrite(w, dir, b)
				} else {
					w.Write(b)
				}
			}
			write(Server, []byte(ex.greeting))
			var stream []byte
			var ends []int
			for _, l := range ex.lines {
				stream = append(stream, l.client...)
				ends = append(ends, len(stream))
			}
			sent, answered := 0, 0
			for i := 0; sent < len(stream); i++ {
				n := len(stream) - sent
				if i < len(cuts) {
					n = min(n, int(cuts[i])+1)
				}
				write(Client, stream[sent:sent+n])
				sent += n
				// The server answers every line it has now read whole.
				for answered < len(ends) && ends[answered] <= sent {
					for _, reply := range ex.lines[answered].replies {
						write(Server, []byte(reply))
					}
					answered++
				}
			}
			if !tee {
				// Guessing the direction is a fallback that cannot be
				// exact; it must not panic.
				continue
			}
			for _, line := range r.got {
				for _, secret := range ex.secrets {
					if strings.Contains(line, secret) {
						t.Fatalf("tee=%v: %q in transcript line %q\n%s", tee, secret, line, strings.Join(r.got, "\n"))
					}
				}
			}
		}
	})
}
