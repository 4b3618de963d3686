//go:build e2e

package realservers

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CourierPackages are the Debian packages of Courier's IMAP and POP3
// servers and of the libraries they need that Debian 12 with Postfix and
// Dovecot lacks. courier-base pulls in courier-mta's alternatives and
// conflicts with nothing, but courier-imap and courier-pop depend on a
// mail-transport-agent and courier-mta conflicts with postfix: the harness
// runs them unpacked (UnpackDeb), never installed. gamin provides the
// file-alteration monitor imapd asks for after a login; without it every
// login gets an "[ALERT] Filesystem notification initialization error".
var CourierPackages = []string{
	"courier-base", "courier-imap", "courier-pop", "courier-mta",
	"courier-authlib", "courier-authdaemon", "courier-authlib-userdb",
	"libcourier-unicode4", "libltdl7", "libgamin0", "gamin",
}

// Listener names of the Courier instance ("<listener>@courier").
const (
	// CourierIMAP is IMAP on a plaintext port with STARTTLS.
	CourierIMAP = "imap@courier"
	// CourierIMAPS is IMAP with implicit TLS (couriertls -server).
	CourierIMAPS = "imaps@courier"
	// CourierPOP3 is POP3 with STLS.
	CourierPOP3 = "pop3@courier"
	// CourierPOP3S is POP3 with implicit TLS.
	CourierPOP3S = "pop3s@courier"
	// CourierIMAPTLSRequired and CourierPOP3TLSRequired refuse logins
	// before STARTTLS/STLS (IMAP_TLS_REQUIRED=1, POP3_TLS_REQUIRED=1).
	CourierIMAPTLSRequired = "imap-tls-required@courier"
	CourierPOP3TLSRequired = "pop3-tls-required@courier"
	// CourierIMAPSExpired and CourierPOP3SExpired present CertExpired.
	CourierIMAPSExpired = "imaps-expired@courier"
	CourierPOP3SExpired = "pop3s-expired@courier"
	// CourierSubmission is Courier's esmtpd as esmtpd-msa configures it
	// (port 587), with STARTTLS and AUTH after it (ESMTPAUTH_TLS).
	CourierSubmission = "submission@courier"
)

// CourierConfig configures StartCourier.
type CourierConfig struct {
	// Debs are the unpacked CourierPackages.
	Debs []UnpackedDeb
	// Certs holds the certificates the listeners present.
	Certs *CertSet
	// Accounts are the logins (Courier's userdb) and the mailboxes.
	Accounts []Account
	// MailDir is the base of the Maildirs (<MailDir>/<domain>/<user>/Maildir,
	// owned by the system user mail), the ones Dovecot serves.
	MailDir string
}

// Courier is a running Courier-IMAP and Courier POP3 (couriertcpd, one per
// listener, and authdaemond with the userdb module) from the unpacked
// packages, with the package's own configuration files: their defaults
// (the 5 s delay of a refused login in authlib, MAXPERIP) stay on.
//
// The binaries have their paths compiled in: /etc/courier for the
// configuration and userdb, /usr/lib/courier for the login programs and
// authlib's modules, /run/courier/authdaemon/socket for the
// authentication daemon, /usr/libexec/gam_server. The harness gives them
// all in a mount namespace of its own (unshare --mount): /usr and /etc as
// overlays of the unpacked packages and the test's configuration over the
// system's (writes to /etc go to the test's directory), /run from the
// test's directory, and copies of /etc/passwd and /etc/group with the
// user courier (couriertls -user=courier) that courier-base's postinst
// would add. The system's /usr, /etc and /run stay as they are. The
// namespace has its own PIDs too: couriertcpd leaves the process group
// the harness stops, and the end of the namespace's init ends it.
//
// Courier takes no PROXY header: reach it through a plain front
// (Site.Plain); it sees every client as 127.0.0.1.
type Courier struct {
	// Addr maps the listener names to "127.0.0.1:port".
	Addr map[string]string
	// Dir holds the configuration, the namespace's /run and the log.
	Dir string
	// Version is courier-imap's package version.
	Version string

	proc *process
}

// courierListener is one couriertcpd.
type courierListener struct {
	name     string
	pop3     bool
	smtp     bool
	implicit bool
	cert     Cert
	// env are settings of the configuration files the listener changes.
	env []string
}

