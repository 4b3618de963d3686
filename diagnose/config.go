// Package diagnose probes the mail services of one account layer by layer
// (DNS → TCP → TLS or STARTTLS → greeting → capabilities → authentication →
// a send or fetch test) and names the root cause of a failure with a code
// of maillab's catalog (package rootcause), the evidence and a fix a
// helpdesk can act on.
//
// It works against any server: it imports nothing of the lab, speaks its
// own small SMTP, IMAP and POP3 clients so that it sees the raw bytes, asks
// DNS servers itself (package dnsprobe), and classifies certificates
// itself (package certcheck). It is safe against the servers it diagnoses:
// at most one login attempt per service and run, never a password in clear
// text unless Config.AllowPlaintext, and every step has a deadline.
package diagnose

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/maillab/maillab/settings"
)

// Default waits (docs/diagnose-timing.md gives the sources).
const (
	// DefaultConnectTimeout bounds a TCP connect (and a DNS query): a
	// firewall that drops packets is named in about this time.
	DefaultConnectTimeout = 3 * time.Second
	// DefaultReplyTimeout bounds each wait for the server's answer (a
	// greeting, a TLS handshake, a command's reply, a write of the
	// message): what common mail clients wait before they give up.
	// Outlook's default server timeout is 1 minute; Thunderbird waits
	// 100 s (mailnews.tcptimeout). The shorter one is taken, so that
	// SERVER_SLOW means at least one common client gives up.
	DefaultReplyTimeout = 60 * time.Second
	// DefaultSlowReply is the wait above which a reply that did arrive in
	// time is reported as a finding with its delay.
	DefaultSlowReply = time.Second
)

// DefaultTimeout is the old single timeout's default.
//
// Deprecated: use DefaultConnectTimeout and DefaultReplyTimeout.
const DefaultTimeout = DefaultConnectTimeout

// Service is one service to probe.
type Service struct {
	// Name is a service name of the settings JSON: smtp, submission,
	// submissions, imap, imaps, pop3 or pop3s. It fixes the protocol.
	Name string
	// Host is the name (or IP literal) to dial.
	Host string
	// Port is the TCP port; 0 means the standard port for the protocol
	// and security mode.
	Port int
	// Security is none, starttls or tls; "" means the service name's usual
	// mode.
	Security string
	// Address is the IP the host is expected to resolve to, if known.
	// It is informational: the host is always resolved.
	Address string
}

// Protocol returns smtp, imap or pop3, or "" for an unknown name.
func (s Service) Protocol() string {
	info, ok := settings.LookupService(s.Name)
	if !ok {
		return ""
	}
	return info.Protocol
}

// Config is everything the command-line flags can say. The zero value of
// each field means its default.
type Config struct {
	// Email is the account's address; its domain is checked against the
	// configured hosts (MX and RFC 6186 SRV records).
	Email string
	// Domain is the mail domain when Email is empty.
	Domain string
	// Username and Password are the credentials. An empty Username or
	// Password means the client is configured without authentication:
	// no login is tried, the send test still runs.
	Username, Password string
	// Services are the services to probe, in report order.
	Services []Service
	// Resolver is a DNS server "host:port"; "" means the system's
	// (/etc/hosts first, then the nameservers of /etc/resolv.conf).
	Resolver string
	// CAFile is a PEM file of roots trusted in addition to the system's.
	CAFile string
	// CAPEM holds PEM roots trusted in addition to the system's and CAFile.
	CAPEM []byte
	// ClientMaxTLS is the highest TLS version of the client being
	// reproduced ("1.0" to "1.3"); "" means a modern client.
	ClientMaxTLS string
	// AuthMechs restricts the SASL mechanisms the client may use (PLAIN,
	// LOGIN, CRAM-MD5); empty means any.
	AuthMechs []string
	// SendTo is the recipient of the send test; "" means the account's own
	// address.
	SendTo string
	// MessageFile is an RFC 5322 message to send; "" means a small
	// generated test message.
	MessageFile string
	// Message is the message to send when MessageFile is empty.
	Message []byte
	// ConnectTimeout bounds each TCP connect and DNS query; 0 means
	// Timeout, or DefaultConnectTimeout when that is 0 too.
	ConnectTimeout time.Duration
	// ReplyTimeout bounds each wait for the server: the greeting, a TLS
	// handshake, a command's reply, each write of the message. A reply
	// within it is never the root cause; 0 means Timeout, or
	// DefaultReplyTimeout when that is 0 too.
	ReplyTimeout time.Duration
	// SlowReply is the wait above which a reply that arrived within
	// ReplyTimeout is reported as a finding with the measured delay; 0
	// means DefaultSlowReply, or ReplyTimeout/3 if that is smaller.
	SlowReply time.Duration
	// Timeout is the old single timeout: it sets ConnectTimeout and
	// ReplyTimeout where they are 0.
	//
	// Deprecated: set ConnectTimeout and ReplyTimeout.
	Timeout time.Duration
	// AllowPlaintext permits sending the password over a connection that
	// is not encrypted.
	AllowPlaintext bool

	// ResolvConf and HostsFile replace /etc/resolv.conf and /etc/hosts
	// (for tests); "" means the system files.
	ResolvConf, HostsFile string
	// NoSystemRoots trusts only CAFile and CAPEM (for tests).
	NoSystemRoots bool
	// Now returns the time certificates are judged at; nil means time.Now.
	Now func() time.Time
	// TLSAttempts is the number of TLS handshakes tried on an implicit-TLS
	// port to tell a stalling handshake from an intermittent one; 0 means 3.
	TLSAttempts int
}

