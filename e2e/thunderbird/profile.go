//go:build e2e

package thunderbird

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/maillab/maillab/settings"
)

// account is what the profile configures: the customer's incoming and
// outgoing service (either may be absent) and the address their host
// names resolve to. Thunderbird cannot be pointed at the lab's DNS server,
// so the harness asks that server, as the customer's machine would, and
// relays from gates on 127.0.0.1 to that address; Thunderbird resolves
// every name to 127.0.0.1 (network.dns.forceResolve) and still uses the
// customer's host name for TLS (SNI, certificate check) and in its texts.
type account struct {
	acct     settings.Account
	incoming string // service name, e.g. "imaps"; "" for none
	outgoing string // e.g. "submission"; "" for none
	in, out  settings.Service
	address  string
	maxTLS   string // settings.Client.MaxTLS; "" for Thunderbird's default
	// inPort and outPort are the ports Thunderbird dials: the gates' in
	// front of the services (see gate).
	inPort, outPort int
}

// accountFor picks the services Thunderbird uses from the customer's
// settings and resolves their host through the settings' resolver.
func accountFor(ctx context.Context, s *settings.Settings) (account, error) {
	a := account{acct: s.Account0()}
	for _, name := range []string{"imaps", "imap", "pop3s", "pop3"} {
		if svc, ok := s.Services[name]; ok {
			a.incoming, a.in = name, svc
			break
		}
	}
	for _, name := range []string{"submission", "submissions", "smtp"} {
		if svc, ok := s.Services[name]; ok {
			a.outgoing, a.out = name, svc
			break
		}
	}
	if a.incoming == "" && a.outgoing == "" {
		return a, fmt.Errorf("settings have no service Thunderbird uses (have %s)", strings.Join(s.SortedServiceNames(), ", "))
	}
	if s.Client != nil {
		a.maxTLS = s.Client.MaxTLS
	}
	hosts := map[string]bool{}
	if a.incoming != "" {
		hosts[a.in.Host] = true
	}
	if a.outgoing != "" {
		hosts[a.out.Host] = true
	}
	for host := range hosts {
		ip, err := resolve(ctx, s.Resolver, host)
		if err != nil {
			return a, err
		}
		if a.address != "" && a.address != ip {
			return a, fmt.Errorf("hosts resolve to %s and %s: one forced address cannot serve both", a.address, ip)
		}
		a.address = ip
	}
	return a, nil
}

// resolve asks the resolver (host:port; empty for the system's) for an
// IPv4 address of host.
func resolve(ctx context.Context, resolver, host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return host, nil
	}
	r := net.DefaultResolver
	if resolver != "" {
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, resolver)
		}}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := r.LookupIP(ctx, "ip4", host)
	if err != nil {
		return "", fmt.Errorf("resolve %s through %s: %w", host, resolver, err)
	}
	return ips[0].String(), nil
}

// socketType is Thunderbird's mail.server.*.socketType and
// mail.smtpserver.*.try_ssl (nsMsgSocketType: 0 plain, 2 STARTTLS
// required, 3 SSL/TLS).
func socketType(security string) int {
	switch security {
	case settings.SecurityStartTLS:
		return 2
	case settings.SecurityTLS:
		return 3
	}
	return 0
}

// tlsVersionPref is security.tls.version.max for a settings TLS version
// (NSS: 1 = TLS 1.0 ... 4 = TLS 1.3).
var tlsVersionPref = map[string]int{"1.0": 1, "1.1": 2, "1.2": 3, "1.3": 4}

