package settings_test

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/maillab/maillab/settings"
)

// FuzzParse feeds Parse arbitrary bytes. It must never panic; every error
// is a *settings.Error whose position lies inside the input; and whatever
// Parse accepts is valid and survives Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, file := range realFiles(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		validJSON,
		"",
		"null",
		"{\n  \"domian\": \"x\"\n}",
		"{\"services\": {\n \"imap\": {\"host\": \"h\", \"port\": \"143\"}}}",
		`{"accounts": [{"email": 5}]}`,
		svc(`"host": "h", "port": 70000, "security": "starttls"`),
		`{"resolver": "127.0.0.1", "services": {"imap": {"host": "h", "port": 143, "security": "starttls"}}}`,
		`{"client": {"max_tls": "1.4", "auth_mechs": ["PLAIN"]}, "services": {"imaps": {"host": "h", "port": 993, "security": "tls"}}}`,
		validJSON + " {}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := settings.Parse("f.json", data)
		if err != nil {
			var se *settings.Error
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error = %T %v, want *settings.Error", data, err, err)
			}
			lines := bytes.Count(data, []byte{'\n'}) + 1
			if se.Line < 0 || se.Line > lines || se.Column < 0 || (se.Line == 0 && se.Column != 0) {
				t.Fatalf("Parse(%q) error at %d:%d, outside the %d-line input", data, se.Line, se.Column, lines)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse(%q) accepted settings that Validate refuses: %v", data, err)
		}
		out, err := s.Marshal()
		if err != nil {
			t.Fatalf("Marshal(Parse(%q)) = %v", data, err)
		}
		again, err := settings.Parse("f.json", out)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(%q))) = %v\n%s", data, err, out)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("Parse(Marshal(s)) = %+v, want %+v", again, s)
		}
	})
}