// UsageError is an error in a Config, located by the flag or setting that
// has it; Run returns it, and the command exits 2.
type UsageError struct {
	// Field names the flag or setting, e.g. "--smtp" or "services.imap".
	Field string
	Msg   string
}

// Error returns "field: message".
func (e *UsageError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func usageErr(field, format string, args ...any) error {
	return &UsageError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// FromSettings turns a settings file into a Config: the first account,
// every configured service in settings.Services order, the resolver, the
// CA file and the client limits (max_tls, auth_mechs, send_to,
// message_file).
func FromSettings(s *settings.Settings) (Config, error) {
	if s == nil {
		return Config{}, usageErr("settings", "no settings")
	}
	if err := s.Validate(); err != nil {
		return Config{}, err
	}
	acct := s.Account0()
	cfg := Config{
		Email:    acct.Email,
		Domain:   s.Domain,
		Username: acct.Username,
		Password: acct.Password,
		Resolver: s.Resolver,
		CAFile:   s.CAFile,
	}
	if cfg.Username == "" && cfg.Password != "" {
		cfg.Username = acct.Email
	}
	for _, name := range s.SortedServiceNames() {
		svc := s.Services[name]
		cfg.Services = append(cfg.Services, Service{Name: name, Host: svc.Host, Port: svc.Port, Security: svc.Security, Address: svc.Address})
	}
	if c := s.Client; c != nil {
		cfg.ClientMaxTLS = c.MaxTLS
		cfg.AuthMechs = slices.Clone(c.AuthMechs)
		cfg.SendTo = c.SendTo
		cfg.MessageFile = c.MessageFile
	}
	return cfg, nil
}

// ParseHostPort parses a --smtp/--imap/--pop3 value: "host", "host:port",
// "[v6]:port" or "v6". A bare host gets port 0 (the standard port for the
// security mode).
func ParseHostPort(v string) (host string, port int, err error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", 0, errors.New("empty server")
	}
	if ip := net.ParseIP(v); ip != nil {
		return v, 0, nil
	}
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		return v[1 : len(v)-1], 0, nil
	}
	if !strings.Contains(v, ":") {
		if err := checkHostName(v); err != nil {
			return "", 0, err
		}
		return v, 0, nil
	}
	h, p, err := net.SplitHostPort(v)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not HOST or HOST:PORT", v)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("port %q out of range 1-65535", p)
	}
	if h == "" {
		return "", 0, fmt.Errorf("%q has no host", v)
	}
	if err := checkHostName(h); err != nil {
		return "", 0, err
	}
	return h, n, nil
}

func checkHostName(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if len(h) > 253 || strings.ContainsAny(h, " /\\@,;") {
		return fmt.Errorf("%q is not a host name", h)
	}
	return nil
}

// DefaultSecurity returns the security mode a bare HOST:PORT implies: 465,
// 993 and 995 are implicit TLS (RFC 8314 §3.3), 25 is plaintext, anything
// else STARTTLS.
func DefaultSecurity(port int) string {
	switch port {
	case 465, 993, 995:
		return settings.SecurityTLS
	case 25:
		return settings.SecurityNone
	}
	return settings.SecurityStartTLS
}

// ServiceName returns the settings service name for a protocol, security
// mode and port: submissions for SMTP with TLS, smtp for port 25 or no
// security, submission otherwise; imaps/pop3s for TLS, imap/pop3 otherwise.
func ServiceName(protocol, security string, port int) string {
	switch protocol {
	case settings.ProtocolSMTP:
		switch {
		case security == settings.SecurityTLS:
			return "submissions"
		case port == 25, security == settings.SecurityNone:
			return "smtp"
		}
		return "submission"
	case settings.ProtocolIMAP:
		if security == settings.SecurityTLS {
			return "imaps"
		}
		return "imap"
	case settings.ProtocolPOP3:
		if security == settings.SecurityTLS {
			return "pop3s"
		}
		return "pop3"
	}
	return ""
}

// supportedMechs are the SASL mechanisms the diagnoser can speak.
var supportedMechs = []string{"PLAIN", "LOGIN", "CRAM-MD5"}

