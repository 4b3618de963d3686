//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maillab/maillab/settings"
)

// mailClient runs real clients set up from one settings file: what the
// customer typed into the mail client (scenarios) or the lab's correct
// settings. Every command line it builds comes from those settings: the
// host and port of a service, its security mode, the account, the CA
// file, the resolver, and the client's limits (maximum TLS version, SASL
// mechanisms, recipient, message file). Host names are resolved the way
// the customer's machine would: dig asks the settings' resolver, and the
// answer is handed to curl as --resolve (Debian's curl cannot be pointed
// at another DNS server).
type mailClient struct {
	t        *testing.T
	scenario string // for failure text, e.g. "expired-cert"
	s        *settings.Settings
	acct     settings.Account
	dir      string

	mu  *sync.Mutex
	ips map[string]string // host → address, from dig
}

var fileSeq atomic.Int64

func newMailClient(t *testing.T, scenario string, s *settings.Settings) *mailClient {
	t.Helper()
	return &mailClient{t: t, scenario: scenario, s: s, acct: s.Account0(), dir: t.TempDir(),
		mu: &sync.Mutex{}, ips: map[string]string{}}
}

// with returns a copy of c that logs in as acct (e.g. with the right
// password where the customer's is stale) and reports to t.
func (c *mailClient) with(t *testing.T, acct settings.Account) *mailClient {
	cc := *c
	cc.t, cc.acct = t, acct
	return &cc
}

// in returns a copy of c that reports to t (a step's subtest).
func (c *mailClient) in(t *testing.T) *mailClient { return c.with(t, c.acct) }

// service returns the configured service; a scenario that lacks it is a
// broken test table.
func (c *mailClient) service(name string) settings.Service {
	c.t.Helper()
	svc, ok := c.s.Services[name]
	if !ok {
		c.t.Fatalf("%s: settings have no service %s (have %s)", c.scenario, name, strings.Join(c.s.SortedServiceNames(), ", "))
	}
	return svc
}

func (c *mailClient) protocol(name string) string {
	info, ok := settings.LookupService(name)
	if !ok {
		c.t.Fatalf("unknown service %s", name)
	}
	return info.Protocol
}

// resolverArgs are dig's arguments for the settings' resolver.
func (c *mailClient) resolverArgs() []string {
	c.t.Helper()
	host, port, err := net.SplitHostPort(c.s.Resolver)
	if err != nil {
		c.t.Fatalf("%s: resolver %q: %v", c.scenario, c.s.Resolver, err)
	}
	// One try of two seconds: a resolver that does not answer shows as a
	// timeout in two seconds, not after dig's default 3 × 5 s.
	return []string{"@" + host, "-p", port, "+time=2", "+tries=1"}
}

// dig queries the settings' resolver.
func (c *mailClient) dig(args ...string) result {
	c.t.Helper()
	return run(c.t, command{client: "dig", args: append(c.resolverArgs(), args...)})
}

// ip resolves host through the settings' resolver, as the customer's
// machine would; a failed lookup fails the test (scenarios whose failure
// is DNS assert on dig instead).
func (c *mailClient) ip(host string) string {
	c.t.Helper()
	c.mu.Lock()
	ip, ok := c.ips[host]
	c.mu.Unlock()
	if ok {
		return ip
	}
	r := c.dig("+short", host, "A")
	addrs := parseDigShort(r.out)
	for _, a := range addrs {
		if net.ParseIP(a).To4() != nil {
			ip = a
			break
		}
	}
	if r.exit != 0 || ip == "" {
		c.t.Fatalf("%s: resolve %s through %s: no address\n%s", c.scenario, host, c.s.Resolver, r)
	}
	c.mu.Lock()
	c.ips[host] = ip
	c.mu.Unlock()
	return ip
}

