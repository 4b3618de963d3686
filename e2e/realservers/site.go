//go:build e2e

package realservers

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maillab/maillab/settings"
)

// The test domain (RFC 2606 §2 reserves .test) and its mail host.
const (
	Domain   = "realmail.test"
	MailHost = "mail." + Domain
)

// Dovecot instance names of a Site: the good one, the one without TLS,
// and one per broken certificate (named like the Cert).
const (
	DovecotGood  = "good"
	DovecotNoSSL = "nossl"
	// DovecotOAuth accepts OAuth 2.0 bearer tokens only (auth_mechanisms
	// = xoauth2 oauthbearer, passdb oauth2), as a provider that has
	// turned password logins off.
	DovecotOAuth = "oauth"
	// DovecotTLS10 speaks TLS 1.0 and nothing newer: ssl_min_protocol =
	// TLSv1, and OpenSSL's own configuration (OPENSSL_CONF, passed by
	// import_environment) caps it with MaxProtocol = TLSv1, as an old
	// server's OpenSSL does.
	DovecotTLS10 = "tls10"
	// DovecotQuota enforces a quota of quotaLimit on every mailbox
	// (quota plugin, maildir quota) and runs Dovecot's quota-status
	// policy service for Postfix.
	DovecotQuota = "quota"
)

// quotaLimit is DovecotQuota's quota_rule: smaller than any message.
const quotaLimit = "100B"

// Postfix listener names of a Site, besides "submission-<cert>" for each
// broken certificate.
const (
	// ListenerSMTP is a port-25-style MX: STARTTLS offered, no SASL,
	// relaying refused (reject_unauth_destination).
	ListenerSMTP = "smtp"
	// ListenerSubmission is Debian's submission service (SubmissionOptions).
	ListenerSubmission = "submission"
	// ListenerSubmissions is Debian's submissions service (implicit TLS).
	ListenerSubmissions = "submissions"
	// ListenerTLSAuthOnly offers STARTTLS without requiring it, and AUTH
	// only after it (smtpd_tls_auth_only = yes).
	ListenerTLSAuthOnly = "submission-tls-auth-only"
	// ListenerSmall is submission with message_size_limit = SmallSizeLimit.
	ListenerSmall = "submission-small"
	// ListenerNoTLS is submission with smtpd_tls_security_level = none.
	ListenerNoTLS = "submission-notls"
	// ListenerTLSUnavailable is submission whose certificate file does not
	// exist: Postfix cannot set up TLS, yet the listener requires it.
	ListenerTLSUnavailable = "submission-tls-unavailable"
	// ListenerClientBlocked is submission behind an IP access list
	// (check_client_access cidr:) that rejects every client address.
	ListenerClientBlocked = "submission-client-blocked"
	// ListenerTLS10 is submission that speaks TLS 1.0 only
	// (smtpd_tls_protocols and smtpd_tls_mandatory_protocols exclude
	// every later version; WeakTLSCipherList lets OpenSSL do TLS 1.0).
	ListenerTLS10 = "submission-tls10"
	// ListenerQuota is submission that asks DovecotQuota's quota-status
	// service about each recipient (check_policy_service), as Dovecot's
	// documentation sets it up, so a full mailbox is refused at RCPT.
	ListenerQuota = "submission-quota"
	// ListenerNoSharedCipher is submission whose tls_medium_cipherlist
	// names 3DES only, as in configurations copied from old guides. This
	// OpenSSL has no such cipher left: Postfix still answers STARTTLS
	// "220 2.0.0 Ready to start TLS", then logs "error setting cipher
	// grade: medium ... no cipher match" and drops the connection.
	ListenerNoSharedCipher = "submission-3des"
	// ListenerOAuth is submission whose SASL is DovecotOAuth's.
	ListenerOAuth = "submission-oauth"
	// ListenerRateLimited is submission that accepts one connection per
	// client address and minute (smtpd_client_connection_rate_limit = 1,
	// no exceptions).
	ListenerRateLimited = "submission-ratelimited"
)

