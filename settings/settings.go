// Package settings defines the public settings JSON of maillab: what a mail
// client needs to reach a lab (or any mail provider), as written by
// `maillab lab --settings-out` and `maillab scenario --settings-out`, and as
// read by `maillab diagnose --settings` and external diagnosers.
//
// The package holds data and validation only; it imports nothing of the lab,
// so a diagnoser that must work against any server can depend on it.
package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Security modes of a service: how a client protects the connection.
const (
	// SecurityNone is a plaintext connection that never upgrades.
	SecurityNone = "none"
	// SecurityStartTLS is a plaintext connection upgraded with STARTTLS
	// (RFC 3207), STARTTLS (RFC 3501 §6.2.1) or STLS (RFC 2595 §4).
	SecurityStartTLS = "starttls"
	// SecurityTLS is implicit TLS from the first byte (RFC 8314).
	SecurityTLS = "tls"
)

// SecurityModes lists the valid values of Service.Security.
var SecurityModes = []string{SecurityNone, SecurityStartTLS, SecurityTLS}

// Protocols spoken by services.
const (
	ProtocolSMTP = "smtp"
	ProtocolIMAP = "imap"
	ProtocolPOP3 = "pop3"
)

// ServiceInfo describes one well-known service name of the settings JSON.
type ServiceInfo struct {
	// Name is the key in the "services" object, e.g. "submissions".
	Name string
	// Protocol is one of ProtocolSMTP, ProtocolIMAP, ProtocolPOP3.
	Protocol string
	// Security is the service's usual security mode.
	Security string
	// StandardPort is the IANA port for the service.
	StandardPort int
	// Title is a short human name, e.g. "SMTP submission (implicit TLS)".
	Title string
}

// Services lists every service name the settings JSON knows, in the order
// they are printed.
var Services = []ServiceInfo{
	{"smtp", ProtocolSMTP, SecurityNone, 25, "SMTP relay (MTA)"},
	{"submission", ProtocolSMTP, SecurityStartTLS, 587, "SMTP submission (STARTTLS)"},
	{"submissions", ProtocolSMTP, SecurityTLS, 465, "SMTP submission (implicit TLS)"},
	{"imap", ProtocolIMAP, SecurityStartTLS, 143, "IMAP (STARTTLS)"},
	{"imaps", ProtocolIMAP, SecurityTLS, 993, "IMAP (implicit TLS)"},
	{"pop3", ProtocolPOP3, SecurityStartTLS, 110, "POP3 (STLS)"},
	{"pop3s", ProtocolPOP3, SecurityTLS, 995, "POP3 (implicit TLS)"},
}

// ServiceNames returns the valid keys of the "services" object.
func ServiceNames() []string {
	names := make([]string, len(Services))
	for i, s := range Services {
		names[i] = s.Name
	}
	return names
}

// LookupService returns the description of a service name.
func LookupService(name string) (ServiceInfo, bool) {
	for _, s := range Services {
		if s.Name == name {
			return s, true
		}
	}
	return ServiceInfo{}, false
}

// StandardPort returns the IANA port of protocol under security mode, e.g.
// 587 for SMTP with STARTTLS and 993 for IMAP with TLS.
func StandardPort(protocol, security string) int {
	switch protocol {
	case ProtocolSMTP:
		switch security {
		case SecurityTLS:
			return 465
		case SecurityStartTLS:
			return 587
		default:
			return 25
		}
	case ProtocolIMAP:
		if security == SecurityTLS {
			return 993
		}
		return 143
	case ProtocolPOP3:
		if security == SecurityTLS {
			return 995
		}
		return 110
	}
	return 0
}

