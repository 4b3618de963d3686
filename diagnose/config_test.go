package diagnose

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/maillab/maillab/settings"
)

func TestParseHostPort(t *testing.T) {
	tests := []struct {
		in      string
		host    string
		port    int
		wantErr bool
	}{
		{"mail.example.test", "mail.example.test", 0, false},
		{"mail.example.test:587", "mail.example.test", 587, false},
		{"127.0.0.1:993", "127.0.0.1", 993, false},
		{"[::1]:25", "::1", 25, false},
		{"::1", "::1", 0, false},
		{"mail.example.test:0", "", 0, true},
		{"mail.example.test:99999", "", 0, true},
		{"mail.example.test:smtp", "", 0, true},
		{":25", "", 0, true},
		{"", "", 0, true},
		{"user@mail.example.test", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			host, port, err := ParseHostPort(tt.in)
			if (err != nil) != tt.wantErr || host != tt.host || port != tt.port {
				t.Errorf("ParseHostPort(%q) = %q, %d, %v", tt.in, host, port, err)
			}
		})
	}
}

func TestServiceNameAndSecurity(t *testing.T) {
	tests := []struct {
		proto, sec string
		port       int
		want       string
	}{
		{"smtp", "tls", 465, "submissions"},
		{"smtp", "starttls", 587, "submission"},
		{"smtp", "starttls", 25, "smtp"},
		{"smtp", "none", 2525, "smtp"},
		{"imap", "tls", 993, "imaps"},
		{"imap", "starttls", 143, "imap"},
		{"pop3", "none", 110, "pop3"},
		{"pop3", "tls", 995, "pop3s"},
	}
	for _, tt := range tests {
		if got := ServiceName(tt.proto, tt.sec, tt.port); got != tt.want {
			t.Errorf("ServiceName(%s, %s, %d) = %s, want %s", tt.proto, tt.sec, tt.port, got, tt.want)
		}
	}
	for port, want := range map[int]string{465: "tls", 993: "tls", 995: "tls", 25: "none", 587: "starttls", 143: "starttls", 2525: "starttls"} {
		if got := DefaultSecurity(port); got != want {
			t.Errorf("DefaultSecurity(%d) = %s, want %s", port, got, want)
		}
	}
}