// scheme returns the URL scheme of a service for curl and whether STARTTLS
// must be required (RFC 8314 §3 implicit TLS; RFC 3207, RFC 3501 §6.2.1
// and RFC 2595 §4 STARTTLS).
func (c *mailClient) scheme(name string) (scheme string, starttls bool) {
	svc := c.service(name)
	scheme = c.protocol(name)
	switch svc.Security {
	case settings.SecurityTLS:
		scheme += "s"
	case settings.SecurityStartTLS:
		starttls = true
	}
	return scheme, starttls
}

// curlBase is curl's common part for a service: verbose (the protocol
// exchange is part of what is asserted), short timeouts, the lab CA, the
// host resolved through the settings' resolver, the account and the
// client's limits.
func (c *mailClient) curlBase(name string) (args []string, origin string) {
	svc := c.service(name)
	ip := c.ip(svc.Host)
	scheme, starttls := c.scheme(name)
	args = []string{"-sS", "-v", "--connect-timeout", "3", "--max-time", "15",
		"--resolve", fmt.Sprintf("%s:%d:%s", svc.Host, svc.Port, ip)}
	if c.s.CAFile != "" {
		args = append(args, "--cacert", c.s.CAFile)
	}
	if starttls {
		args = append(args, "--ssl-reqd")
	}
	if c.acct.Username != "" {
		args = append(args, "-u", c.acct.Username+":"+c.acct.Password)
	}
	args = append(args, c.curlLimits()...)
	return args, fmt.Sprintf("%s://%s:%d", scheme, svc.Host, svc.Port)
}

// curlLimits are the customer's client limits as curl options.
func (c *mailClient) curlLimits() []string {
	cl := c.s.Client
	if cl == nil {
		return nil
	}
	var args []string
	if cl.MaxTLS != "" {
		// An old client offers exactly its version.
		args = append(args, "--tlsv"+cl.MaxTLS, "--tls-max", cl.MaxTLS)
	}
	if len(cl.AuthMechs) > 0 {
		args = append(args, "--login-options", "AUTH="+cl.AuthMechs[0])
	}
	return args
}

// curl runs curl against a service with a URL path (e.g. "/INBOX" or "/1")
// and extra options after the generated ones (curl lets a later -u win).
func (c *mailClient) curl(name, path string, extra ...string) result {
	c.t.Helper()
	args, origin := c.curlBase(name)
	args = append(args, extra...)
	args = append(args, origin+path)
	return run(c.t, command{client: "curl", args: args})
}

// curlSend submits a message over an SMTP service: msgFile, or the
// customer's message file, or a small test message.
func (c *mailClient) curlSend(name, msgFile string, extra ...string) result {
	c.t.Helper()
	if msgFile == "" {
		msgFile = c.messageFile("")
	}
	args := []string{"--mail-from", c.from(), "--mail-rcpt", c.rcpt(), "-T", msgFile}
	// The URL path is the EHLO name (curl's SMTP URL syntax).
	return c.curl(name, "/client.e2e.test", append(args, extra...)...)
}

func (c *mailClient) from() string {
	if c.acct.Email != "" {
		return c.acct.Email
	}
	return "alice@" + c.s.Domain
}

// rcpt is the customer's recipient, or their own address.
func (c *mailClient) rcpt() string {
	if c.s.Client != nil && c.s.Client.SendTo != "" {
		return c.s.Client.SendTo
	}
	return c.from()
}

// messageFile returns the customer's message file, or writes a small
// message with the given subject (default "maillab e2e").
func (c *mailClient) messageFile(subject string) string {
	c.t.Helper()
	if subject == "" && c.s.Client != nil && c.s.Client.MessageFile != "" {
		return c.s.Client.MessageFile
	}
	return c.writeMessage(c.from(), c.rcpt(), subject)
}

