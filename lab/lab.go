// Package lab starts a small mail provider on loopback: SMTP, IMAP, POP3
// and DNS servers for example.test with their own certificate authority,
// in the shape of net/http/httptest. New builds a lab and binds its ports;
// faults change the built lab; Start serves; Settings tells a client how
// to reach it; Close stops everything and removes what the lab created.
//
//	l, err := lab.Start(lab.Options{})
//	if err != nil { ... }
//	defer l.Close()
//	s := l.Settings() // hosts, ports, security, accounts, CA file, resolver
package lab

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/dnsd"
	"github.com/maillab/maillab/servers/mailstore"
	"github.com/maillab/maillab/servers/pki"
	"github.com/maillab/maillab/servers/pop3"
	"github.com/maillab/maillab/servers/smtpd"
	"github.com/maillab/maillab/servers/transcript"
	"github.com/maillab/maillab/settings"
)

// DefaultDomain is the lab's mail domain (RFC 2606 reserves .test).
const DefaultDomain = "example.test"

// StandardPorts are the IANA ports of each service, for
// Options.StandardPorts.
var StandardPorts = map[string]int{
	"smtp": 25, "submission": 587, "submissions": 465,
	"imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995, "dns": 53,
	"http": 80, "https": 443,
}

// PortNames lists the names Options.Ports accepts: the services of the
// settings JSON, "dns", and "http" and "https" (the account set-up
// documents).
func PortNames() []string { return append(settings.ServiceNames(), "dns", "http", "https") }

// Options configures New. The zero value is a lab for example.test on
// 127.0.0.1 with free ports, in-memory mail, and the users alice and bob
// with random passwords.
type Options struct {
	// Domain is the mail domain; default example.test.
	Domain string
	// Dir is the lab directory (CA file, log). Empty makes a temporary
	// directory that Close removes; a given directory is kept.
	Dir string
	// StoreDir keeps mail in Maildir under this directory; empty keeps it
	// in memory.
	StoreDir string
	// Address is the IP every service binds; default 127.0.0.1.
	Address string
	// Advertise is the IP address written into the settings, the DNS A
	// records and the certificate; default Address (127.0.0.1 when Address
	// is unspecified, as in a container whose ports are published on the
	// host's loopback).
	Advertise string
	// AllowNonLoopback must be set to bind an Address that is not a
	// loopback address: the lab serves deliberately broken TLS and must
	// never be exposed by accident.
	AllowNonLoopback bool
	// Ports fixes the port of a service (names from PortNames); 0 or
	// absent picks a free port.
	Ports map[string]int
	// StandardPorts binds 25, 587, 465, 143, 993, 110, 995, 53, 80 and 443
	// (Ports still wins), so a real client whose DNS is the lab's finds
	// the set-up documents where it looks for them. Binding ports below 1024 needs root or
	// CAP_NET_BIND_SERVICE.
	StandardPorts bool
	// Accounts replaces the default users. The domain of each email must
	// be Domain.
	Accounts []settings.Account
	// Transcript receives every session's protocol exchange (credentials
	// masked), in addition to the lab.log file in Dir.
	Transcript transcript.Sink
	// Logger receives the lab's own diagnostics; nil discards them.
	Logger *slog.Logger
	// HandshakeTimeout bounds a TLS handshake on implicit-TLS ports;
	// default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// CloseGrace is how long Close lets running sessions finish before it
	// cuts them; default 2s.
	CloseGrace time.Duration
	// CA is the lab's root; nil makes a new one. A lab rebuilt or
	// restarted with the same CA keeps every handed-out ca.pem valid.
	CA *pki.CA
	// Quota is the mail each account may hold, in bytes; 0 means
	// DefaultQuota, a negative value no limit (docs/store.md).
	Quota int64
	// MaxMessageSize is the largest message SMTP and IMAP APPEND accept,
	// in bytes; 0 means mailstore.DefaultMaxMessageSize (25 MiB), a
	// negative value no limit.
	MaxMessageSize int64
	// LogMaxBytes is the size at which lab.log is rotated (renamed
	// lab.log.1, older ones shifted); 0 means transcript.DefaultMaxBytes
	// (10 MiB), a negative value never rotates.
	LogMaxBytes int64
	// LogKeep is how many rotated lab.log files are kept; 0 means
	// transcript.DefaultKeep (5), a negative value keeps none.
	LogKeep int

	// MaxConnectionsPerClient is how many connections one client IP
	// address may hold at once, over all the lab's ports together; default
	// DefaultMaxConnectionsPerClient, negative for no limit. A connection
	// over it gets the protocol's "try later" reply and is closed (see
	// docs/limits.md).
	MaxConnectionsPerClient int
	// MaxConnections is how many connections all clients together may
	// hold at once; default DefaultMaxConnections, negative for no limit.
	MaxConnections int
	// SMTPTimeout is how long an SMTP server waits for a complete command
	// line (RFC 5321 §4.5.3.2); default DefaultSMTPTimeout.
	SMTPTimeout time.Duration
	// SMTPDataTimeout is how long the message after DATA may take to
	// arrive in full (RFC 5321 §4.5.3.2.6); default DefaultSMTPDataTimeout.
	SMTPDataTimeout time.Duration
	// IMAPCommandTimeout is how long an IMAP server waits for a command
	// before login, and for the rest of a command once its first byte
	// came; default DefaultIMAPCommandTimeout.
	IMAPCommandTimeout time.Duration
	// IMAPIdleTimeout is the autologout timer after login (RFC 9051
	// §5.4); default DefaultIMAPIdleTimeout.
	IMAPIdleTimeout time.Duration
	// POP3Timeout is the POP3 autologout timer: how long the server waits
	// for a complete command line (RFC 1939 §3); default
	// DefaultPOP3Timeout.
	POP3Timeout time.Duration
}

