package diagnose

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/maillab/maillab/settings"
)

// Autoconfig is a parsed Mozilla autoconfig file (the clientConfig XML
// Thunderbird reads from autoconfig.DOMAIN/mail/config-v1.1.xml).
type Autoconfig struct {
	// ProviderID is the emailProvider id attribute.
	ProviderID string
	// Domains are the emailProvider's domain elements.
	Domains []string
	// Incoming and Outgoing are the servers in file order.
	Incoming, Outgoing []AutoconfigServer
}

// AutoconfigServer is one incomingServer or outgoingServer element.
type AutoconfigServer struct {
	// Type is imap, pop3 or smtp.
	Type     string
	Hostname string
	Port     int
	// Security is the socketType as a settings security mode: plain →
	// none, STARTTLS → starttls, SSL → tls.
	Security string
	// Username may contain the placeholders %EMAILADDRESS%,
	// %EMAILLOCALPART% and %EMAILDOMAIN%.
	Username string
	// Authentication lists the authentication elements, e.g.
	// password-cleartext, password-encrypted, OAuth2.
	Authentication []string
	// Line is the line of the element in the file.
	Line int
}

// AutoconfigError is a problem in an autoconfig file, located by line.
type AutoconfigError struct {
	File string
	Line int
	Msg  string
}

// Error returns "file:line: message".
func (e *AutoconfigError) Error() string {
	file := e.File
	if file == "" {
		file = "autoconfig"
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", file, e.Line, e.Msg)
	}
	return file + ": " + e.Msg
}

// ParseAutoconfig parses Mozilla clientConfig XML; file names the source in
// errors, which carry the line of the problem.
func ParseAutoconfig(file string, data []byte) (*Autoconfig, error) {
	fail := func(line int, format string, args ...any) error {
		return &AutoconfigError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fail(0, "empty file: expected a clientConfig XML document")
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	// Autoconfig files are UTF-8; accept a declared ISO-8859-1/ASCII too.
	dec.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "us-ascii", "iso-8859-1", "latin1":
			return input, nil
		}
		return nil, fmt.Errorf("unsupported charset %q", charset)
	}
	ac := &Autoconfig{}
	var stack []string
	var cur *AutoconfigServer
	var text strings.Builder
	fieldLine := 0
	sawRoot := false
	for {
		line, _ := dec.InputPos()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, fail(se.Line, "invalid XML: %s", se.Msg)
			}
			return nil, fail(line, "invalid XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if len(stack) == 0 {
				if name != "clientConfig" {
					return nil, fail(line, "root element is <%s>, want <clientConfig>", name)
				}
				sawRoot = true
			}
			stack = append(stack, name)
			text.Reset()
			fieldLine, _ = dec.InputPos()
			parent := ""
			if len(stack) >= 2 {
				parent = stack[len(stack)-2]
			}
			switch {
			case parent == "clientConfig" && name == "emailProvider":
				for _, a := range t.Attr {
					if a.Name.Local == "id" {
						ac.ProviderID = a.Value
					}
				}
			case parent == "emailProvider" && (name == "incomingServer" || name == "outgoingServer"):
				l, _ := dec.InputPos()
				cur = &AutoconfigServer{Line: l}
				for _, a := range t.Attr {
					if a.Name.Local == "type" {
						cur.Type = strings.ToLower(a.Value)
					}
				}
			}
		case xml.CharData:
			if text.Len() < 4096 {
				text.Write(t)
			}
		case xml.EndElement:
			name := t.Name.Local
			value := strings.TrimSpace(text.String())
			text.Reset()
			parent := ""
			if len(stack) >= 2 {
				parent = stack[len(stack)-2]
			}
			stack = stack[:len(stack)-1]
			switch {
			case parent == "emailProvider" && name == "domain":
				ac.Domains = append(ac.Domains, strings.ToLower(value))
			case cur != nil && (parent == "incomingServer" || parent == "outgoingServer"):
				switch name {
				case "hostname":
					cur.Hostname = value
				case "port":
					n, err := strconv.Atoi(value)
					if err != nil || n < 1 || n > 65535 {
						return nil, fail(fieldLine, "<port> %q is not a port number 1-65535", value)
					}
					cur.Port = n
				case "socketType":
					switch strings.ToUpper(value) {
					case "PLAIN":
						cur.Security = settings.SecurityNone
					case "STARTTLS":
						cur.Security = settings.SecurityStartTLS
					case "SSL", "TLS":
						cur.Security = settings.SecurityTLS
					default:
						return nil, fail(fieldLine, "<socketType> %q is not plain, STARTTLS or SSL", value)
					}
				case "username":
					cur.Username = value
				case "authentication":
					cur.Authentication = append(cur.Authentication, value)
				}
			case cur != nil && (name == "incomingServer" || name == "outgoingServer"):
				if err := finishServer(cur, name); err != nil {
					return nil, fail(cur.Line, "%v", err)
				}
				switch {
				case name == "outgoingServer":
					ac.Outgoing = append(ac.Outgoing, *cur)
				case cur.Type == "imap" || cur.Type == "pop3":
					ac.Incoming = append(ac.Incoming, *cur)
				}
				cur = nil
			}
		}
	}
	if !sawRoot {
		return nil, fail(0, "no <clientConfig> element")
	}
	if len(ac.Incoming) == 0 && len(ac.Outgoing) == 0 {
		return nil, fail(0, "no imap, pop3 or smtp server in <emailProvider>")
	}
	return ac, nil
}

