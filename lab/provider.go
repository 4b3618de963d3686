package lab

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/servers/dnsd"
	"github.com/maillab/maillab/servers/mailstore"
	"github.com/maillab/maillab/servers/pki"
	"github.com/maillab/maillab/servers/transcript"
	"github.com/maillab/maillab/settings"
)

// Provider is one mail provider the lab serves: a domain, its host names,
// its accounts and its services, all on one IP. The lab always has the
// primary provider; faults may add others (a different provider a
// customer confused with theirs, an impostor behind a poisoned DNS answer).
type Provider struct {
	Domain string
	// IP is the address every service of the provider binds.
	IP string
	// AdvertisedIP is the address clients are told (settings, DNS A
	// records, the certificate's IP name): IP, unless the lab binds an
	// unspecified address (0.0.0.0 in a container) and publishes its
	// ports elsewhere.
	AdvertisedIP string
	// MailHost is "mail.<domain>", the name in greetings and MX/SRV records.
	MailHost string
	// Hosts are the names that resolve to IP: mail., smtp. and imap.
	Hosts    []string
	Accounts []settings.Account
	Store    *mailstore.Store
	// Tokens are the OAuth2 bearer tokens the provider accepts, by user
	// name (lower case).
	Tokens map[string]string
	// Certificate is what every TLS service presents unless the service
	// sets its own.
	Certificate tls.Certificate
	// Services by name; Order lists them in settings order.
	Services map[string]*Service
	Order    []string
	// Setup publishes the provider's configuration for mail clients'
	// account wizards (autoconfig, Autodiscover) on its web ports.
	Setup *Setup
}

// Network says what a service's port does with a connection attempt.
type Network int

// Network behaviours.
const (
	// NetworkServe accepts and serves (the default).
	NetworkServe Network = iota
	// NetworkDrop lets connection attempts time out (SYNs vanish).
	NetworkDrop
	// NetworkRefuse answers connection attempts with RST.
	NetworkRefuse
)

// ConnWrapper wraps an accepted connection below TLS; ts is the
// connection's transcript, for noting what the fault did.
type ConnWrapper func(c net.Conn, ts *transcript.Session) net.Conn

// Middlebox relays a client connection to the real server, as a proxy
// between the advertised port and the server does. dial connects to the
// server (on a port only the lab knows). Serve returns when the relay
// ends; it owns client.
type Middlebox interface {
	Serve(client net.Conn, ts *transcript.Session, dial func() (net.Conn, error))
}

// Service is one port of a provider. Fields other than the identity may
// be changed between New and Start.
type Service struct {
	Name     string // settings name: smtp, submission, ...
	Protocol string // settings.ProtocolSMTP, ...
	Security string // settings.SecurityNone, ...
	Host     string // the host a client is told to dial
	Port     int
	Provider *Provider

	Network Network
	// Certificate overrides the provider's certificate.
	Certificate *tls.Certificate
	// MinTLS and MaxTLS bound the TLS versions (0: TLS 1.2 and Go's max).
	MinTLS, MaxTLS uint16
	// OfferSTARTTLS advertises STARTTLS/STLS on a plaintext port (default
	// true; the relay port offers it too, as real MTAs do).
	OfferSTARTTLS bool
	// AllowInsecureAuth accepts passwords before TLS (default false).
	AllowInsecureAuth bool
	// Mechanisms are the SASL mechanisms offered (protocol default if nil).
	Mechanisms []string
	// MaxMessageBytes is the SMTP SIZE limit (0: the server default).
	MaxMessageBytes int64
	// GreetingDelay holds the greeting (after the TLS handshake on
	// implicit-TLS ports).
	GreetingDelay time.Duration
	// ConnWrappers wrap each accepted connection below TLS, in order.
	ConnWrappers []ConnWrapper
	// Middlebox, if set, sits between the advertised port and the server.
	Middlebox Middlebox

	ln net.Listener // bound in New, served in Start
}

// Addr returns "ip:port" of the service.
func (s *Service) Addr() string {
	return net.JoinHostPort(s.Provider.IP, fmt.Sprint(s.Port))
}

// TLS reports whether the service starts with TLS.
func (s *Service) TLS() bool { return s.Security == settings.SecurityTLS }

// Service returns the named service of the primary provider, or nil.
func (l *Lab) Service(name string) *Service { return l.Primary.Services[name] }

type providerSpec struct {
	Domain     string
	IP         string
	Advertised string
	Accounts   []settings.Account
	Store      *mailstore.Store
	Ports      map[string]int
}