func TestFromSettings(t *testing.T) {
	s, err := settings.Parse("customer.json", []byte(`{
  "domain": "example.test",
  "resolver": "127.0.0.1:5353",
  "ca_file": "/tmp/ca.pem",
  "accounts": [{"email": "alice@example.test", "username": "alice@example.test", "password": "pw"}],
  "services": {
    "imaps": {"host": "mail.example.test", "port": 40993, "security": "tls", "address": "127.0.0.1"},
    "submission": {"host": "mail.example.test", "port": 40587, "security": "starttls"}
  },
  "client": {"max_tls": "1.0", "auth_mechs": ["CRAM-MD5"], "send_to": "bob@elsewhere.test", "message_file": "/tmp/m.eml"}
}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := FromSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Services) != 2 || cfg.Services[0].Name != "submission" || cfg.Services[1].Address != "127.0.0.1" {
		t.Errorf("services = %+v, want submission then imaps", cfg.Services)
	}
	if cfg.ClientMaxTLS != "1.0" || !slices.Equal(cfg.AuthMechs, []string{"CRAM-MD5"}) || cfg.SendTo != "bob@elsewhere.test" || cfg.MessageFile != "/tmp/m.eml" {
		t.Errorf("client options not applied: %+v", cfg)
	}
	if cfg.Resolver != "127.0.0.1:5353" || cfg.CAFile != "/tmp/ca.pem" || cfg.Domain != "example.test" || cfg.Password != "pw" {
		t.Errorf("settings not applied: %+v", cfg)
	}
}

func TestNormalize(t *testing.T) {
	base := func() Config {
		return Config{Email: "alice@example.test", Services: []Service{{Name: "imaps", Host: "mail.example.test"}}}
	}
	c, err := base().normalize()
	if err != nil {
		t.Fatal(err)
	}
	if c.Services[0].Port != 993 || c.Services[0].Security != "tls" || c.ConnectTimeout != DefaultConnectTimeout || c.ReplyTimeout != DefaultReplyTimeout || c.SlowReply != DefaultSlowReply || c.Domain != "example.test" {
		t.Errorf("defaults not filled: %+v", c.Services[0])
	}
	bad := []struct {
		field string
		mod   func(*Config)
	}{
		{"--email", func(c *Config) { c.Email = "not an address" }},
		{"--client-max-tls", func(c *Config) { c.ClientMaxTLS = "1.4" }},
		{"--auth-mech", func(c *Config) { c.AuthMechs = []string{"GSSAPI"} }},
		{"--resolver", func(c *Config) { c.Resolver = "dns.example.test" }},
		{"services", func(c *Config) { c.Services[0].Name = "smtps" }},
		{"services.imaps", func(c *Config) { c.Services[0].Security = "ssl" }},
		{"--message", func(c *Config) { c.MessageFile = "/nonexistent/m.eml" }},
		{"", func(c *Config) { c.Services = nil }},
	}
	for _, b := range bad {
		t.Run(b.field, func(t *testing.T) {
			c := base()
			b.mod(&c)
			_, err := c.normalize()
			var ue *UsageError
			if !errors.As(err, &ue) || ue.Field != b.field {
				t.Errorf("normalize error = %v, want a UsageError for %q", err, b.field)
			}
		})
	}
}

func TestParseAutoconfig(t *testing.T) {
	data, err := os.ReadFile("testdata/autoconfig/example.xml")
	if err != nil {
		t.Fatal(err)
	}
	ac, err := ParseAutoconfig("example.xml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(ac.Incoming) != 2 || len(ac.Outgoing) != 1 || ac.Domains[0] != "example.test" {
		t.Fatalf("parsed %+v", ac)
	}
	cfg := ac.Config("alice@example.test")
	var names []string
	for _, s := range cfg.Services {
		names = append(names, s.Name+":"+s.Host)
	}
	want := []string{"submission:smtp.example.test", "imaps:imap.example.test", "pop3s:pop.example.test"}
	if !slices.Equal(names, want) || cfg.Username != "alice@example.test" || len(cfg.AuthMechs) != 0 {
		t.Errorf("Config = %v user %q mechs %v, want %v", names, cfg.Username, cfg.AuthMechs, want)
	}
	enc := strings.ReplaceAll(string(data), "password-cleartext", "password-encrypted")
	ac, err = ParseAutoconfig("enc.xml", []byte(enc))
	if err != nil {
		t.Fatal(err)
	}
	if got := ac.Config("alice@example.test").AuthMechs; !slices.Equal(got, []string{"CRAM-MD5"}) {
		t.Errorf("password-encrypted gives mechs %v, want CRAM-MD5", got)
	}
}

func TestParseAutoconfigErrors(t *testing.T) {
	tests := []struct {
		name, xml, want string
	}{
		{"empty", "", "bad.xml: empty file"},
		{"not xml", "hello", "bad.xml: no <clientConfig> element"},
		{"unclosed", "<clientConfig>\n<emailProvider>\n<incomingServer type=\"imap\">\n", "bad.xml:4: invalid XML"},
		{"wrong root", "<?xml version=\"1.0\"?>\n<config/>", "bad.xml:2: root element"},
		{"bad port", "<clientConfig><emailProvider>\n<incomingServer type=\"imap\">\n<hostname>h</hostname>\n<port>99x</port>\n</incomingServer></emailProvider></clientConfig>", "bad.xml:4: <port>"},
		{"bad socket type", "<clientConfig><emailProvider>\n<outgoingServer type=\"smtp\"><hostname>h</hostname>\n<socketType>TLS1.3</socketType></outgoingServer></emailProvider></clientConfig>", "bad.xml:3: <socketType>"},
		{"no hostname", "<clientConfig><emailProvider>\n<incomingServer type=\"imap\"><socketType>SSL</socketType></incomingServer></emailProvider></clientConfig>", "bad.xml:2: <incomingServer type=\"imap\"> has no <hostname>"},
		{"no servers", "<clientConfig><emailProvider id=\"x\"/></clientConfig>", "no imap, pop3 or smtp server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAutoconfig("bad.xml", []byte(tt.xml))
			var ae *AutoconfigError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseAutoconfig error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParseAutoconfig(f *testing.F) {
	data, _ := os.ReadFile("testdata/autoconfig/example.xml")
	f.Add(data)
	f.Add([]byte("<clientConfig><emailProvider><incomingServer type=\"imap\"><hostname>h</hostname><socketType>SSL</socketType></incomingServer></emailProvider></clientConfig>"))
	f.Add([]byte("<clientConfig><emailProvider><outgoingServer type=\"smtp\"><port>0</port></outgoingServer></emailProvider></clientConfig>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ac, err := ParseAutoconfig("fuzz.xml", data)
		if err != nil {
			var ae *AutoconfigError
			if !errors.As(err, &ae) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		cfg := ac.Config("a@b.test")
		for _, s := range cfg.Services {
			if s.Host == "" || s.Port < 1 || s.Port > 65535 || s.Protocol() == "" {
				t.Fatalf("bad service %+v", s)
			}
		}
	})
}