func finishServer(s *AutoconfigServer, element string) error {
	switch {
	case element == "outgoingServer" && s.Type != "smtp":
		return fmt.Errorf("<outgoingServer> type %q, want smtp", s.Type)
	case element == "incomingServer" && s.Type != "imap" && s.Type != "pop3":
		// Thunderbird also knows "exchange" and "ews"; not ours to probe.
		return nil
	case s.Hostname == "":
		return fmt.Errorf("<%s type=%q> has no <hostname>", element, s.Type)
	case s.Security == "":
		return fmt.Errorf("<%s type=%q> has no <socketType>", element, s.Type)
	}
	if s.Port == 0 {
		s.Port = settings.StandardPort(s.Type, s.Security)
	}
	return nil
}

// Config returns the diagnoser configuration for the account email: the
// first server of each service name, the user name with its placeholders
// filled in, and CRAM-MD5 as the only mechanism when every chosen server
// asks for password-encrypted. Credentials other than the user name are the
// caller's.
func (a *Autoconfig) Config(email string) Config {
	cfg := Config{Email: email}
	if email == "" && len(a.Domains) > 0 {
		cfg.Domain = a.Domains[0]
	}
	local, domain, _ := strings.Cut(email, "@")
	expand := func(s string) string {
		r := strings.NewReplacer("%EMAILADDRESS%", email, "%EMAILLOCALPART%", local, "%EMAILDOMAIN%", domain)
		return r.Replace(s)
	}
	encryptedOnly := true
	add := func(s AutoconfigServer) {
		name := ServiceName(s.Type, s.Security, s.Port)
		if slices.ContainsFunc(cfg.Services, func(x Service) bool { return x.Name == name }) {
			return
		}
		cfg.Services = append(cfg.Services, Service{Name: name, Host: s.Hostname, Port: s.Port, Security: s.Security})
		if cfg.Username == "" && s.Username != "" && email != "" {
			cfg.Username = expand(s.Username)
		}
		if !slices.Equal(s.Authentication, []string{"password-encrypted"}) {
			encryptedOnly = false
		}
	}
	for _, s := range a.Outgoing {
		add(s)
	}
	for _, s := range a.Incoming {
		add(s)
	}
	if encryptedOnly && len(cfg.Services) > 0 {
		cfg.AuthMechs = []string{"CRAM-MD5"}
	}
	// Report order is settings.Services order.
	slices.SortStableFunc(cfg.Services, func(x, y Service) int { return serviceIndex(x.Name) - serviceIndex(y.Name) })
	return cfg
}

func serviceIndex(name string) int {
	for i, s := range settings.Services {
		if s.Name == name {
			return i
		}
	}
	return len(settings.Services)
}