// writeMessage writes an RFC 5322 message and returns its path.
func (c *mailClient) writeMessage(from, to, subject string) string {
	c.t.Helper()
	if subject == "" {
		subject = "maillab e2e"
	}
	path := filepath.Join(c.dir, fmt.Sprintf("message-%d.eml", fileSeq.Add(1)))
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%d.e2e@client.e2e.test>\r\n\r\nSent by the maillab e2e tests.\r\n",
		from, to, subject, time.Now().UTC().Format(time.RFC1123Z), fileSeq.Add(1))
	if err := os.WriteFile(path, []byte(msg), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// openssl runs openssl s_client against a service: STARTTLS for the
// service's protocol where the security mode says so, the host name as SNI
// and as the name to verify, the settings' CA, and verification errors
// failing the handshake the way a mail client fails it.
func (c *mailClient) openssl(name string, extra ...string) result {
	c.t.Helper()
	svc := c.service(name)
	ip := c.ip(svc.Host)
	args := []string{"s_client", "-connect", net.JoinHostPort(ip, fmt.Sprint(svc.Port)),
		"-servername", svc.Host, "-verify_hostname", svc.Host, "-verify_return_error"}
	if c.s.CAFile != "" {
		args = append(args, "-CAfile", c.s.CAFile)
	}
	if _, starttls := c.scheme(name); starttls {
		args = append(args, "-starttls", c.protocol(name))
	}
	if cl := c.s.Client; cl != nil && cl.MaxTLS != "" {
		args = append(args, opensslVersionFlag[cl.MaxTLS])
	}
	args = append(args, extra...)
	// Empty stdin: s_client ends after the handshake and what follows.
	return run(c.t, command{client: "openssl", args: args, stdin: []byte{}, limit: 20 * time.Second})
}

var opensslVersionFlag = map[string]string{"1.0": "-tls1", "1.1": "-tls1_1", "1.2": "-tls1_2", "1.3": "-tls1_3"}

var swaksVersion = map[string]string{"1.0": "tlsv1", "1.1": "tlsv1_1", "1.2": "tlsv1_2", "1.3": "tlsv1_3"}

// swaks sends the customer's message over an SMTP service with swaks:
// STARTTLS (-tls) or implicit TLS (-tlsc) as the settings say, the
// certificate verified against the CA, AUTH when the settings have a user
// name (restricted to the client's mechanisms), the customer's recipient
// and message file.
func (c *mailClient) swaks(name string, extra ...string) result {
	c.t.Helper()
	svc := c.service(name)
	ip := c.ip(svc.Host)
	args := []string{"--server", ip, "--port", fmt.Sprint(svc.Port), "--helo", "client.e2e.test",
		"--from", c.from(), "--to", c.rcpt(), "--timeout", "10"}
	switch svc.Security {
	case settings.SecurityStartTLS:
		args = append(args, "-tls")
	case settings.SecurityTLS:
		args = append(args, "-tlsc")
	}
	if svc.Security != settings.SecurityNone {
		args = append(args, "--tls-verify", "--tls-sni", svc.Host)
		if c.s.CAFile != "" {
			args = append(args, "--tls-ca-path", c.s.CAFile)
		}
	}
	cl := c.s.Client
	if cl != nil && cl.MaxTLS != "" {
		args = append(args, "--tls-protocol", swaksVersion[cl.MaxTLS])
	}
	if c.acct.Username != "" {
		mech := ""
		if cl != nil && len(cl.AuthMechs) > 0 {
			mech = strings.Join(cl.AuthMechs, ",")
		}
		if mech != "" {
			args = append(args, "-a", mech)
		} else {
			args = append(args, "-a")
		}
		args = append(args, "-au", c.acct.Username, "-ap", c.acct.Password)
	}
	if cl != nil && cl.MessageFile != "" {
		args = append(args, "--data", "@"+cl.MessageFile)
	}
	args = append(args, extra...)
	return run(c.t, command{client: "swaks", args: args})
}

// msmtp sends msg to rcpt over an SMTP service with msmtp, configured
// from the settings (a config file of its own, mode 0600 as msmtp wants).
func (c *mailClient) msmtp(name, rcpt string, msg []byte) result {
	c.t.Helper()
	svc := c.service(name)
	ip := c.ip(svc.Host)
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "defaults\nsyslog off\nlogfile -\ntimeout 10\n\naccount e2e\nhost %s\nport %d\n", ip, svc.Port)
	fmt.Fprintf(&cfg, "tls %s\ntls_starttls %s\n", onOff(svc.Security != settings.SecurityNone), onOff(svc.Security == settings.SecurityStartTLS))
	if c.s.CAFile != "" {
		fmt.Fprintf(&cfg, "tls_trust_file %s\n", c.s.CAFile)
	}
	// The certificate names the host, not the address msmtp dials.
	fmt.Fprintf(&cfg, "tls_host_override %s\n", svc.Host)
	if c.acct.Username != "" {
		fmt.Fprintf(&cfg, "auth on\nuser %s\npassword %s\n", c.acct.Username, c.acct.Password)
	} else {
		cfg.WriteString("auth off\n")
	}
	fmt.Fprintf(&cfg, "from %s\n\naccount default : e2e\n", c.from())
	path := filepath.Join(c.dir, fmt.Sprintf("msmtprc-%d", fileSeq.Add(1)))
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return run(c.t, command{client: "msmtp", args: []string{"-C", path, "--debug", rcpt}, stdin: msg})
}