// normalize validates cfg and fills defaults. The result is what Run uses.
func (cfg Config) normalize() (Config, error) {
	c := cfg
	c.Services = slices.Clone(cfg.Services)
	for _, t := range []struct {
		flag string
		d    time.Duration
	}{{"--timeout", c.Timeout}, {"--connect-timeout", c.ConnectTimeout}, {"--reply-timeout", c.ReplyTimeout}, {"slow reply", c.SlowReply}} {
		if t.d < 0 {
			return c, usageErr(t.flag, "negative timeout %s", t.d)
		}
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = cmp.Or(c.Timeout, DefaultConnectTimeout)
	}
	if c.ReplyTimeout == 0 {
		c.ReplyTimeout = cmp.Or(c.Timeout, DefaultReplyTimeout)
	}
	if c.SlowReply == 0 {
		c.SlowReply = min(DefaultSlowReply, c.ReplyTimeout/3)
	}
	if c.TLSAttempts <= 0 {
		c.TLSAttempts = 3
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Email != "" {
		addr, err := mail.ParseAddress(c.Email)
		if err != nil || !strings.Contains(addr.Address, "@") {
			return c, usageErr("--email", "%q is not an email address", c.Email)
		}
		c.Email = addr.Address
		if c.Domain == "" {
			c.Domain = c.Email[strings.LastIndexByte(c.Email, '@')+1:]
		}
	}
	c.Domain = strings.ToLower(strings.TrimSuffix(c.Domain, "."))
	if c.SendTo != "" {
		addr, err := mail.ParseAddress(c.SendTo)
		if err != nil {
			return c, usageErr("--to", "%q is not an email address", c.SendTo)
		}
		c.SendTo = addr.Address
	}
	if len(c.Services) == 0 {
		return c, usageErr("", "no service to diagnose: give --smtp, --imap or --pop3, or --settings or --autoconfig")
	}
	seen := map[string]bool{}
	for i := range c.Services {
		s := &c.Services[i]
		info, ok := settings.LookupService(s.Name)
		if !ok {
			return c, usageErr("services", "unknown service %q; valid: %s", s.Name, strings.Join(settings.ServiceNames(), ", "))
		}
		if seen[s.Name] {
			return c, usageErr("services."+s.Name, "given twice")
		}
		seen[s.Name] = true
		if strings.TrimSpace(s.Host) == "" {
			return c, usageErr("services."+s.Name, "missing host")
		}
		s.Host = strings.TrimSuffix(strings.TrimSpace(s.Host), ".")
		if s.Security == "" {
			s.Security = info.Security
			if s.Port != 0 {
				s.Security = DefaultSecurity(s.Port)
			}
		}
		if !slices.Contains(settings.SecurityModes, s.Security) {
			return c, usageErr("services."+s.Name, "unknown security %q; valid: %s", s.Security, strings.Join(settings.SecurityModes, ", "))
		}
		if s.Port == 0 {
			s.Port = settings.StandardPort(info.Protocol, s.Security)
		}
		if s.Port < 1 || s.Port > 65535 {
			return c, usageErr("services."+s.Name, "port %d out of range 1-65535", s.Port)
		}
	}
	if c.Resolver != "" {
		if _, _, err := net.SplitHostPort(c.Resolver); err != nil {
			if net.ParseIP(c.Resolver) == nil {
				return c, usageErr("--resolver", "%q is not HOST:PORT", c.Resolver)
			}
			c.Resolver = net.JoinHostPort(c.Resolver, "53")
		}
	}
	if c.ClientMaxTLS != "" && !slices.Contains(settings.TLSVersions, c.ClientMaxTLS) {
		return c, usageErr("--client-max-tls", "unknown TLS version %q; valid: %s", c.ClientMaxTLS, strings.Join(settings.TLSVersions, ", "))
	}
	var mechs []string
	for _, m := range c.AuthMechs {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" {
			continue
		}
		if !slices.Contains(supportedMechs, m) {
			return c, usageErr("--auth-mech", "unsupported mechanism %q; the diagnoser speaks %s", m, strings.Join(supportedMechs, ", "))
		}
		if !slices.Contains(mechs, m) {
			mechs = append(mechs, m)
		}
	}
	c.AuthMechs = mechs
	if c.MessageFile != "" {
		data, err := os.ReadFile(c.MessageFile)
		if err != nil {
			return c, usageErr("--message", "%v", err)
		}
		c.Message = data
	}
	if c.Username == "" && c.Password != "" {
		c.Username = c.Email
	}
	return c, nil
}

// hasCredentials reports whether the client is configured to log in.
func (cfg *Config) hasCredentials() bool { return cfg.Username != "" && cfg.Password != "" }

// account returns the sender address for the send test.
func (cfg *Config) account() string {
	if cfg.Email != "" {
		return cfg.Email
	}
	if strings.Contains(cfg.Username, "@") {
		return cfg.Username
	}
	if cfg.Username != "" && cfg.Domain != "" {
		return cfg.Username + "@" + cfg.Domain
	}
	if cfg.Domain != "" {
		return "postmaster@" + cfg.Domain
	}
	return ""
}