// DefaultHandshakeTimeout is how long an implicit-TLS port waits for a
// client's TLS handshake, then closes the connection without a word. It
// is what Debian 12's Dovecot 2.3.19 does on imaps and pop3s to a client
// that sends nothing (measured by e2e/realservers
// TestSilentClientOnImplicitTLS: FIN after 3m0s, no byte sent; Dovecot's
// login timeout for a client that never authenticates). A plaintext
// client on port 993 (scenario plain-on-993) thus meets its own timeout
// first: Thunderbird's is 100 s, curl's whatever --max-time says.
const DefaultHandshakeTimeout = 3 * time.Minute

// DefaultQuota is the default Options.Quota: 256 MiB per account, so a
// client that keeps sending cannot make the lab hold more than that for
// each account.
const DefaultQuota = 256 << 20

// Defaults of the limits in Options; docs/limits.md explains each.
const (
	// DefaultMaxConnectionsPerClient is Postfix's default
	// smtpd_client_connection_count_limit (anvil).
	DefaultMaxConnectionsPerClient = 50
	// DefaultMaxConnections bounds the lab's descriptors in use by clients
	// far below Go's raised RLIMIT_NOFILE on common systems.
	DefaultMaxConnections = 2000
	// DefaultSMTPTimeout is RFC 5321 §4.5.3.2's minimum for each command.
	DefaultSMTPTimeout = 5 * time.Minute
	// DefaultSMTPDataTimeout is RFC 5321 §4.5.3.2.6's "DATA termination".
	DefaultSMTPDataTimeout = 10 * time.Minute
	// DefaultIMAPCommandTimeout is go-imap's own limit before login.
	DefaultIMAPCommandTimeout = 30 * time.Second
	// DefaultIMAPIdleTimeout is RFC 9051 §5.4's minimum autologout timer.
	DefaultIMAPIdleTimeout = 30 * time.Minute
	// DefaultPOP3Timeout is RFC 1939 §3's minimum autologout timer.
	DefaultPOP3Timeout = 10 * time.Minute
)