// fetchmail fetches the account's mail over an IMAP or POP3 service with
// fetchmail (keeping it on the server), delivering into an mbox file of
// its own; it returns fetchmail's result and what it delivered.
// Implicit TLS uses "ssl"; STARTTLS is forced with sslproto (fetchmail
// would otherwise fall back to plaintext when STARTTLS is missing).
func (c *mailClient) fetchmail(name string) (result, string) {
	c.t.Helper()
	svc := c.service(name)
	ip := c.ip(svc.Host)
	home, err := os.MkdirTemp(c.dir, "fetchmail-")
	if err != nil {
		c.t.Fatal(err)
	}
	mbox := filepath.Join(home, "delivered.mbox")
	quote := func(s string) string { return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"` }
	var rc strings.Builder
	fmt.Fprintf(&rc, "set no syslog\npoll %s protocol %s port %d timeout 10\n", ip, strings.ToUpper(c.protocol(name)), svc.Port)
	fmt.Fprintf(&rc, "  user %s password %s", quote(c.acct.Username), quote(c.acct.Password))
	switch svc.Security {
	case settings.SecurityTLS:
		rc.WriteString(" ssl")
	case settings.SecurityStartTLS:
		rc.WriteString(` sslproto "tls1.2+"`)
	}
	if svc.Security != settings.SecurityNone {
		rc.WriteString(" sslcertck sslcommonname " + quote(svc.Host))
		if c.s.CAFile != "" {
			rc.WriteString(" sslcertfile " + quote(c.s.CAFile))
		}
	}
	fmt.Fprintf(&rc, " keep fetchall mda %s\n", quote("/bin/sh -c 'cat >> "+mbox+"'"))
	rcFile := filepath.Join(home, "fetchmailrc")
	if err := os.WriteFile(rcFile, []byte(rc.String()), 0o600); err != nil {
		c.t.Fatal(err)
	}
	r := run(c.t, fetchmailCommand(home, rcFile))
	data, err := os.ReadFile(mbox)
	if err != nil && !os.IsNotExist(err) {
		c.t.Fatal(err)
	}
	return r, string(data)
}

// fetchmailCommand runs fetchmail once in the foreground with the run
// control file rcFile, keeping every file of its own in home.
//
// The PID file is fetchmail's lock against a second fetchmail. As root
// (these tests' user) its default is /var/run/fetchmail.pid, not one in
// FETCHMAILHOME (man fetchmail, FILES), so the fetchmails of parallel
// steps or test processes exited 8 at once ("another foreground fetchmail
// is running at PID"): each run names its own. The UID list (.fetchids)
// is named too rather than left to FETCHMAILHOME.
func fetchmailCommand(home, rcFile string) command {
	return command{client: "fetchmail",
		args: []string{"-f", rcFile, "--pidfile", filepath.Join(home, "fetchmail.pid"),
			"--idfile", filepath.Join(home, "fetchids"), "-v", "--nodetach"},
		env: []string{"HOME=" + home, "FETCHMAILHOME=" + home}}
}
