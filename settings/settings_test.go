package settings_test

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/maillab/maillab/internal/golden"
	"github.com/maillab/maillab/settings"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// validJSON is the smallest settings file Parse accepts.
const validJSON = `{"services": {"imap": {"host": "mail.example.test", "port": 143, "security": "starttls"}}}`

// realFiles are settings files as the lab and the testcontainers module
// write them.
func realFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.json")
	}
	return files
}

func TestParseRealFiles(t *testing.T) {
	for _, file := range realFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			s, err := settings.Parse(file, data)
			if err != nil {
				t.Fatalf("Parse(%s) = %v, want no error", file, err)
			}
			if s.Domain != "example.test" {
				t.Errorf("Parse(%s).Domain = %q, want example.test", file, s.Domain)
			}
			if got := s.Account0().Email; got != "alice@example.test" {
				t.Errorf("Parse(%s).Account0().Email = %q, want alice@example.test", file, got)
			}
			for name, svc := range s.Services {
				info, ok := settings.LookupService(name)
				if !ok {
					t.Errorf("Parse(%s) accepted unknown service %q", file, name)
					continue
				}
				if svc.Security != info.Security {
					t.Errorf("Parse(%s).Services[%s].Security = %q, want %q", file, name, svc.Security, info.Security)
				}
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "customer-outdated-client.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := settings.Parse("customer.json", data)
	if err != nil {
		t.Fatal(err)
	}
	want := &settings.Settings{
		Domain:   "example.test",
		Resolver: "127.0.0.1:40053",
		CAFile:   "/tmp/maillab-4242/ca.pem",
		Accounts: []settings.Account{{Email: "alice@example.test", Username: "alice@example.test", Password: "Zq3vLm9TxKpa"}},
		Services: map[string]settings.Service{
			"imaps":       {Host: "mail.example.test", Address: "::1", Port: 40993, Security: settings.SecurityTLS},
			"submissions": {Host: "mail.example.test", Address: "127.0.0.1", Port: 40465, Security: settings.SecurityTLS},
		},
		Client:            &settings.Client{MaxTLS: "1.0", AuthMechs: []string{"PLAIN", "LOGIN"}, SendTo: "bob@example.test"},
		ExpectedRootCause: "TLS_PROTOCOL_TOO_OLD",
		Scenario:          "outdated-client",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(customer-outdated-client.json) =\n%+v\nwant\n%+v", got, want)
	}
}

// svc returns a settings document with one service "imap" whose fields are
// the given JSON members.
func svc(members string) string {
	return `{"services": {"imap": {` + members + `}}}`
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		line  int    // 0: no position expected
		col   int    // 0: not checked
		field string // JSON path in the error
		msg   []string
		bug   string
	}{
		{name: "empty file", in: "", msg: []string{"empty file"}},
		{name: "only whitespace", in: " \n\t\n", msg: []string{"empty file"}},
		{name: "syntax error", in: "{\n  \"domain\": \"x\",\n}", line: 3, msg: []string{"invalid JSON"}},
		{name: "truncated", in: "{\n  \"domain\": \"x\"", line: 2, col: 16, msg: []string{"unexpected end of file"}},
		{name: "not an object", in: `["imap"]`, line: 1, msg: []string{"expected an object, found a list"}},
		{name: "wrong type", in: "{\n  \"domain\": 5\n}", line: 2, field: "domain", msg: []string{"expected a string, found a number", "number"}},
		{name: "wrong type inside a service", in: "{\"services\": {\n \"imap\": {\"host\": \"h\", \"port\": \"143\"}}}", line: 2,
			field: "services.imap.port", msg: []string{"expected a whole number, found a string", "string"}},
		{name: "wrong type inside an account", in: `{"accounts": [{"email": 5}]}`, line: 1,
			field: "accounts[0].email", msg: []string{"expected a string, found a number"}},
		{name: "unknown top-level field", in: "{\n  \"domian\": \"x\"\n}", line: 2, col: 3, field: "domian", msg: []string{`unknown field "domian"`, "valid:"}},
		{name: "unknown field in a service", in: svc(`"host": "h", "port": 143, "security": "starttls", "tls": true`), line: 1,
			field: "services.imap.tls", msg: []string{`unknown field "tls"`, "address, host, port, security"}},
		{name: "data after the object", in: validJSON + "\n{}", line: 2, col: 1, msg: []string{"unexpected data after the settings object"}},
		{name: "closing brace after the object", in: validJSON + "\n}", line: 2, msg: []string{"unexpected data after the settings object"}},
		{name: "null", in: "null", field: "services", msg: []string{"no services", "smtp, submission, submissions, imap, imaps, pop3, pop3s"}},
		{name: "no services", in: "{\n  \"domain\": \"example.test\",\n  \"services\": {}\n}", line: 3, col: 3, field: "services",
			msg: []string{"no services"}},
		{name: "unknown service", in: "{\"services\": {\n  \"smtps\": {\"host\": \"h\", \"port\": 465, \"security\": \"tls\"}}}", line: 2, col: 3,
			field: "services.smtps", msg: []string{`unknown service "smtps"`, "valid: smtp, submission, submissions, imap, imaps, pop3, pop3s"}},
		{name: "service name ending in a bracket", in: `{"services": {"imap]": {"host": "h", "port": 143, "security": "starttls"}}}`, line: 1,
			field: "services.imap]", msg: []string{`unknown service "imap]"`}},
		// A missing key is located at the object that lacks it.
		{name: "missing host", in: svc(`"port": 143, "security": "starttls"`), line: 1, field: "services.imap.host", msg: []string{"missing host"}},
		{name: "blank host", in: svc(`"host": " ", "port": 143, "security": "starttls"`), line: 1, col: 24, field: "services.imap.host", msg: []string{"missing host"}},
		{name: "missing host located at its own service",
			in:   "{\"services\": {\n  \"imap\": {\"port\": 143, \"security\": \"starttls\"},\n  \"smtp\": {\"host\": \"h\", \"port\": 25, \"security\": \"none\"}\n}}",
			line: 2, field: "services.imap.host", msg: []string{"missing host"}},
		{name: "port zero", in: svc(`"host": "h", "port": 0, "security": "starttls"`), line: 1, field: "services.imap.port", msg: []string{"port 0 out of range 1-65535"}},
		{name: "port too large", in: svc(`"host": "h", "port": 65536, "security": "starttls"`), line: 1, field: "services.imap.port", msg: []string{"out of range"}},
		{name: "unknown security", in: svc(`"host": "h", "port": 143, "security": "ssl"`), line: 1, field: "services.imap.security",
			msg: []string{`unknown security "ssl"`, "valid: none, starttls, tls"}},
		{name: "security is case-sensitive", in: svc(`"host": "h", "port": 143, "security": "STARTTLS"`), line: 1, field: "services.imap.security",
			msg: []string{"valid: none, starttls, tls"}},
		{name: "address not an IP", in: svc(`"host": "h", "address": "mail.example.test", "port": 143, "security": "starttls"`), line: 1,
			field: "services.imap.address", msg: []string{"is not an IP address"}},
		{name: "resolver without port", in: `{"resolver": "127.0.0.1", ` + svc(`"host": "h", "port": 143, "security": "starttls"`)[1:], line: 1, col: 2,
			field: "resolver", msg: []string{"is not host:port"}},
		{name: "resolver with empty port", in: `{"resolver": "127.0.0.1:", ` + svc(`"host": "h", "port": 143, "security": "starttls"`)[1:], line: 1,
			field: "resolver", msg: []string{"is not host:port"}},
		{name: "account without names", in: `{"accounts": [{"email": "a@example.test"}, {"password": "x"}], ` + svc(`"host": "h", "port": 143, "security": "starttls"`)[1:],
			line: 1, field: "accounts[1]", msg: []string{"neither email nor username"}},
		{name: "unknown TLS version", in: `{"client": {"max_tls": "1.4"}, ` + svc(`"host": "h", "port": 143, "security": "starttls"`)[1:], line: 1, col: 13,
			field: "client.max_tls", msg: []string{`unknown TLS version "1.4"`, "valid: 1.0, 1.1, 1.2, 1.3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bug != "" {
				t.Skip("bug: " + tt.bug)
			}
			s, err := settings.Parse("mail.json", []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.in, s)
			}
			var se *settings.Error
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error = %T %v, want *settings.Error", tt.in, err, err)
			}
			if se.File != "mail.json" {
				t.Errorf("Parse(%q) error File = %q, want mail.json", tt.in, se.File)
			}
			if se.Line != tt.line {
				t.Errorf("Parse(%q) error Line = %d, want %d (%v)", tt.in, se.Line, tt.line, err)
			}
			if tt.col != 0 && se.Column != tt.col {
				t.Errorf("Parse(%q) error Column = %d, want %d (%v)", tt.in, se.Column, tt.col, err)
			}
			if tt.line == 0 && se.Column != 0 {
				t.Errorf("Parse(%q) error Column = %d without a line, want 0", tt.in, se.Column)
			}
			if se.Field != tt.field {
				t.Errorf("Parse(%q) error Field = %q, want %q", tt.in, se.Field, tt.field)
			}
			for _, m := range tt.msg {
				if !strings.Contains(se.Msg, m) {
					t.Errorf("Parse(%q) error Msg = %q, want it to contain %q", tt.in, se.Msg, m)
				}
			}
		})
	}
}