// Lab is a mail provider on loopback. Between New and Start its exported
// fields and the fields of its services may be changed (that is what
// faults do); after Start they are read-only.
type Lab struct {
	// Domain is the mail domain.
	Domain string
	// Address is the IP the services bind.
	Address string
	// Dir is the lab directory.
	Dir string
	// CA is the lab's root; CAFile is its PEM in Dir.
	CA     *pki.CA
	CAFile string
	// Store holds the primary provider's mailboxes.
	Store *mailstore.Store
	// Primary is the provider of Domain; Providers lists it first, then
	// any extra providers faults added (another provider, an impostor).
	Primary   *Provider
	Providers []*Provider
	// DNS is the lab resolver's configuration; DNSAddr its address.
	DNS     *DNSConfig
	DNSAddr string
	// AuthPolicies wrap the authenticator of every provider's services in
	// order (the first sees a login first).
	AuthPolicies []auth.Middleware
	// SMTPChecks are consulted by the primary provider's SMTP services.
	SMTPChecks []smtpd.Check

	opts    Options
	logger  *slog.Logger
	sink    transcript.Sink
	logFile *transcript.RotatingFile
	ownsDir bool
	// limiter counts client connections (Options.MaxConnections...);
	// refusing bounds the TLS handshakes done only to say "too many
	// connections" on implicit-TLS ports.
	limiter  *netx.ConnLimiter
	refusing chan struct{}

	customer   []func(*settings.Settings) error
	afterStart []func() error
	httpMux    *http.ServeMux
	httpURL    string
	started    bool
	closers    []func() error // run in reverse order by Close
	mu         sync.Mutex
	closed     bool
	wg         sync.WaitGroup
	shutdown   []func(ctx context.Context) error
}

// DNSConfig is the lab resolver before Start.
type DNSConfig struct {
	// Zones maps names to records; New fills it with the providers' A, MX
	// and SRV records.
	Zones map[string]dnsd.Zone
	// Middleware acts on every query (DNS faults).
	Middleware []dnsd.Middleware
	udp        net.PacketConn
	tcp        net.Listener
	server     *dnsd.Server
}