func (l *Lab) newProvider(spec providerSpec) (*Provider, error) {
	p := &Provider{
		Domain:       spec.Domain,
		IP:           spec.IP,
		AdvertisedIP: spec.Advertised,
		MailHost:     "mail." + spec.Domain,
		Hosts:        []string{"mail." + spec.Domain, "smtp." + spec.Domain, "imap." + spec.Domain},
		Accounts:     spec.Accounts,
		Store:        spec.Store,
		Tokens:       map[string]string{},
		Services:     map[string]*Service{},
	}
	for _, a := range spec.Accounts {
		if !strings.HasSuffix(strings.ToLower(a.Email), "@"+spec.Domain) {
			return nil, fmt.Errorf("account %s is not in domain %s", a.Email, spec.Domain)
		}
		if _, err := p.Store.AddUser(a.Email, a.Username, a.Password); err != nil {
			return nil, err
		}
		p.Tokens[strings.ToLower(a.Username)] = "ya29." + randomPassword() + randomPassword()
	}
	if p.AdvertisedIP == "" {
		p.AdvertisedIP = p.IP
		if ip := net.ParseIP(p.IP); ip == nil || ip.IsUnspecified() {
			p.AdvertisedIP = "127.0.0.1"
		}
	}
	if err := p.bindSetup(l, spec.Ports); err != nil {
		return nil, err
	}
	names := append(append([]string(nil), p.Hosts...), p.Setup.Hosts...)
	leafSpec := pki.LeafSpec{DNSNames: names, Organization: "maillab", IPs: []net.IP{net.ParseIP(p.AdvertisedIP)}}
	leaf, err := l.CA.Issue(leafSpec)
	if err != nil {
		return nil, err
	}
	p.Certificate = leaf.TLSCertificate()
	for _, info := range settings.Services {
		svc := &Service{
			Name:          info.Name,
			Protocol:      info.Protocol,
			Security:      info.Security,
			Host:          p.MailHost,
			Provider:      p,
			OfferSTARTTLS: true,
		}
		ln, err := listenTCP(spec.IP, spec.Ports[info.Name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", info.Name, err)
		}
		svc.ln = ln
		svc.Port = ln.Addr().(*net.TCPAddr).Port
		l.onClose(ln.Close)
		p.Services[info.Name] = svc
		p.Order = append(p.Order, info.Name)
	}
	return p, nil
}

// AddProvider adds another provider on ip, serving the same service ports
// as the primary provider (a DNS answer can change the address a client
// reaches, not the port). Its accounts live in a store of their own; its
// certificate is issued by the lab CA for its own host names.
func (l *Lab) AddProvider(domain, ip string, accounts []settings.Account) (*Provider, error) {
	if l.started {
		return nil, fmt.Errorf("add provider %s: lab already started", domain)
	}
	if primary := net.ParseIP(l.Primary.IP); primary == nil || primary.IsUnspecified() {
		return nil, fmt.Errorf("add provider %s: a second provider needs an address of its own (%s) on the primary's ports, which is not possible while the lab binds every address (%s); run this scenario outside a container", domain, ip, l.Primary.IP)
	}
	store, err := mailstore.Open(mailstore.Options{})
	if err != nil {
		return nil, err
	}
	ports := map[string]int{}
	for name, svc := range l.Primary.Services {
		ports[name] = svc.Port
	}
	ports["http"], ports["https"] = l.Primary.Setup.HTTPPort, l.Primary.Setup.HTTPSPort
	p, err := l.newProvider(providerSpec{Domain: domain, IP: ip, Accounts: accounts, Store: store, Ports: ports})
	if err != nil {
		return nil, fmt.Errorf("add provider %s on %s: %w", domain, ip, err)
	}
	l.Providers = append(l.Providers, p)
	p.addZones(l.DNS.Zones)
	return p, nil
}

// addZones adds the provider's A (AAAA for an IPv6 address, RFC 3596),
// MX and RFC 6186/8314 SRV records, and the address records of its account
// set-up hosts.
func (p *Provider) addZones(zones map[string]dnsd.Zone) {
	for _, h := range append(append([]string(nil), p.Hosts...), p.Setup.Hosts...) {
		z := zones[dns.Fqdn(h)]
		if ip := net.ParseIP(p.AdvertisedIP); ip != nil && ip.To4() == nil {
			z.AAAA = append(z.AAAA, p.AdvertisedIP)
		} else {
			z.A = append(z.A, p.AdvertisedIP)
		}
		zones[dns.Fqdn(h)] = z
	}
	z := zones[dns.Fqdn(p.Domain)]
	z.MX = append(z.MX, net.MX{Host: dns.Fqdn(p.MailHost), Pref: 10})
	zones[dns.Fqdn(p.Domain)] = z
	srv := map[string]string{
		"submission": "_submission._tcp", "submissions": "_submissions._tcp",
		"imap": "_imap._tcp", "imaps": "_imaps._tcp", "pop3": "_pop3._tcp", "pop3s": "_pop3s._tcp",
	}
	for name, label := range srv {
		svc := p.Services[name]
		key := dns.Fqdn(label + "." + p.Domain)
		z := zones[key]
		z.SRV = append(z.SRV, net.SRV{Target: dns.Fqdn(p.MailHost), Port: uint16(svc.Port), Priority: 0, Weight: 1})
		zones[key] = z
	}
}

// settings describes the provider for a correctly configured client.
func (p *Provider) settings(l *Lab) *settings.Settings {
	s := &settings.Settings{
		Domain:   p.Domain,
		Resolver: l.DNSAddr,
		CAFile:   l.CAFile,
		Accounts: append([]settings.Account(nil), p.Accounts...),
		Services: map[string]settings.Service{},
	}
	for _, name := range p.Order {
		svc := p.Services[name]
		s.Services[name] = settings.Service{Host: svc.Host, Address: p.AdvertisedIP, Port: svc.Port, Security: svc.Security}
	}
	s.Discovery = p.Setup.settings(p.Domain)
	return s
}

// Token returns the OAuth2 bearer token the provider accepts for user.
func (p *Provider) Token(user string) string { return p.Tokens[strings.ToLower(user)] }