// TestParseErrorColumn pins where a syntax error points: at the offending
// character, as compilers and editors do.
func TestParseErrorColumn(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
		col  int
		bug  string
	}{
		{name: "end of input", in: "{\n  \"domain\": \"x\"", line: 2, col: 16},
		{name: "trailing comma", in: `{"domain": "x",}`, line: 1, col: 16},
		{name: "missing colon", in: "{\n\"domain\" 1}", line: 2, col: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bug != "" {
				t.Skip("bug: " + tt.bug)
			}
			_, err := settings.Parse("f.json", []byte(tt.in))
			var se *settings.Error
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) = %v, want *settings.Error", tt.in, err)
			}
			if se.Line != tt.line || se.Column != tt.col {
				t.Errorf("Parse(%q) error at %d:%d, want %d:%d (%v)", tt.in, se.Line, se.Column, tt.line, tt.col, err)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  settings.Error
		want string
	}{
		{"everything", settings.Error{File: "a.json", Line: 3, Column: 7, Field: "services.imap.port", Msg: "port 0 out of range 1-65535"},
			"a.json:3:7: services.imap.port: port 0 out of range 1-65535"},
		{"no column", settings.Error{File: "a.json", Line: 3, Msg: "m"}, "a.json:3: m"},
		{"column without line", settings.Error{File: "a.json", Column: 7, Msg: "m"}, "a.json: m"},
		{"in memory", settings.Error{Field: "services", Msg: "no services"}, "settings: services: no services"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("(%+v).Error() = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(validJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("{\n  \"services\": 1\n}"), 0o600); err != nil {
		t.Fatal(err)
	}

	if s, err := settings.Load(good); err != nil || s.Services["imap"].Port != 143 {
		t.Errorf("Load(good) = %+v, %v, want the imap service on port 143", s, err)
	}

	_, err := settings.Load(bad)
	var se *settings.Error
	if !errors.As(err, &se) || se.File != bad || se.Line != 2 {
		t.Errorf("Load(bad) = %v, want a *settings.Error in %s at line 2", err, bad)
	}

	_, err = settings.Load(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

// sample is a settings value with every field set.
func sample() *settings.Settings {
	return &settings.Settings{
		Domain:   "example.test",
		Resolver: "127.0.0.1:5353",
		CAFile:   "/tmp/lab/ca.pem",
		Accounts: []settings.Account{
			{Email: "alice@example.test", Username: "alice", Password: "s3cret \"quoted\""},
			{Email: "bob@example.test", Username: "bob", Password: "hunter2"},
		},
		Services: map[string]settings.Service{
			"submission": {Host: "mail.example.test", Address: "127.0.0.1", Port: 2587, Security: settings.SecurityStartTLS},
			"imaps":      {Host: "mail.example.test", Port: 2993, Security: settings.SecurityTLS},
			"pop3":       {Host: "pop.example.test", Address: "::1", Port: 2110, Security: settings.SecurityNone},
		},
		Client:            &settings.Client{MaxTLS: "1.2", AuthMechs: []string{"XOAUTH2"}, SendTo: "carol@example.test", MessageFile: "/tmp/lab/m.eml"},
		ExpectedRootCause: "AUTH_BASIC_DISABLED",
		Scenario:          "basic-auth-disabled",
	}
}

func TestMarshalGolden(t *testing.T) {
	got, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "marshal.golden"), got, *update)
}

func TestWriteRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		s    *settings.Settings
	}{
		{"every field", sample()},
		{"minimal", &settings.Settings{Services: map[string]settings.Service{"smtp": {Host: "h", Port: 25, Security: settings.SecurityNone}}}},
		{"empty client", &settings.Settings{Services: map[string]settings.Service{"imaps": {Host: "h", Port: 993, Security: settings.SecurityTLS}}, Client: &settings.Client{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "settings.json")
			// An older file must be replaced, not appended to.
			if err := os.WriteFile(path, []byte(strings.Repeat("old ", 1000)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := tt.s.Write(path); err != nil {
				t.Fatalf("Write(%s) = %v", path, err)
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if mode := info.Mode().Perm(); mode != 0o600 {
				t.Errorf("Write(%s): mode %v, want 0600 (the file holds passwords)", path, mode)
			}
			got, err := settings.Load(path)
			if err != nil {
				t.Fatalf("Load(Write(%+v)) = %v", tt.s, err)
			}
			if !reflect.DeepEqual(got, tt.s) {
				t.Errorf("Load(Write(s)) =\n%+v\nwant\n%+v", got, tt.s)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("Write left %v in the directory, want only settings.json", names)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "dir", "settings.json")
	if err := sample().Write(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Write(%s) = %v, want fs.ErrNotExist", missing, err)
	}
}

func TestValidate(t *testing.T) {
	if err := sample().Validate(); err != nil {
		t.Errorf("sample().Validate() = %v, want nil", err)
	}
	s := sample()
	s.Services["imaps"] = settings.Service{Host: "h", Port: 993, Security: "implicit"}
	var se *settings.Error
	if err := s.Validate(); !errors.As(err, &se) || se.Field != "services.imaps.security" || se.Line != 0 || se.File != "" {
		t.Errorf("Validate(security implicit) = %#v, want a *settings.Error on services.imaps.security without position", err)
	}
	if err := (&settings.Settings{}).Validate(); !errors.As(err, &se) || se.Field != "services" {
		t.Errorf("(&Settings{}).Validate() = %v, want an error on services", err)
	}
}

func TestClone(t *testing.T) {
	orig := sample()
	c := orig.Clone()
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("Clone() = %+v, want %+v", c, orig)
	}
	c.Accounts[0].Password = "changed"
	c.Services["imaps"] = settings.Service{Host: "other"}
	delete(c.Services, "pop3")
	c.Client.AuthMechs[0] = "PLAIN"
	c.Client.MaxTLS = "1.3"
	if !reflect.DeepEqual(orig, sample()) {
		t.Errorf("changing a Clone() changed the original: %+v", orig)
	}
	noClient := &settings.Settings{Domain: "x"}
	if c := noClient.Clone(); c.Client != nil || c.Domain != "x" {
		t.Errorf("Clone() of settings without client = %+v, want Client nil and Domain x", c)
	}
}

func TestServices(t *testing.T) {
	tests := []struct {
		protocol, security string
		want               int
	}{
		{settings.ProtocolSMTP, settings.SecurityNone, 25},
		{settings.ProtocolSMTP, settings.SecurityStartTLS, 587},
		{settings.ProtocolSMTP, settings.SecurityTLS, 465},
		{settings.ProtocolIMAP, settings.SecurityNone, 143},
		{settings.ProtocolIMAP, settings.SecurityStartTLS, 143},
		{settings.ProtocolIMAP, settings.SecurityTLS, 993},
		{settings.ProtocolPOP3, settings.SecurityStartTLS, 110},
		{settings.ProtocolPOP3, settings.SecurityTLS, 995},
		{"ldap", settings.SecurityTLS, 0},
	}
	for _, tt := range tests {
		t.Run(tt.protocol+"/"+tt.security, func(t *testing.T) {
			if got := settings.StandardPort(tt.protocol, tt.security); got != tt.want {
				t.Errorf("StandardPort(%s, %s) = %d, want %d", tt.protocol, tt.security, got, tt.want)
			}
		})
	}

	// Every well-known service's port agrees with StandardPort.
	for _, info := range settings.Services {
		if got := settings.StandardPort(info.Protocol, info.Security); got != info.StandardPort {
			t.Errorf("StandardPort(%s, %s) = %d, want %d as listed for %s", info.Protocol, info.Security, got, info.StandardPort, info.Name)
		}
		if got, ok := settings.LookupService(info.Name); !ok || got != info {
			t.Errorf("LookupService(%s) = %+v, %v, want %+v", info.Name, got, ok, info)
		}
	}
	if _, ok := settings.LookupService("IMAP"); ok {
		t.Errorf("LookupService(IMAP) found a service; names are lower case")
	}
	want := []string{"smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s"}
	if got := settings.ServiceNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("ServiceNames() = %v, want %v", got, want)
	}
	if got, want := sample().SortedServiceNames(), []string{"submission", "imaps", "pop3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SortedServiceNames() = %v, want %v", got, want)
	}
}

func TestAccount0(t *testing.T) {
	if got := (&settings.Settings{}).Account0(); got != (settings.Account{}) {
		t.Errorf("Account0() of no accounts = %+v, want the zero Account", got)
	}
	if got := sample().Account0(); got.Username != "alice" {
		t.Errorf("Account0() = %+v, want alice", got)
	}
}