// prefs returns the user.js of the profile.
func (a account) prefs(marionette bool) string {
	var b strings.Builder
	pref := func(name string, v any) {
		switch v := v.(type) {
		case string:
			q, _ := json.Marshal(v)
			fmt.Fprintf(&b, "user_pref(%q, %s);\n", name, q)
		default:
			fmt.Fprintf(&b, "user_pref(%q, %v);\n", name, v)
		}
	}
	// Accounts: account1 is the customer's, account2 the Local Folders
	// every profile has.
	pref("mail.accountmanager.accounts", "account1,account2")
	pref("mail.accountmanager.defaultaccount", "account1")
	pref("mail.accountmanager.localfoldersserver", "server2")
	pref("mail.account.account1.identities", "id1")
	pref("mail.account.account1.server", "server1")
	pref("mail.account.account2.server", "server2")
	pref("mail.server.server2.type", "none")
	pref("mail.server.server2.hostname", "Local Folders")
	pref("mail.server.server2.name", "Local Folders")
	pref("mail.server.server2.userName", "nobody")
	pref("mail.identity.id1.fullName", "Customer")
	pref("mail.identity.id1.useremail", a.acct.Email)
	pref("mail.identity.id1.valid", true)
	if a.incoming != "" {
		info, _ := settings.LookupService(a.incoming)
		pref("mail.server.server1.type", info.Protocol)
		pref("mail.server.server1.hostname", a.in.Host)
		pref("mail.server.server1.port", a.inPort)
		pref("mail.server.server1.socketType", socketType(a.in.Security))
		pref("mail.server.server1.authMethod", 3) // normal password
		pref("mail.server.server1.userName", a.acct.Username)
		pref("mail.server.server1.name", a.acct.Email)
		pref("mail.server.server1.login_at_startup", true)
		pref("mail.server.server1.check_new_mail", true)
	} else {
		// An account needs a server; a Local Folders-only profile
		// would start the account wizard.
		pref("mail.server.server1.type", "none")
		pref("mail.server.server1.hostname", "Customer")
		pref("mail.server.server1.userName", "customer")
	}
	if a.outgoing != "" {
		pref("mail.smtpservers", "smtp1")
		pref("mail.smtp.defaultserver", "smtp1")
		pref("mail.identity.id1.smtpServer", "smtp1")
		pref("mail.smtpserver.smtp1.hostname", a.out.Host)
		pref("mail.smtpserver.smtp1.port", a.outPort)
		pref("mail.smtpserver.smtp1.try_ssl", socketType(a.out.Security))
		pref("mail.smtpserver.smtp1.authMethod", 3)
		pref("mail.smtpserver.smtp1.username", a.acct.Username)
	}
	pref("network.dns.forceResolve", "127.0.0.1")
	if v, ok := tlsVersionPref[a.maxTLS]; ok {
		pref("security.tls.version.max", v)
	}
	for name, v := range quietPrefs() {
		pref(name, v)
	}
	if marionette {
		// Marionette listens on a free port it writes to
		// MarionetteActivePort; its "recommended" prefs are not set, so
		// Thunderbird behaves as a trainee's would.
		pref("marionette.port", 0)
		pref("marionette.prefs.recommended", false)
	}
	return b.String()
}

// quietPrefs turn first run, telemetry, updates and start pages off: the
// window shows the account and nothing else.
func quietPrefs() map[string]any {
	return map[string]any{
		"mail.shell.checkDefaultClient":                               false,
		"mail.rights.version":                                         1,
		"mailnews.start_page.enabled":                                 false,
		"mail.provider.enabled":                                       false,
		"app.update.enabled":                                          false,
		"app.update.auto":                                             false,
		"app.update.checkInstallTime":                                 false,
		"app.donation.eoy.version.viewed":                             999,
		"datareporting.policy.dataSubmissionEnabled":                  false,
		"datareporting.healthreport.uploadEnabled":                    false,
		"toolkit.telemetry.enabled":                                   false,
		"toolkit.telemetry.unified":                                   false,
		"browser.aboutConfig.showWarning":                             false,
		"extensions.update.enabled":                                   false,
		"mail.cloud_files.enabled":                                    false,
		"mailnews.auto_config.fetchFromISP.enabled":                   false,
		"calendar.integration.notify":                                 false,
		"mail.spam.version":                                           99,
		"mail.warn_on_send_accel_key":                                 false, // Ctrl+Enter sends without asking
		"toolkit.startup.max_resumed_crashes":                         -1,
		"browser.sessionstore.resume_from_crash":                      false,
		"network.captive-portal-service.enabled":                      false,
		"network.connectivity-service.enabled":                        false,
		"security.OCSP.enabled":                                       0,
		"extensions.getAddons.cache.enabled":                          false,
		"datareporting.policy.dataSubmissionPolicyBypassNotification": true,
	}
}

