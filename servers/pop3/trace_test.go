package pop3

import (
	"encoding/base64"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maillab/maillab/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMaskCommand(t *testing.T) {
	tests := []struct{ line, want string }{
		{"PASS s3cret pass", "PASS ****"},
		{"pass s3cret", "pass ****"},
		{"PASS", "PASS"},
		{"PASS ", "PASS "},
		{"  PASS\tsecret", "  PASS ****"},
		{"PASSsecret", "PASS ****"},
		{"APOP alice 0123abcd", "APOP ****"},
		{"AUTH", "AUTH"},
		{"AUTH PLAIN", "AUTH PLAIN"},
		{"AUTH PLAIN AGFsaWNlAHNlY3JldA==", "AUTH PLAIN ****"},
		{"auth plain  AGFsaWNlAHNlY3JldA==", "auth plain ****"},
		{"AUTH\tPLAIN\tAGFsaWNl", "AUTH PLAIN ****"},
		{"AUTH AGFsaWNlAHNlY3JldA==", "AUTH ****"},
		{"AUTHPLAIN AGFsaWNl", "AUTH ****"},
		{"USER alice", "USER alice"},
		{"RETR 1", "RETR 1"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			if got := maskCommand(tt.line); got != tt.want {
				t.Errorf("maskCommand(%q) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

// TestTraceNeverSeesCredentials logs in every way the server knows, and
// some broken ways, and checks that no trace line holds the password or
// the Base64 of a SASL response.
func TestTraceNeverSeesCredentials(t *testing.T) {
	const password = "s3cret pass"
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + password))
	be := newTestBackend()
	be.mechanisms = []string{"PLAIN", "XTEST"}
	rec := &recorder{}
	s := newTestServer(be, rec)
	s.AllowInsecureAuth = true
	addr := serve(t, s, nil)

	sessions := [][]string{
		{"C: USER alice", "S: +OK", "C: PASS " + password, "S: +OK Logged in."},
		{"C: USER alice", "S: +OK", "C: PASS wrong " + password, "S: -ERR [AUTH] Authentication failed."},
		{"C: AUTH PLAIN " + plain, "S: +OK Logged in."},
		{"C: AUTH PLAIN", "S: + ", "C: " + plain, "S: +OK Logged in."},
		{"C: AUTH PLAIN", "S: + ", "C: *", "S: -ERR Authentication cancelled."},
		{"C: AUTH XTEST", "S: + c2VuZCB0b2tlbg==", "C: " + base64.StdEncoding.EncodeToString([]byte("token:"+password)), "S: +OK Logged in."},
		{"C: pass\t" + password, "S: -ERR Unknown command."},
		{"C:  PASS " + password, "S: -ERR Unknown command."},
		{"C: AUTH\tPLAIN\t" + plain, "S: -ERR Unknown command."},
	}
	for _, sc := range sessions {
		c := dial(t, addr)
		c.expect("+OK mail.example.test POP3 server ready")
		c.run(append(sc, "C: QUIT", "S~ \\+OK Logging out.*", "EOF"))
	}
	waitLogout(t, be, len(sessions))
	lines := rec.traceLines()
	if len(lines) < 3*len(sessions) {
		t.Fatalf("only %d trace lines: %q", len(lines), lines)
	}
	for _, l := range lines {
		if strings.Contains(l, password) || strings.Contains(l, plain) || strings.Contains(l, "dG9rZW4") {
			t.Errorf("trace line leaks a credential: %q", l)
		}
	}
}

// TestTraceGolden compares the transcript of a whole session with
// testdata/session.golden; run with -update to rewrite it.
func TestTraceGolden(t *testing.T) {
	be := newTestBackend()
	rec := &recorder{}
	s := newTestServer(be, rec)
	s.AllowInsecureAuth = true
	c := dial(t, serve(t, s, nil))
	c.expect("+OK mail.example.test POP3 server ready")
	c.run([]string{
		"C: CAPA", "S~ \\+OK.*", "S: TOP", "S: UIDL", "S: RESP-CODES", "S: AUTH-RESP-CODE", "S: PIPELINING", "S: USER", "S: SASL PLAIN", "S: IMPLEMENTATION maillab-test", "S: .",
		"C: USER alice", "S: +OK", "C: PASS wrong", "S~ -ERR.*",
		"C: AUTH PLAIN", "S: + ", "C: AGFsaWNlAHMzY3JldCBwYXNz", "S: +OK Logged in.",
		"C: STAT", "S~ \\+OK.*",
		"C: LIST", "S~ \\+OK.*", "S~ 1 .*", "S~ 2 .*", "S~ 3 .*", "S: .",
		"C: UIDL 2", "S: +OK 2 uid-2",
		"C: TOP 1 1", "S: +OK", "S~ From.*", "S~ Subject.*", "S: ", "S: Hello", "S: .",
		"C: RETR 2", "S~ \\+OK.*", "S: Subject: two", "S: ", "S: line1", "S: line2", "S: line3", "S: .",
		"C: DELE 2", "S~ \\+OK.*",
		"C: XYZZY", "S: -ERR Unknown command.",
		"C: QUIT", "S~ \\+OK.*", "EOF",
	})
	waitLogout(t, be, 1)
	got := strings.Join(rec.traceLines(), "\n") + "\n"
	golden.Check(t, filepath.Join("testdata", "session.golden"), []byte(got), *update)
}