var courierListeners = []courierListener{
	{name: CourierIMAP, cert: CertGood},
	{name: CourierIMAPS, implicit: true, cert: CertGood},
	{name: CourierPOP3, pop3: true, cert: CertGood},
	{name: CourierPOP3S, pop3: true, implicit: true, cert: CertGood},
	{name: CourierIMAPTLSRequired, cert: CertGood, env: []string{"IMAP_TLS_REQUIRED=1"}},
	{name: CourierPOP3TLSRequired, pop3: true, cert: CertGood, env: []string{"POP3_TLS_REQUIRED=1"}},
	{name: CourierIMAPSExpired, implicit: true, cert: CertExpired},
	{name: CourierPOP3SExpired, pop3: true, implicit: true, cert: CertExpired},
	{name: CourierSubmission, smtp: true, cert: CertGood},
}

// StartCourier starts Courier's listeners; they are stopped when the test
// ends.
func StartCourier(t testing.TB, cfg CourierConfig) *Courier {
	t.Helper()
	c := &Courier{Addr: map[string]string{}, Dir: workDir(t, "courier")}
	var usrs []string
	for _, d := range cfg.Debs {
		if d.Package == "courier-imap" {
			c.Version = d.Version
		}
		// The packages' /etc/courier is copied below; /usr is overlaid.
		if _, err := os.Stat(filepath.Join(d.Root, "usr")); err == nil {
			usrs = append(usrs, filepath.Join(d.Root, "usr"))
		}
	}
	dir := c.Dir
	for _, d := range []string{"etc/courier", "etc-upper", "etc-work", "run/courier/authdaemon", "var-upper", "var-work", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range cfg.Debs {
		src := filepath.Join(d.Root, "etc/courier")
		entries, err := os.ReadDir(src)
		if err != nil {
			continue
		}
		for _, e := range entries {
			switch {
			case e.Type().IsRegular():
				copyFile(t, filepath.Join(src, e.Name()), filepath.Join(dir, "etc/courier", e.Name()), 0o644)
			case e.IsDir():
				sub, err := os.ReadDir(filepath.Join(src, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Join(dir, "etc/courier", e.Name()), 0o755); err != nil {
					t.Fatal(err)
				}
				for _, f := range sub {
					if f.Type().IsRegular() {
						copyFile(t, filepath.Join(src, e.Name(), f.Name()), filepath.Join(dir, "etc/courier", e.Name(), f.Name()), 0o644)
					}
				}
			}
		}
	}
	// authdaemond: the userdb module only (the package's default is PAM,
	// the system's users).
	// The MTA's tables: this host, its hosted domain (addresses looked
	// up whole in the userdb), the domains it accepts mail for.
	writeFile(t, filepath.Join(dir, "etc/courier/me"), []byte(MailHost+"\n"), 0o644)
	writeFile(t, filepath.Join(dir, "etc/courier/defaultdomain"), []byte(Domain+"\n"), 0o644)
	writeFile(t, filepath.Join(dir, "etc/courier/locals"), []byte("localhost\n"), 0o644)
	for _, d := range []string{"hosteddomains", "esmtpacceptmailfor.dir"} {
		if err := os.MkdirAll(filepath.Join(dir, "etc/courier", d), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "etc/courier", d, "maillab"), []byte(Domain+"\n"), 0o644)
	}
	// courier-base's postinst points /usr/bin/makedat at makedat.courier
	// (update-alternatives); the make* scripts run it by that name.
	if err := os.Symlink("/usr/lib/courier/makedat", filepath.Join(dir, "usr/bin/makedat")); err != nil {
		t.Fatal(err)
	}
	rc, err := os.ReadFile(filepath.Join(dir, "etc/courier/authdaemonrc"))
	if err != nil {
		t.Fatalf("courier: %v (is %s among the packages?)", err, "courier-authdaemon")
	}
	rc = []byte(strings.Replace(string(rc), "\nauthmodulelist=\"authpam\"", "\nauthmodulelist=\"authuserdb\"", 1))
	if !strings.Contains(string(rc), "\nauthmodulelist=\"authuserdb\"") {
		t.Fatal("courier: authdaemonrc has no authmodulelist=\"authpam\" line to replace")
	}
	writeFile(t, filepath.Join(dir, "etc/courier/authdaemonrc"), rc, 0o644)
	passwd, group, err := withSystemUsers("/var/lib/courier", "courier")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "etc/passwd"), passwd, 0o644)
	writeFile(t, filepath.Join(dir, "etc/group"), group, 0o644)
	mail, err := lookupIDs("mail")
	if err != nil {
		t.Fatal(err)
	}
	var userdb strings.Builder
	for _, a := range cfg.Accounts {
		hash, err := sha512Crypt(a.Password)
		if err != nil {
			t.Fatal(err)
		}
		home := filepath.Join(cfg.MailDir, a.Domain(), a.Local())
		fmt.Fprintf(&userdb, "%s\tuid=%d|gid=%d|home=%s|mail=%s|systempw=%s\n", a.Email, mail.uid, mail.gid, home, filepath.Join(home, "Maildir"), hash)
	}
	writeFile(t, filepath.Join(dir, "etc/courier/userdb"), []byte(userdb.String()), 0o600)
	// Courier does not create a missing Maildir (Debian's admins run
	// maildirmake); Dovecot, which serves the same ones, would.
	for _, a := range cfg.Accounts {
		md := filepath.Join(cfg.MailDir, a.Domain(), a.Local(), "Maildir")
		for _, d := range []string{"", "cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(md, d), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range []string{filepath.Join(cfg.MailDir, a.Domain()), filepath.Dir(md), md, filepath.Join(md, "cur"), filepath.Join(md, "new"), filepath.Join(md, "tmp")} {
			if err := os.Chown(d, mail.uid, mail.gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	courierUID := -1
	for _, line := range strings.Split(string(passwd), "\n") {
		if f := strings.Split(line, ":"); len(f) > 3 && f[0] == "courier" {
			courierUID, _ = strconv.Atoi(f[2])
		}
	}
	// The MTA's queue, owned by courier as courier-base's statoverrides
	// make it.
	// /var and /var/lib of the overlay take the modes of these.
	if err := os.MkdirAll(filepath.Join(dir, "var/lib/courier"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"msgq", "msgs", "tmp", "track", "filters", "allfilters"} {
		q := filepath.Join(dir, "var/lib/courier", d)
		if err := os.MkdirAll(q, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(q, courierUID, courierUID); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "var/lib/courier/tmp"), 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(dir, "var/lib/courier"), courierUID, courierUID); err != nil {
		t.Fatal(err)
	}
	// couriertls wants the key and the certificate chain in one file,
	// readable by the user courier: the login programs drop to it before
	// STARTTLS (courier-base's mkimapdcert chowns it so).
	for _, cert := range []Cert{CertGood, CertExpired} {
		key, err := os.ReadFile(cfg.Certs.KeyFile(cert))
		if err != nil {
			t.Fatal(err)
		}
		chain, err := os.ReadFile(cfg.Certs.CertFile(cert))
		if err != nil {
			t.Fatal(err)
		}
		pem := filepath.Join(dir, "etc/courier", string(cert)+".pem")
		writeFile(t, pem, append(key, chain...), 0o600)
		if err := os.Chown(pem, courierUID, -1); err != nil {
			t.Fatalf("courier: chown %s to the user courier (%d): %v", pem, courierUID, err)
		}
	}

	var lastErr error
	for attempt := range 3 {
		ports, err := freePorts(len(courierListeners))
		if err != nil {
			t.Fatal(err)
		}
		addrs := make([]string, len(courierListeners))
		script := []string{
			"set -e",
			// The shell is the PID namespace's init: it ends on TERM only
			// with a handler, and every daemon of the namespace with it.
			"trap 'exit 0' TERM INT",
			"mount -t overlay overlay -o lowerdir=" + filepath.Join(dir, "etc") + ":/etc,upperdir=" + filepath.Join(dir, "etc-upper") + ",workdir=" + filepath.Join(dir, "etc-work") + " /etc",
			"mount -t overlay overlay -o lowerdir=" + filepath.Join(dir, "usr") + ":" + strings.Join(usrs, ":") + ":/usr /usr",
			"mount -t overlay overlay -o lowerdir=" + filepath.Join(dir, "var") + ":/var,upperdir=" + filepath.Join(dir, "var-upper") + ",workdir=" + filepath.Join(dir, "var-work") + " /var",
			"mount --bind " + filepath.Join(dir, "run") + " /run",
			"makeuserdb",
			"makeacceptmailfor",
			"makehosteddomains",
			"makesmtpaccess",
			"makealiases",
			// gam_server is the one imapd's libgamin would start (and
			// leave running, in a session of its own); started here it
			// stays in the daemon's process group.
			"setpriv --reuid=mail --regid=mail --clear-groups /usr/libexec/gam_server --notimeout &",
			"/usr/lib/courier/courier-authlib/authdaemond &",
			// The MTA's scheduler, as courierctl.start runs it.
			"(set -a; . /etc/courier/courierd; cd /usr; exec /usr/lib/courier/courier/courierd) &",
		}
		for i, l := range courierListeners {
			addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]))
			script = append(script, "("+l.command(ports[i])+") &")
		}
		script = append(script, "wait")
		writeFile(t, filepath.Join(dir, "start.sh"), []byte(strings.Join(script, "\n")+"\n"), 0o755)
		logPath := filepath.Join(dir, fmt.Sprintf("courier-%d.log", attempt))
		// couriertcpd makes a process group of its own, out of reach of
		// the harness's signal to the daemon's group: a PID namespace
		// (its init the shell, killed with unshare) ends them all.
		p, err := startProcess("courier", logPath, true, "unshare", "--mount", "--propagation", "private", "--pid", "--kill-child",
			"/bin/sh", filepath.Join(dir, "start.sh"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = waitReady(ctx, p, addrs...)
		cancel()
		if err == nil {
			cleanupProcess(t, p)
			c.proc = p
			for i, l := range courierListeners {
				c.Addr[l.name] = addrs[i]
			}
			return c
		}
		p.stop()
		lastErr = fmt.Errorf("%w\n%s", err, p.logTail(20))
		if !p.logContains("in use") {
			break
		}
	}
	t.Fatalf("courier: %v", lastErr)
	return nil
}

// command is the shell command that runs the listener on port, as the
// package's start scripts (/usr/lib/courier/imapd, imapd-ssl, pop3d,
// pop3d-ssl) run it, with the configuration files' settings exported.
func (l courierListener) command(port int) string {
	if l.smtp {
		return l.esmtpdCommand(port)
	}
	conf := []string{"/etc/courier/imapd", "/etc/courier/imapd-ssl"}
	login := "/usr/lib/courier/courier/imaplogin /usr/bin/imapd Maildir"
	starttls := "IMAP_STARTTLS=YES"
	if l.pop3 {
		conf = []string{"/etc/courier/pop3d", "/etc/courier/pop3d-ssl"}
		login = "/usr/lib/courier/courier/courierpop3login /usr/lib/courier/courier/courierpop3d Maildir"
		starttls = "POP3_STARTTLS=YES"
	}
	var b strings.Builder
	b.WriteString("set -a; prefix=/usr; exec_prefix=/usr; sbindir=/usr/sbin; bindir=/usr/bin")
	for _, f := range conf {
		b.WriteString("; . " + f)
	}
	b.WriteString("; " + starttls)
	// No TLS session cache file (its default directory is the
	// package's /var/lib/courier) and no DH parameters file (ECDHE only).
	b.WriteString("; TLS_CACHEFILE=; TLS_DHPARAMS=; TLS_CERTFILE=/etc/courier/" + string(l.cert) + ".pem")
	for _, e := range l.env {
		b.WriteString("; " + e)
	}
	fmt.Fprintf(&b, "; exec /usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP $TCPDOPTS %d ", port)
	if l.implicit {
		b.WriteString("/usr/bin/couriertls -server -tcpd -user=courier ")
	}
	b.WriteString(login)
	return b.String()
}

// esmtpdCommand runs esmtpd as /usr/lib/courier/esmtpd runs it when
// invoked as esmtpd-msa, with AUTH offered after STARTTLS. BOFHCHECKDNS
// is off: it looks the sender's domain up in the system's DNS, where the
// test domain does not exist (a public domain would pass).
func (l courierListener) esmtpdCommand(port int) string {
	var b strings.Builder
	b.WriteString("set -a; prefix=/usr; exec_prefix=/usr; sbindir=/usr/sbin; sysconfdir=/etc/courier; . /etc/courier/esmtpd; . /etc/courier/esmtpd-msa")
	b.WriteString(`; ESMTPAUTH_TLS="LOGIN PLAIN"; BOFHCHECKDNS=0; TLS_DHPARAMS=; TLS_CERTFILE=/etc/courier/` + string(l.cert) + ".pem")
	for _, e := range l.env {
		b.WriteString("; " + e)
	}
	fmt.Fprintf(&b, "; cd /usr; exec /usr/sbin/couriertcpd -noidentlookup -user=$MAILUSER -group=$MAILGROUP -address=127.0.0.1 -maxprocs=$MAXDAEMONS -maxperc=$MAXPERC -maxperip=$MAXPERIP %d /usr/sbin/courieresmtpd", port)
	return b.String()
}