// postfixExtra is the main.cf text every Site adds: the access list of
// ListenerClientBlocked (a parameter of our own, as Debian's master.cf
// names $mua_client_restrictions) and an attachment filter of the kind
// found in Postfix guides, which rejects executable attachments for every
// listener (no other case sends one).
const postfixExtra = `maillab_blocked_client_restrictions = check_client_access cidr:$config_directory/blocked-clients.cidr, permit_sasl_authenticated, reject
mime_header_checks = regexp:$config_directory/mime_header_checks
`

// oauthIntrospection is DovecotOAuth's oauth2 passdb configuration. The
// token service's address is the discard port, where nothing listens: no
// case presents a token, and a password never reaches the passdb (the
// mechanisms PLAIN and LOGIN are not offered).
const oauthIntrospection = `introspection_mode = post
introspection_url = http://127.0.0.1:9/introspect
username_attribute = username
`

// dovecotQuotaConf is DovecotQuota's addition to dovecot.conf, with the
// quota rule and the quota-status socket to fill in. The replies are the
// ones Dovecot's documentation gives for Postfix.
const dovecotQuotaConf = `mail_plugins = $mail_plugins quota
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=%s
  quota_status_success = DUNNO
  quota_status_nouser = DUNNO
  quota_status_overquota = "552 5.2.2 Mailbox is full"
}
service quota-status {
  executable = quota-status -p postfix
  user = mail
  client_limit = 1
  unix_listener %s {
    mode = 0666
  }
}
`

// opensslTLS10 is the OpenSSL configuration of DovecotTLS10.
const opensslTLS10 = `openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MaxProtocol = TLSv1
CipherString = ` + WeakTLSCipherList + `
`

// tls10Only is the Postfix protocol list of ListenerTLS10.
const tls10Only = "!SSLv2,!SSLv3,!TLSv1.1,!TLSv1.2,!TLSv1.3"

// extraListeners are Postfix listeners that cases declare in files of
// their own (init functions append to it, and may add tables to
// postfixFiles), so that adding such a case touches no shared list.
var extraListeners []SMTPListener

// postfixFiles are the tables postfixExtra names.
var postfixFiles = map[string]string{
	"blocked-clients.cidr": "# Every loopback client: the listener that uses this list refuses all.\n127.0.0.0/8 REJECT Access denied\n",
	"mime_header_checks":   `/^Content-(Disposition|Type):.*name\s*=\s*"?([^"]*\.(bat|cmd|com|exe|js|pif|scr|vbs))"?\s*$/ REJECT Attachment type not allowed. File "$2" has the unacceptable extension "$3"` + "\n",
}

// SmallSizeLimit is the message_size_limit of ListenerSmall, in bytes.
const SmallSizeLimit = 102400

// ListenerCert returns the name of the submission listener that presents
// cert.
func ListenerCert(cert Cert) string { return "submission-" + string(cert) }

// DovecotBackend names a Dovecot listener of a Site: protocol "imap",
// "imaps", "pop3" or "pop3s" of the named instance.
func DovecotBackend(instance, listener string) string { return listener + "@" + instance }

// Site is a mail domain served by real servers on 127.0.0.1: Postfix with
// a listener per configuration, Dovecot instances per certificate, a DNS
// server for the domain, and the accounts.
type Site struct {
	// Domain and Host are the mail domain and its mail host.
	Domain, Host string
	// Certs are the test CA and the servers' certificates.
	Certs *CertSet
	// DNS serves the domain; give DNS.Addr to clients as their resolver.
	DNS *DNSServer
	// MailDir is the base of the Maildirs.
	MailDir string
	// Accounts are the accounts by local part.
	Accounts map[string]Account
	// Dovecot are the Dovecot instances by name (DovecotGood,
	// DovecotNoSSL, or a Cert's name).
	Dovecot map[string]*Dovecot
	// Postfix is the Postfix instance with every listener.
	Postfix *Postfix
	// Versions name the software under test.
	Versions Versions
	// Published are the fronts the domain's SRV records point at, by
	// settings service name.
	Published map[string]*Front
	// Other are the listeners of other server families (nginx, HAProxy,
	// ...), by backend name, as Backend finds them.
	Other map[string]string
	// OtherVersions name the other families' software, by family, for
	// their recordings' header.
	OtherVersions map[string]string
	// Plain are the backends of Other that take no PROXY v1 header: they
	// get plain fronts (NewPlainFront).
	Plain map[string]bool

	mu         sync.Mutex
	nextClient int
}

