package diagnose

import (
	"strings"
	"testing"
)

// TestDescribeSentHidesSecrets checks that the name a delay finding gives
// a command never holds a credential, for every way the probes log in.
func TestDescribeSentHidesSecrets(t *testing.T) {
	const user, pass = "alice@example.test", "Hunter2-s3cret"
	plain := b64([]byte("\x00" + user + "\x00" + pass))
	tests := []struct {
		line       string
		secretSent bool
		prev       string
		want       string
	}{
		{line: "EHLO [127.0.0.1]", want: "EHLO [127.0.0.1]"},
		{line: "AUTH PLAIN " + plain, secretSent: true, want: "AUTH PLAIN"},
		{line: "AUTH LOGIN", prev: "EHLO x", want: "AUTH LOGIN"},
		{line: b64([]byte(user)), prev: "AUTH LOGIN", want: "AUTH LOGIN"},
		{line: b64([]byte(pass)), secretSent: true, prev: "AUTH LOGIN", want: "AUTH LOGIN"},
		{line: "*", prev: "AUTH PLAIN", want: "AUTH PLAIN"},
		{line: "AUTHENTICATE PLAIN " + plain, secretSent: true, want: "AUTHENTICATE PLAIN"},
		{line: `LOGIN "` + user + `" "` + pass + `"`, secretSent: true, want: "LOGIN"},
		{line: "LOGIN {18}", want: "LOGIN"},
		{line: user + " {14}", prev: "LOGIN", want: "LOGIN"},
		{line: pass, secretSent: true, prev: "LOGIN", want: "LOGIN"},
		{line: "USER " + user, want: "USER"},
		{line: "PASS " + pass, secretSent: true, prev: "USER", want: "PASS"},
		{line: "MAIL FROM:<" + user + "> SIZE=100", want: "MAIL FROM:<" + user + "> SIZE=100"},
		{line: "MAIL FROM:<" + user + ">", secretSent: true, want: "MAIL"},
		{line: "QUIT " + pass, secretSent: true, prev: "LOGIN", want: "QUIT"},
		{line: "", prev: "DATA", want: "DATA"},
	}
	for _, tt := range tests {
		got := describeSent(tt.line, tt.secretSent, tt.prev)
		if got != tt.want {
			t.Errorf("describeSent(%q, %v, %q) = %q, want %q", tt.line, tt.secretSent, tt.prev, got, tt.want)
		}
		if strings.Contains(got, pass) || strings.Contains(got, plain) {
			t.Errorf("describeSent(%q) = %q shows the password", tt.line, got)
		}
	}
}