// Settings is the settings JSON. The zero value has no services.
type Settings struct {
	// Domain is the mail domain of the accounts, e.g. "example.test".
	Domain string `json:"domain"`
	// Resolver is the DNS server ("host:port") the client should use; empty
	// means the system's resolver.
	Resolver string `json:"resolver,omitempty"`
	// CAFile is the absolute path of a PEM file of extra trusted roots;
	// empty means the system's roots only.
	CAFile string `json:"ca_file,omitempty"`
	// Accounts are the mail accounts; the first one is the one a client
	// configures.
	Accounts []Account `json:"accounts"`
	// Services maps a service name (see Services) to where it is reached.
	Services map[string]Service `json:"services"`
	// Discovery says where the provider publishes its configuration for
	// mail clients' account set-up; nil when unknown.
	Discovery *Discovery `json:"discovery,omitempty"`
	// Client holds limits of the mail client being reproduced; nil means a
	// modern client.
	Client *Client `json:"client,omitempty"`
	// ExpectedRootCause is set in a scenario's customer settings: the code
	// a correct diagnoser names.
	ExpectedRootCause string `json:"expected_root_cause,omitempty"`
	// Scenario is the name of the scenario that wrote these settings, if any.
	Scenario string `json:"scenario,omitempty"`
}

// Account is one mail account's credentials.
type Account struct {
	Email    string `json:"email"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// Service is where and how one service is reached.
type Service struct {
	// Host is the name a client dials, e.g. "mail.example.test".
	Host string `json:"host"`
	// Address is the IP the host resolves to in the lab, for clients that
	// cannot use the lab's resolver; empty when unknown.
	Address string `json:"address,omitempty"`
	// Port is the TCP port.
	Port int `json:"port"`
	// Security is one of SecurityModes.
	Security string `json:"security"`
}

// Discovery lists a provider's account set-up documents (what a mail
// client's wizard fetches before it connects).
type Discovery struct {
	// Autoconfig is the Mozilla autoconfig URL (clientConfig 1.1),
	// e.g. https://autoconfig.example.test/mail/config-v1.1.xml.
	Autoconfig string `json:"autoconfig,omitempty"`
	// WellKnown is the domain's well-known autoconfig URL.
	WellKnown string `json:"well_known,omitempty"`
	// Autodiscover is the Microsoft Autodiscover (POX) URL clients POST to.
	Autodiscover string `json:"autodiscover,omitempty"`
	// HTTPPort and HTTPSPort are the ports of the set-up web server on
	// the provider's address; 0 when unknown.
	HTTPPort  int `json:"http_port,omitempty"`
	HTTPSPort int `json:"https_port,omitempty"`
}

// Client describes the limits of the mail client being reproduced.
type Client struct {
	// MaxTLS is the highest TLS version the client speaks ("1.0" to "1.3");
	// empty means 1.3.
	MaxTLS string `json:"max_tls,omitempty"`
	// AuthMechs restricts the SASL mechanisms the client will use; empty
	// means any.
	AuthMechs []string `json:"auth_mechs,omitempty"`
	// SendTo is the recipient of the message the customer is trying to
	// send; empty means the account's own address.
	SendTo string `json:"send_to,omitempty"`
	// MessageFile is the absolute path of the RFC 5322 message (.eml) the
	// customer is trying to send; empty means a small test message.
	MessageFile string `json:"message_file,omitempty"`
}

// TLSVersions lists the valid values of Client.MaxTLS.
var TLSVersions = []string{"1.0", "1.1", "1.2", "1.3"}

// Error is a problem in a settings file, located by line and column where
// the JSON decoder can tell.
type Error struct {
	File   string // file name as given; empty for in-memory data
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Field  string // JSON path such as services.imap.port; empty when unknown
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("settings")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and validates a settings file.
func Load(path string) (*Settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes and validates settings JSON; file names the source in
// errors, which carry the line and column of what is wrong. Unknown
// fields are errors, so a typo is not silently ignored. A UTF-8 byte-order
// mark (as some Windows editors write) is allowed.
func Parse(file string, data []byte) (*Settings, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	root, err := scanJSON(data)
	if err == nil {
		err = checkSchema(root, reflect.TypeOf(Settings{}), "")
	}
	if err != nil {
		var pe *posError
		if errors.As(err, &pe) {
			e := &Error{File: file, Field: pe.field, Msg: pe.msg}
			if pe.off >= 0 {
				e.Line, e.Column = position(data, int64(pe.off))
			}
			return nil, e
		}
		return nil, &Error{File: file, Msg: err.Error()}
	}
	var s Settings
	if err := json.Unmarshal(data, &s); err != nil {
		// The scan and the schema check leave nothing encoding/json could
		// refuse; report it anyway rather than crash.
		return nil, &Error{File: file, Msg: "invalid settings: " + err.Error()}
	}
	// "auth_mechs": [] means what no list means (any mechanism); keep one
	// form, so that Parse(Marshal(s)) equals s (Marshal omits empty lists).
	if s.Client != nil && len(s.Client.AuthMechs) == 0 {
		s.Client.AuthMechs = nil
	}
	if err := s.validate(); err != nil {
		var se *Error
		if errors.As(err, &se) {
			se.File = file
			if off := locate(root, se.Field); off >= 0 {
				se.Line, se.Column = position(data, int64(off))
			}
		}
		return nil, err
	}
	return &s, nil
}

// position converts a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

func (s *Settings) validate() error {
	if len(s.Services) == 0 {
		return &Error{Field: "services", Msg: "no services: give at least one of " + strings.Join(ServiceNames(), ", ")}
	}
	names := make([]string, 0, len(s.Services))
	for name := range s.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		svc := s.Services[name]
		field := "services." + name
		if _, ok := LookupService(name); !ok {
			return &Error{Field: field, Msg: fmt.Sprintf("unknown service %q; valid: %s", name, strings.Join(ServiceNames(), ", "))}
		}
		if strings.TrimSpace(svc.Host) == "" {
			return &Error{Field: field + ".host", Msg: "missing host"}
		}
		if svc.Port < 1 || svc.Port > 65535 {
			return &Error{Field: field + ".port", Msg: fmt.Sprintf("port %d out of range 1-65535", svc.Port)}
		}
		if !slices.Contains(SecurityModes, svc.Security) {
			return &Error{Field: field + ".security", Msg: fmt.Sprintf("unknown security %q; valid: %s", svc.Security, strings.Join(SecurityModes, ", "))}
		}
		if svc.Address != "" && net.ParseIP(svc.Address) == nil {
			return &Error{Field: field + ".address", Msg: fmt.Sprintf("%q is not an IP address", svc.Address)}
		}
	}
	if s.Resolver != "" {
		_, port, err := net.SplitHostPort(s.Resolver)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 1 || p > 65535 {
			return &Error{Field: "resolver", Msg: fmt.Sprintf("%q is not host:port", s.Resolver)}
		}
	}
	for i, a := range s.Accounts {
		if a.Username == "" && a.Email == "" {
			return &Error{Field: fmt.Sprintf("accounts[%d]", i), Msg: "account has neither email nor username"}
		}
	}
	if s.Client != nil && s.Client.MaxTLS != "" && !slices.Contains(TLSVersions, s.Client.MaxTLS) {
		return &Error{Field: "client.max_tls", Msg: fmt.Sprintf("unknown TLS version %q; valid: %s", s.Client.MaxTLS, strings.Join(TLSVersions, ", "))}
	}
	return nil
}

// Validate checks settings built in memory, with the same rules as Parse.
func (s *Settings) Validate() error { return s.validate() }

// Write writes the settings as indented JSON to path with mode 0600 (the
// file holds passwords), replacing it atomically.
func (s *Settings) Write(path string) error {
	data, err := s.Marshal()
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Marshal returns the settings as indented JSON with a final newline.
func (s *Settings) Marshal() ([]byte, error) {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// SortedServiceNames returns the names of the configured services in the
// order of Services.
func (s *Settings) SortedServiceNames() []string {
	var names []string
	for _, info := range Services {
		if _, ok := s.Services[info.Name]; ok {
			names = append(names, info.Name)
		}
	}
	return names
}

// Account0 returns the first account, or the zero Account.
func (s *Settings) Account0() Account {
	if len(s.Accounts) == 0 {
		return Account{}
	}
	return s.Accounts[0]
}

// Clone returns a deep copy.
func (s *Settings) Clone() *Settings {
	c := *s
	c.Accounts = slices.Clone(s.Accounts)
	c.Services = make(map[string]Service, len(s.Services))
	for k, v := range s.Services {
		c.Services[k] = v
	}
	if s.Client != nil {
		cl := *s.Client
		cl.AuthMechs = slices.Clone(s.Client.AuthMechs)
		c.Client = &cl
	}
	return &c
}