// SiteOptions configures StartSite.
type SiteOptions struct {
	// Users are the local parts of the accounts; each gets a password.
	Users []string
	// PassdbExtra are Dovecot passdb extra fields by local part (see
	// Account.PassdbExtra).
	PassdbExtra map[string]string
	// DovecotCerts are the broken certificates that get a Dovecot
	// instance of their own (each also gets a Postfix listener).
	DovecotCerts []Cert
}

// StartSite starts everything; it is all stopped when the test ends.
func StartSite(t testing.TB, opts SiteOptions) *Site {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	versions, err := ReadVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := &Site{Domain: Domain, Host: MailHost, Accounts: map[string]Account{}, Dovecot: map[string]*Dovecot{}, Versions: versions, Published: map[string]*Front{},
		Other: map[string]string{}, OtherVersions: map[string]string{}, Plain: map[string]bool{}}
	base := workDir(t, "site")
	certDir := filepath.Join(base, "certs")
	if err := os.Mkdir(certDir, 0o755); err != nil {
		t.Fatal(err)
	}
	hosts := []string{MailHost, "smtp." + Domain, "imap." + Domain, "pop." + Domain}
	if s.Certs, err = NewCertSet(certDir, Domain, hosts); err != nil {
		t.Fatal(err)
	}

	// Maildirs belong to the mail user, as Dovecot's userdb and
	// Postfix's virtual_uid_maps say.
	mail, err := lookupIDs("mail")
	if err != nil {
		t.Fatal(err)
	}
	s.MailDir = filepath.Join(base, "mail")
	if err := os.Mkdir(s.MailDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(s.MailDir, mail.uid, mail.gid); err != nil {
		t.Fatal(err)
	}
	var accounts []Account
	for _, u := range opts.Users {
		a := Account{Email: u + "@" + Domain, Password: "pw-" + u + "-" + randomToken(), PassdbExtra: opts.PassdbExtra[u]}
		s.Accounts[u] = a
		accounts = append(accounts, a)
	}
	users := filepath.Join(base, "users")
	if err := WritePasswdFile(users, accounts); err != nil {
		t.Fatal(err)
	}

	// Dovecot first: Postfix's SASL goes through its auth socket.
	good := StartDovecot(t, DovecotConfig{Name: DovecotGood, Certs: s.Certs, Cert: CertGood, Users: users, MailDir: s.MailDir,
		AuthSocket: filepath.Join(base, "auth-postfix")})
	s.Dovecot[DovecotGood] = good
	s.Dovecot[DovecotNoSSL] = StartDovecot(t, DovecotConfig{Name: DovecotNoSSL, SSL: DovecotSSLNo, Users: users, MailDir: s.MailDir})
	oauthConf := filepath.Join(base, "dovecot-oauth2.conf.ext")
	writeFile(t, oauthConf, []byte(oauthIntrospection), 0o644)
	oauth := StartDovecot(t, DovecotConfig{Name: DovecotOAuth, Certs: s.Certs, Cert: CertGood, Users: users, MailDir: s.MailDir,
		AuthSocket: filepath.Join(base, "auth-postfix-oauth"),
		Passdb:     "auth_mechanisms = xoauth2 oauthbearer\npassdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = " + oauthConf + "\n}"})
	s.Dovecot[DovecotOAuth] = oauth
	tls10Conf := filepath.Join(base, "openssl-tls10.cnf")
	writeFile(t, tls10Conf, []byte(opensslTLS10), 0o644)
	s.Dovecot[DovecotTLS10] = StartDovecot(t, DovecotConfig{Name: DovecotTLS10, Certs: s.Certs, Cert: CertGood, Users: users, MailDir: s.MailDir,
		Extra: "ssl_min_protocol = TLSv1\nssl_cipher_list = " + WeakTLSCipherList + "\nimport_environment = TZ OPENSSL_CONF=" + tls10Conf})
	quotaSocket := filepath.Join(base, "quota-status")
	s.Dovecot[DovecotQuota] = StartDovecot(t, DovecotConfig{Name: DovecotQuota, Certs: s.Certs, Cert: CertGood, Users: users, MailDir: s.MailDir,
		Extra: fmt.Sprintf(dovecotQuotaConf, quotaLimit, quotaSocket)})
	for _, c := range opts.DovecotCerts {
		cfg := DovecotConfig{Name: string(c), Certs: s.Certs, Cert: c, Users: users, MailDir: s.MailDir}
		if c == CertWeak {
			cfg.Extra = "ssl_cipher_list = " + WeakTLSCipherList
		}
		s.Dovecot[string(c)] = StartDovecot(t, cfg)
	}

	listeners := []SMTPListener{
		{Name: ListenerSMTP},
		{Name: ListenerSubmission, Options: SubmissionOptions},
		{Name: ListenerSubmissions, Options: SubmissionsOptions},
		{Name: ListenerTLSAuthOnly, Options: []string{
			"smtpd_tls_security_level=may", "smtpd_sasl_auth_enable=yes", "smtpd_tls_auth_only=yes",
			"smtpd_relay_restrictions=permit_sasl_authenticated,reject",
		}},
		{Name: ListenerSmall, Options: append(slices.Clone(SubmissionOptions), fmt.Sprintf("message_size_limit=%d", SmallSizeLimit))},
		{Name: ListenerNoTLS, Options: []string{
			"smtpd_tls_security_level=none", "smtpd_sasl_auth_enable=yes",
			"smtpd_client_restrictions=permit_sasl_authenticated,reject",
			"smtpd_relay_restrictions=permit_sasl_authenticated,reject",
		}},
		{Name: ListenerTLSUnavailable, Options: append(slices.Clone(SubmissionOptions),
			"smtpd_tls_cert_file="+filepath.Join(certDir, "missing.crt"), "smtpd_tls_key_file="+filepath.Join(certDir, "missing.key"))},
		{Name: ListenerClientBlocked, Options: append(slices.Clone(SubmissionOptions), "smtpd_client_restrictions=$maillab_blocked_client_restrictions")},
		{Name: ListenerTLS10, Options: append(slices.Clone(SubmissionOptions), "smtpd_tls_protocols="+tls10Only, "smtpd_tls_mandatory_protocols="+tls10Only,
			"tls_medium_cipherlist="+WeakTLSCipherList)},
		{Name: ListenerQuota, Options: append(slices.Clone(SubmissionOptions), "smtpd_recipient_restrictions=check_policy_service,unix:"+quotaSocket)},
		{Name: ListenerNoSharedCipher, Options: append(slices.Clone(SubmissionOptions), "smtpd_tls_protocols=!SSLv2,!SSLv3,!TLSv1.3", "smtpd_tls_mandatory_protocols=!SSLv2,!SSLv3,!TLSv1.3",
			"tls_medium_cipherlist=3DES:@SECLEVEL=0")},
		{Name: ListenerOAuth, Options: append(slices.Clone(SubmissionOptions), "smtpd_sasl_path="+oauth.Config.AuthSocket)},
		{Name: ListenerRateLimited, Options: append(slices.Clone(SubmissionOptions),
			"smtpd_client_connection_rate_limit=1", "smtpd_client_event_limit_exceptions=")},
	}
	listeners = append(listeners, extraListeners...)
	for _, c := range opts.DovecotCerts {
		o := append(slices.Clone(SubmissionOptions), "smtpd_tls_cert_file="+s.Certs.CertFile(c), "smtpd_tls_key_file="+s.Certs.KeyFile(c))
		if c == CertWeak {
			o = append(o, "tls_medium_cipherlist="+WeakTLSCipherList)
		}
		listeners = append(listeners, SMTPListener{Name: ListenerCert(c), Options: o})
	}
	s.Postfix = StartPostfix(t, PostfixConfig{Domain: Domain, Hostname: MailHost, Certs: s.Certs, Accounts: accounts,
		MailDir: s.MailDir, AuthSocket: good.Config.AuthSocket, Listeners: listeners,
		Extra: postfixExtra, Files: postfixFiles})

	// The domain's DNS: the mail host, MX, and RFC 6186 / RFC 8314 §5.1
	// SRV records pointing at fronts of the good servers.
	records := []string{"@ 300 IN MX 10 " + MailHost + "."}
	for _, h := range append(slices.Clone(hosts), "www."+Domain) {
		records = append(records, h+". 300 IN A 127.0.0.1")
	}
	for _, svc := range []struct{ name, backend string }{
		{"submission", ListenerSubmission}, {"submissions", ListenerSubmissions},
		{"imap", DovecotBackend(DovecotGood, "imap")}, {"imaps", DovecotBackend(DovecotGood, "imaps")},
		{"pop3", DovecotBackend(DovecotGood, "pop3")}, {"pop3s", DovecotBackend(DovecotGood, "pop3s")},
	} {
		f := s.NewFront(t, svc.backend)
		s.Published[svc.name] = f
		records = append(records, fmt.Sprintf("_%s._tcp 300 IN SRV 0 1 %d %s.", svc.name, f.Port, MailHost))
	}
	if s.DNS, err = NewDNSServer(Domain, records...); err != nil {
		t.Fatal(err)
	}
	if err := s.DNS.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.DNS.Close(); err != nil {
			t.Errorf("dns: %v", err)
		}
	})
	return s
}

