package pop3

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line    string
		name    string
		args    []string
		rest    string
		wantErr error
	}{
		{line: "STAT", name: "STAT"},
		{line: "list 1", name: "LIST", args: []string{"1"}, rest: "1"},
		{line: "TOP 1 10", name: "TOP", args: []string{"1", "10"}, rest: "1 10"},
		{line: "PASS my secret  pass", name: "PASS", args: []string{"my", "secret", "pass"}, rest: "my secret  pass"},
		{line: "PASS pässwörd", name: "PASS", args: []string{"pässwörd"}, rest: "pässwörd"},
		{line: "NOOP ", name: "NOOP", rest: ""},
		{line: "", wantErr: errEmptyCommand},
		{line: "NO\tOP", wantErr: errControlChar},
		{line: "PASS a\x00b", wantErr: errControlChar},
		{line: "STAT\x7f", wantErr: errControlChar},
		{line: "AB", wantErr: errInvalidKeyword},
		{line: "RETRIEVE 1", wantErr: errInvalidKeyword},
		{line: " STAT", wantErr: errInvalidKeyword},
		{line: "ÜSER a", wantErr: errInvalidKeyword},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			cmd, err := parseCommand([]byte(tt.line))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("parseCommand(%q) error = %v, want %v", tt.line, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if cmd.name != tt.name || !slices.Equal(cmd.args, tt.args) || cmd.rest != tt.rest {
				t.Errorf("parseCommand(%q) = %q %q %q, want %q %q %q", tt.line, cmd.name, cmd.args, cmd.rest, tt.name, tt.args, tt.rest)
			}
		})
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in     string
		n      int
		ok     bool
		hasErr bool
	}{
		{"1", 1, true, false},
		{"007", 7, true, false},
		{"0", 0, true, false},
		{"2147483647", 2147483647, true, false},
		{"2147483648", 0, false, false},
		{"", 0, false, true},
		{"-1", 0, false, true},
		{"+1", 0, false, true},
		{"1e3", 0, false, true},
		{strings.Repeat("9", 65), 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, ok, err := parseNumber(tt.in)
			if n != tt.n || ok != tt.ok || (err != nil) != tt.hasErr {
				t.Errorf("parseNumber(%q) = %d, %v, %v; want %d, %v, error %v", tt.in, n, ok, err, tt.n, tt.ok, tt.hasErr)
			}
		})
	}
}

func TestValidUID(t *testing.T) {
	tests := []struct {
		uid  string
		want bool
	}{
		{"whqtswO00WBw418f9t5JxYwZ", true},
		{"!", true},
		{"~", true},
		{strings.Repeat("x", 70), true},
		{strings.Repeat("x", 71), false},
		{"", false},
		{"a b", false},
		{"a\x7f", false},
		{"ü", false},
	}
	for _, tt := range tests {
		t.Run(tt.uid, func(t *testing.T) {
			if got := validUID(tt.uid); got != tt.want {
				t.Errorf("validUID(%q) = %v, want %v", tt.uid, got, tt.want)
			}
		})
	}
}

func TestDecodeSASL(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"", "", false},
		{"AGFsaWNlAHNlY3JldA==", "\x00alice\x00secret", false},
		{"AAA=BBB", "", true},
		{"=AAA", "", true},
		{"QQ", "", true},   // padding is required
		{"QR==", "", true}, // non-zero trailing bits: strict
		{"QQ==\r", "", true},
		{"a b=", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := decodeSASL(tt.in)
			if (err != nil) != tt.wantErr || (err == nil && (got == nil || string(got) != tt.want)) {
				t.Errorf("decodeSASL(%q) = %q (nil %v), %v; want %q, error %v", tt.in, got, got == nil, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestErrorReplyText(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{ErrAuthFailed, "[AUTH] Authentication failed."},
		{&Error{Message: "No such message."}, "No such message."},
		{&Error{Code: CodeSysTemp}, "[SYS/TEMP]"},
		{&Error{Code: "IN-USE]\r\nX", Message: "locked\r\n+OK fake"}, "[IN-USEX] locked  +OK fake"},
		{&Error{Message: strings.Repeat("x", 1000)}, strings.Repeat("x", 462)},
	}
	for _, tt := range tests {
		t.Run(tt.want[:min(len(tt.want), 20)], func(t *testing.T) {
			if got := tt.err.replyText(); got != tt.want {
				t.Errorf("replyText() = %q, want %q", got, tt.want)
			}
			if len("-ERR "+tt.err.replyText()+"\r\n") > maxReplyLine {
				t.Errorf("reply longer than %d octets", maxReplyLine)
			}
		})
	}
}

// FuzzParseCommand checks the command parser on arbitrary lines: it never
// panics, accepts only what RFC 2449 §3 allows, and the masking of
// credentials holds for every PASS and AUTH line it accepts.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		"USER alice", "PASS s3cret pass", "STAT", "LIST", "LIST 1", "RETR 1", "TOP 1 10", "DELE 2",
		"UIDL", "NOOP", "RSET", "QUIT", "CAPA", "STLS", "AUTH", "AUTH PLAIN", "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
		"AUTH XOAUTH2 dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2tlbgEB", "APOP mrose c4c9334bac560ecc979e58001b3e22fb",
		"", " ", "NO\tOP", "PASS \x00", "pass  two  spaces ", "LIST 99999999999999999999",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		cmd, err := parseCommand(line)
		masked := maskCommand(string(line))
		if err != nil {
			return
		}
		if len(cmd.name) < 3 || len(cmd.name) > 4 || strings.ToUpper(cmd.name) != cmd.name {
			t.Fatalf("parseCommand(%q) keyword %q", line, cmd.name)
		}
		for _, a := range cmd.args {
			if a == "" || strings.Contains(a, " ") {
				t.Fatalf("parseCommand(%q) argument %q", line, a)
			}
		}
		switch cmd.name {
		case "PASS", "APOP":
			if cmd.rest != "" && strings.TrimSpace(cmd.rest) != "" && masked != string(line[:4])+" ****" {
				t.Fatalf("maskCommand(%q) = %q, leaks the %s argument", line, masked, cmd.name)
			}
		case "AUTH":
			// The mechanism stays visible only when it is a valid name.
			if len(cmd.args) >= 2 && masked != string(line[:4])+" "+cmd.args[0]+" ****" && masked != string(line[:4])+" ****" {
				t.Fatalf("maskCommand(%q) = %q, leaks the initial response", line, masked)
			}
		}
	})
}