// sdrOnce builds the SDR helper once per test binary.
var (
	sdrOnce sync.Once
	sdrPath string
	sdrErr  error
)

// buildSDR compiles testdata/sdrencrypt.c into dir.
func buildSDR(gcc, dir string) (string, error) {
	sdrOnce.Do(func() {
		src, err := filepath.Abs(filepath.Join("testdata", "sdrencrypt.c"))
		if err != nil {
			sdrErr = err
			return
		}
		sdrPath = filepath.Join(dir, "sdrencrypt")
		out, err := exec.Command(gcc, "-O1", "-o", sdrPath, src, "-l:libnss3.so").CombinedOutput()
		if err != nil {
			sdrErr = fmt.Errorf("build %s: %w\n%s", src, err, out)
		}
	})
	return sdrPath, sdrErr
}

// writeProfile makes a fresh profile in dir: user.js, an NSS database
// that trusts the lab CA, and logins.json with the customer's password
// for the incoming and the outgoing server.
func writeProfile(ctx context.Context, dir string, tools map[string]string, sdr string, a account, caFile string) error {
	if err := os.WriteFile(filepath.Join(dir, "user.js"), []byte(a.prefs(true)), 0o600); err != nil {
		return err
	}
	db := "sql:" + dir
	runTool := func(name string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
	if _, err := runTool(tools["certutil"], "-N", "-d", db, "--empty-password"); err != nil {
		return err
	}
	if caFile != "" {
		// -t C,, : a CA trusted to issue server certificates.
		if _, err := runTool(tools["certutil"], "-A", "-d", db, "-n", "maillab lab CA", "-t", "C,,", "-i", caFile); err != nil {
			return err
		}
	}
	out, err := runTool(sdr, db, a.acct.Username, a.acct.Password)
	if err != nil {
		return err
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2 {
		return fmt.Errorf("sdrencrypt printed %d lines, want 2", len(lines))
	}
	enc := make([]string, 2)
	for i, l := range lines {
		raw, err := hex.DecodeString(l)
		if err != nil {
			return fmt.Errorf("sdrencrypt output: %w", err)
		}
		enc[i] = base64.StdEncoding.EncodeToString(raw)
	}
	// Thunderbird looks a server's password up by origin and realm
	// "imap://host", "pop3://host", "smtp://host" (no port).
	type login struct {
		ID                  int     `json:"id"`
		Hostname            string  `json:"hostname"`
		HTTPRealm           string  `json:"httpRealm"`
		FormSubmitURL       *string `json:"formSubmitURL"`
		UsernameField       string  `json:"usernameField"`
		PasswordField       string  `json:"passwordField"`
		EncryptedUsername   string  `json:"encryptedUsername"`
		EncryptedPassword   string  `json:"encryptedPassword"`
		GUID                string  `json:"guid"`
		EncType             int     `json:"encType"`
		TimeCreated         int64   `json:"timeCreated"`
		TimeLastUsed        int64   `json:"timeLastUsed"`
		TimePasswordChanged int64   `json:"timePasswordChanged"`
		TimesUsed           int     `json:"timesUsed"`
	}
	var origins []string
	if a.incoming != "" {
		info, _ := settings.LookupService(a.incoming)
		origins = append(origins, info.Protocol+"://"+a.in.Host)
	}
	if a.outgoing != "" {
		origins = append(origins, "smtp://"+a.out.Host)
	}
	now := time.Now().UnixMilli()
	var logins []login
	for i, o := range origins {
		logins = append(logins, login{ID: i + 1, Hostname: o, HTTPRealm: o,
			EncryptedUsername: enc[0], EncryptedPassword: enc[1],
			GUID:    fmt.Sprintf("{6d61696c-6c61-6200-0000-%012d}", i+1),
			EncType: 1, TimeCreated: now, TimeLastUsed: now, TimePasswordChanged: now, TimesUsed: 1})
	}
	data, err := json.Marshal(map[string]any{
		"nextId": len(logins) + 1, "logins": logins, "potentiallyVulnerablePasswords": []string{},
		"dismissedBreachAlertsByLoginGUID": map[string]any{}, "version": 3})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "logins.json"), data, 0o600)
}