// Backend returns the "127.0.0.1:port" of a Postfix listener name or a
// DovecotBackend name; the test fails for an unknown name.
func (s *Site) Backend(t testing.TB, name string) string {
	t.Helper()
	if addr, ok := s.Postfix.Addr[name]; ok {
		return addr
	}
	if addr, ok := s.Other[name]; ok {
		return addr
	}
	if listener, instance, ok := strings.Cut(name, "@"); ok {
		if d, ok := s.Dovecot[instance]; ok {
			addr := map[string]string{"imap": d.IMAP, "imaps": d.IMAPS, "pop3": d.POP3, "pop3s": d.POP3S}[listener]
			if addr != "" {
				return addr
			}
		}
	}
	t.Fatalf("no backend %q", name)
	return ""
}

// ClientIP returns a loopback address no other client of the site has
// used: 127.0.1.1, 127.0.1.2, ... 127.0.1.254, 127.0.2.1, ...
func (s *Site) ClientIP() net.IP {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nextClient
	s.nextClient++
	return net.IPv4(127, 0, byte(1+n/254), byte(1+n%254)).To4()
}

// NewFront returns a front to the named backend with a client address of
// its own; it is closed when the test ends.
func (s *Site) NewFront(t testing.TB, backend string) *Front {
	t.Helper()
	var f *Front
	var err error
	if s.Plain[backend] {
		f, err = NewPlainFront(s.Backend(t, backend))
	} else {
		f, err = NewFront(s.Backend(t, backend), s.ClientIP())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("front %s: %v", f.Addr, err)
		}
	})
	return f
}

// Messages returns how many messages the account's INBOX holds on disk
// (Maildir new/ and cur/).
func (s *Site) Messages(a Account) (int, error) {
	n := 0
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(s.MailDir, a.Domain(), a.Local(), "Maildir", sub))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return 0, err
		}
		n += len(entries)
	}
	return n, nil
}

// WaitMessages waits until the account holds at least n messages or ctx
// ends, and returns the count.
func (s *Site) WaitMessages(ctx context.Context, a Account, n int) (int, error) {
	for {
		got, err := s.Messages(a)
		if err != nil || got >= n {
			return got, err
		}
		select {
		case <-ctx.Done():
			return got, fmt.Errorf("%s has %d message(s), want %d: %w", a.Email, got, n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Service builds the settings of one service reached through front.
func (s *Site) Service(front *Front, security string) settings.Service {
	return settings.Service{Host: s.Host, Address: "127.0.0.1", Port: front.Port, Security: security}
}