// Start builds a lab, applies faults and starts it.
func Start(opts Options, faults ...Fault) (*Lab, error) {
	l, err := New(opts)
	if err != nil {
		return nil, err
	}
	for _, f := range faults {
		if err := f.Apply(l); err != nil {
			l.Close()
			return nil, err
		}
	}
	if err := l.Start(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Fault changes a lab between New and Start.
type Fault interface {
	Apply(l *Lab) error
}

// FaultFunc adapts a function to Fault.
type FaultFunc func(l *Lab) error

// Apply calls f.
func (f FaultFunc) Apply(l *Lab) error { return f(l) }

// New builds a lab: it makes the CA and certificates, opens the store and
// binds every port (so ports are known), but serves nothing until Start.
// Errors name what failed (a port in use, an unwritable directory).
func New(opts Options) (l *Lab, err error) {
	if opts.Domain == "" {
		opts.Domain = DefaultDomain
	}
	opts.Domain = strings.ToLower(strings.TrimSuffix(opts.Domain, "."))
	if opts.Address == "" {
		opts.Address = "127.0.0.1"
	}
	ip := net.ParseIP(opts.Address)
	if ip == nil {
		return nil, fmt.Errorf("address %q is not an IP address", opts.Address)
	}
	if !ip.IsLoopback() && !opts.AllowNonLoopback {
		return nil, fmt.Errorf("address %s is not a loopback address: the lab serves deliberately broken TLS; allow it explicitly to expose the lab", opts.Address)
	}
	for name, port := range opts.Ports {
		if !slices.Contains(PortNames(), name) {
			return nil, fmt.Errorf("unknown service %q in ports; valid: %s", name, strings.Join(PortNames(), ", "))
		}
		if port < 0 || port > 65535 {
			return nil, fmt.Errorf("port %d for %s out of range 0-65535", port, name)
		}
	}
	if opts.HandshakeTimeout == 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.CloseGrace == 0 {
		opts.CloseGrace = 2 * time.Second
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&opts.SMTPTimeout, DefaultSMTPTimeout},
		{&opts.SMTPDataTimeout, DefaultSMTPDataTimeout},
		{&opts.IMAPCommandTimeout, DefaultIMAPCommandTimeout},
		{&opts.IMAPIdleTimeout, DefaultIMAPIdleTimeout},
		{&opts.POP3Timeout, DefaultPOP3Timeout},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("timeout %s must not be negative", *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if opts.MaxConnectionsPerClient == 0 {
		opts.MaxConnectionsPerClient = DefaultMaxConnectionsPerClient
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	l = &Lab{
		Domain:   opts.Domain,
		Address:  opts.Address,
		opts:     opts,
		logger:   opts.Logger,
		limiter:  netx.NewConnLimiter(opts.MaxConnectionsPerClient, opts.MaxConnections),
		refusing: make(chan struct{}, maxRefusingHandshakes),
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	built := l
	defer func() {
		if err != nil {
			// A half-built lab releases what it bound and created.
			built.Close()
		}
	}()
	if err := l.makeDir(); err != nil {
		return nil, err
	}
	if err := l.makeCA(); err != nil {
		return nil, err
	}
	quota := opts.Quota
	if quota == 0 {
		quota = DefaultQuota
	}
	l.Store, err = mailstore.Open(mailstore.Options{Dir: opts.StoreDir, Logger: l.logger, DefaultQuota: max(quota, 0), MaxMessageSize: opts.MaxMessageSize})
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, l.Store.Close) // compacts and unlocks last
	accounts := opts.Accounts
	if len(accounts) == 0 {
		if accounts, err = storedAccounts(opts.StoreDir, opts.Domain); err != nil {
			return nil, err
		}
	}
	if opts.Advertise != "" && net.ParseIP(opts.Advertise) == nil {
		return nil, fmt.Errorf("advertised address %q is not an IP address", opts.Advertise)
	}
	primary, err := l.newProvider(providerSpec{
		Domain:     opts.Domain,
		IP:         opts.Address,
		Advertised: opts.Advertise,
		Accounts:   accounts,
		Store:      l.Store,
		Ports:      l.requestedPorts(),
	})
	if err != nil {
		return nil, err
	}
	l.Primary = primary
	l.Providers = []*Provider{primary}
	if err := l.bindDNS(); err != nil {
		return nil, err
	}
	l.DNS.Zones = map[string]dnsd.Zone{}
	primary.addZones(l.DNS.Zones)
	return l, nil
}

func (l *Lab) requestedPorts() map[string]int {
	ports := map[string]int{}
	if l.opts.StandardPorts {
		for k, v := range StandardPorts {
			ports[k] = v
		}
	}
	for k, v := range l.opts.Ports {
		if v != 0 {
			ports[k] = v
		}
	}
	return ports
}

func (l *Lab) makeDir() error {
	if l.opts.Dir == "" {
		dir, err := os.MkdirTemp("", "maillab-*")
		if err != nil {
			return fmt.Errorf("lab directory: %w", err)
		}
		l.Dir, l.ownsDir = dir, true
	} else {
		abs, err := filepath.Abs(l.opts.Dir)
		if err != nil {
			return fmt.Errorf("lab directory %s: %w", l.opts.Dir, err)
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return fmt.Errorf("lab directory %s: %w", l.opts.Dir, err)
		}
		l.Dir = abs
	}
	maxBytes, keep := l.opts.LogMaxBytes, l.opts.LogKeep
	if maxBytes == 0 {
		maxBytes = transcript.DefaultMaxBytes
	}
	if keep == 0 {
		keep = transcript.DefaultKeep
	}
	f, err := transcript.OpenRotating(filepath.Join(l.Dir, "lab.log"), maxBytes, keep)
	if err != nil {
		return fmt.Errorf("lab directory %s is not writable: %w", l.Dir, err)
	}
	l.logFile = f
	sinks := transcript.Multi{transcript.NewTextSink(f)}
	if l.opts.Transcript != nil {
		sinks = append(sinks, l.opts.Transcript)
	}
	l.sink = sinks
	return nil
}

func (l *Lab) makeCA() error {
	l.CAFile = filepath.Join(l.Dir, "ca.pem")
	if l.opts.CA != nil {
		l.CA = l.opts.CA
		return pki.WritePEM(l.CAFile, l.CA.Cert)
	}
	// Real CAs are years older than the certificates they sign; a lab CA
	// made this minute could not have signed an "expired" certificate, and
	// a client would then see a broken chain instead of an expired leaf.
	now := time.Now()
	ca, err := pki.NewCA("maillab "+l.Domain+" lab CA", pki.CAOptions{
		Organization: "maillab",
		NotBefore:    now.AddDate(-3, 0, 0),
		NotAfter:     now.AddDate(10, 0, 0),
	})
	if err != nil {
		return err
	}
	l.CA = ca
	return pki.WritePEM(l.CAFile, ca.Cert)
}

func (l *Lab) bindDNS() error {
	port := l.requestedPorts()["dns"]
	tcp, udp, err := listenTCPUDP(l.Address, port)
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	l.DNS = &DNSConfig{udp: udp, tcp: tcp}
	l.DNSAddr = tcp.Addr().String()
	if ip := net.ParseIP(l.Address); ip.IsUnspecified() {
		// Bound on every interface (a container): clients are told the
		// advertised address.
		adv := l.opts.Advertise
		if adv == "" {
			adv = "127.0.0.1"
		}
		l.DNSAddr = net.JoinHostPort(adv, fmt.Sprint(tcp.Addr().(*net.TCPAddr).Port))
	}
	l.onClose(func() error {
		if l.DNS.server != nil {
			return l.DNS.server.Close()
		}
		udp.Close()
		return tcp.Close()
	})
	return nil
}

// listenTCPUDP binds the same port over TCP and UDP (port 0: a free one,
// retried a few times in case the UDP side of a free TCP port is taken).
func listenTCPUDP(ip string, port int) (net.Listener, net.PacketConn, error) {
	for attempt := 0; ; attempt++ {
		tcp, err := listenTCP(ip, port)
		if err != nil {
			return nil, nil, err
		}
		p := tcp.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenPacket("udp", net.JoinHostPort(ip, fmt.Sprint(p)))
		if err == nil {
			return tcp, udp, nil
		}
		tcp.Close()
		if port != 0 || attempt >= 10 {
			return nil, nil, bindError("udp", ip, p, err)
		}
	}
}

func listenTCP(ip string, port int) (net.Listener, error) {
	// SO_REUSEPORT lets a "reject" fault bind its socket beside the
	// listener before closing it, so the port is never free in between.
	ln, err := netx.ListenConfig.Listen(context.Background(), "tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
	if err != nil {
		return nil, bindError("tcp", ip, port, err)
	}
	return ln, nil
}

func bindError(netw, ip string, port int, err error) error {
	hint := ""
	switch {
	case errors.Is(err, syscall.EACCES):
		hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE; use free ports instead)"
	case errors.Is(err, syscall.EADDRINUSE):
		hint = " (port in use; pick another port or 0 for a free one)"
	}
	cause := err
	var errno syscall.Errno
	if errors.As(err, &errno) {
		cause = errno
	}
	return fmt.Errorf("bind %s %s: %w%s", netw, net.JoinHostPort(ip, fmt.Sprint(port)), cause, hint)
}

// accountsFile keeps the default accounts beside a persistent store, so a
// restarted lab has the same passwords as the mail it kept.
const accountsFile = "maillab-accounts.json"

// storedAccounts returns the default accounts: new ones for an in-memory
// lab; for a store directory, the ones saved there by an earlier run (or
// new ones, saved).
func storedAccounts(storeDir, domain string) ([]settings.Account, error) {
	if storeDir == "" {
		return defaultAccounts(domain), nil
	}
	path := filepath.Join(storeDir, accountsFile)
	data, err := os.ReadFile(path)
	if err == nil {
		var accounts []settings.Account
		if err := json.Unmarshal(data, &accounts); err != nil {
			return nil, fmt.Errorf("%s: %w (delete it to make new accounts)", path, err)
		}
		for _, a := range accounts {
			if !strings.HasSuffix(strings.ToLower(a.Email), "@"+domain) {
				return nil, fmt.Errorf("%s: account %s is not in domain %s", path, a.Email, domain)
			}
		}
		return accounts, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("store directory: %w", err)
	}
	accounts := defaultAccounts(domain)
	data, _ = json.MarshalIndent(accounts, "", "  ")
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return nil, fmt.Errorf("store directory %s: %w", storeDir, err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("store directory %s: %w", storeDir, err)
	}
	return accounts, nil
}

func defaultAccounts(domain string) []settings.Account {
	var out []settings.Account
	for _, user := range []string{"alice", "bob"} {
		email := user + "@" + domain
		out = append(out, settings.Account{Email: email, Username: email, Password: randomPassword()})
	}
	return out
}

// randomPassword returns 12 characters that are easy to type (no 0/O, 1/l).
func randomPassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 12)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err) // crypto/rand never fails on Linux
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

// OnClose registers cleanup that Close runs (in reverse order of
// registration), e.g. for a socket a fault reserved.
func (l *Lab) OnClose(f func() error) { l.onClose(f) }

func (l *Lab) onClose(f func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closers = append(l.closers, f)
}

// OnStarted registers work to do once every server runs (e.g. a fault's
// simulated client that must reach the lab over the network).
func (l *Lab) OnStarted(f func() error) { l.afterStart = append(l.afterStart, f) }

// OnCustomerSettings registers a change to the customer's settings (what
// the user typed into the mail client), applied by CustomerSettings.
func (l *Lab) OnCustomerSettings(f func(*settings.Settings) error) {
	l.customer = append(l.customer, f)
}

// Logger returns the lab's logger.
func (l *Lab) Logger() *slog.Logger { return l.logger }

// Sink returns the transcript sink (lab.log plus Options.Transcript).
func (l *Lab) Sink() transcript.Sink { return l.sink }

// CertPool returns a pool holding the lab CA, for Go clients.
func (l *Lab) CertPool() *x509.CertPool { return pki.Pool(l.CA.Cert) }

// Started reports whether Start has run.
func (l *Lab) Started() bool { return l.started }

// Start serves every service and the DNS. It may be called once.
func (l *Lab) Start() error {
	if l.started {
		return errors.New("lab already started")
	}
	l.started = true
	for _, p := range l.Providers {
		if err := l.startProvider(p); err != nil {
			return err
		}
	}
	if err := l.startDNS(); err != nil {
		return err
	}
	for _, f := range l.afterStart {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// Settings returns what a correctly configured client uses: every service
// of the primary provider, its accounts, the CA file and the resolver.
func (l *Lab) Settings() *settings.Settings {
	return l.Primary.settings(l)
}

// CustomerSettings returns Settings changed by the hooks registered with
// OnCustomerSettings (by scenario faults): what the customer typed.
func (l *Lab) CustomerSettings() (*settings.Settings, error) {
	s := l.Settings()
	for _, f := range l.customer {
		if err := f(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close stops every server, waits up to Options.CloseGrace for sessions to
// end (then cuts them), and removes the lab directory if New created it. It
// is safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	shutdown := l.shutdown
	closers := l.closers
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CloseGrace)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range shutdown {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	wg.Wait()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	l.wg.Wait()
	if l.logFile != nil {
		l.logFile.Close()
	}
	if l.ownsDir && l.Dir != "" {
		if err := os.RemoveAll(l.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// goServe runs a server loop tracked by Close.
func (l *Lab) goServe(name string, serve func() error) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := serve(); err != nil && !errors.Is(err, net.ErrClosed) && !isServerClosed(err) {
			l.logger.Warn("server stopped", "service", name, "err", err)
		}
	}()
}

// tlsConfig builds a server TLS configuration.
func tlsConfig(cert tls.Certificate, minV, maxV uint16) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: minV, MaxVersion: maxV}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

var _ io.Closer = (*Lab)(nil)

// isServerClosed reports the "closed" sentinels of the protocol servers,
// which Serve returns after a normal Close.
func isServerClosed(err error) bool {
	return errors.Is(err, pop3.ErrServerClosed) || errors.Is(err, smtpd.ErrServerClosed)
}
