//go:build e2e

package diagnose

// End-to-end tests against real Dovecot and Postfix from the Debian
// packages (dovecot-imapd, dovecot-pop3d, postfix), started by the test on
// 127.0.0.1 with free ports. Run as root:
//
//	apt-get install dovecot-imapd dovecot-pop3d postfix
//	go test -tags e2e -run TestE2E ./diagnose
//
// The test skips when the binaries are missing or it is not root.

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/diagnose/internal/testpki"
	"github.com/maillab/maillab/rootcause"
)

type realServers struct {
	dir                        string
	ca                         *testpki.CA
	smtp, submission, smtps    int
	imaps, pop3s, imapsExpired int
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeLeaf(t *testing.T, dir, name string, leaf *testpki.Leaf) {
	t.Helper()
	writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", leaf.Cert.Raw)
	der, err := x509.MarshalPKCS8PrivateKey(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+".key"), "PRIVATE KEY", der)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if name == "postfix" {
		// Postfix reports errors on a terminal only; script(1) gives it one.
		cmd = exec.Command("script", "-qec", name+" "+strings.Join(args, " "), "/dev/null")
	}
	// A daemon's children inherit stdout; a pipe would never close.
	out, err := os.CreateTemp("", "maillab-e2e-out-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		data, _ := os.ReadFile(out.Name())
		t.Fatalf("%s %v: %v\n%s", name, args, err, data)
	}
}

func startRealServers(t *testing.T) *realServers {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("e2e: needs root to run Dovecot and Postfix")
	}
	for _, bin := range []string{"dovecot", "doveadm", "postfix", "script"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("e2e: %s not installed", bin)
		}
	}
	dir, err := os.MkdirTemp("", "maillab-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() {
		if os.Getenv("MAILLAB_E2E_KEEP") == "" {
			os.RemoveAll(dir)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, log := range []string{"dovecot/dovecot.log", "postfix/maillog"} {
				data, _ := os.ReadFile(filepath.Join(dir, log))
				t.Logf("%s:\n%s", log, data)
			}
		}
	})
	rs := &realServers{dir: dir, ca: testpki.NewRoot(t, "maillab e2e CA", testpki.Opts{NotBefore: time.Now().Add(-72 * time.Hour)})}
	names := []string{"mail.example.test", "127.0.0.1", "127.0.0.2"}
	writeLeaf(t, dir, "good", rs.ca.Leaf(t, testpki.Opts{Names: names}))
	writeLeaf(t, dir, "expired", rs.ca.Leaf(t, testpki.Opts{Names: names, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}))
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", rs.ca.Cert.Raw)
	rs.imaps, rs.pop3s = freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	rs.imapsExpired = freePort(t, "127.0.0.2")
	rs.smtp, rs.submission, rs.smtps = freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")

	// Dovecot: IMAPS and POP3S, a second IMAPS on 127.0.0.2 with an
	// expired certificate, and an auth socket for Postfix.
	dv := filepath.Join(dir, "dovecot")
	for _, d := range []string{"run", "state", "home"} {
		os.MkdirAll(filepath.Join(dv, d), 0o755)
	}
	os.Chown(filepath.Join(dv, "home"), 65534, 65534)
	os.WriteFile(filepath.Join(dv, "users"), []byte(testUser+":{PLAIN}"+testPass+"::::::\n"), 0o644)
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
protocols = imap pop3
listen = 127.0.0.1, 127.0.0.2
ssl = required
ssl_cert = <%[2]s/good.pem
ssl_key = <%[2]s/good.key
local 127.0.0.2 {
  ssl_cert = <%[2]s/expired.pem
  ssl_key = <%[2]s/expired.key
}
auth_mechanisms = plain login
log_path = %[1]s/dovecot.log
mail_location = maildir:%[1]s/home/%%n/Maildir
mail_uid = 65534
mail_gid = 65534
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/users
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=%[1]s/home/%%n
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[3]d
    ssl = yes
  }
  inet_listener imaps_expired {
    address = 127.0.0.2
    port = %[4]d
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = %[5]d
    ssl = yes
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
`, dv, dir, rs.imaps, rs.imapsExpired, rs.pop3s)
	dvConf := filepath.Join(dv, "dovecot.conf")
	os.WriteFile(dvConf, []byte(conf), 0o644)
	run(t, "dovecot", "-c", dvConf)
	t.Cleanup(func() { exec.Command("doveadm", "-c", dvConf, "stop").Run() })

	// Postfix: port 25-style relay (STARTTLS offered, no AUTH before
	// TLS), submission with STARTTLS, and implicit-TLS submissions.
	pf := filepath.Join(dir, "postfix")
	for _, d := range []string{"conf", "queue", "data"} {
		os.MkdirAll(filepath.Join(pf, d), 0o755)
	}
	os.Chown(filepath.Join(pf, "data"), postfixUID(t), -1)
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
myhostname = mail.example.test
mydomain = example.test
myorigin = example.test
mydestination = example.test, mail.example.test
local_recipient_maps =
local_transport = discard:
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 192.0.2.0/24
smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
smtpd_tls_cert_file = %[2]s/good.pem
smtpd_tls_key_file = %[2]s/good.key
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = %[3]s/run/auth-postfix
smtpd_sasl_auth_enable = yes
smtpd_tls_auth_only = yes
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated reject_unauth_destination
maillog_file_prefixes = %[2]s
maillog_file = %[1]s/maillog
`, pf, dir, dv)
	os.WriteFile(filepath.Join(pf, "conf", "main.cf"), []byte(mainCF), 0o644)
	master, err := os.ReadFile("/etc/postfix/master.cf")
	if err != nil {
		t.Skipf("e2e: %v", err)
	}
	var out []string
	for _, l := range strings.Split(string(master), "\n") {
		f := strings.Fields(l)
		if len(f) >= 8 && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, " ") {
			if f[0] == "smtp" && f[1] == "inet" {
				out = append(out,
					fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd", rs.smtp),
					fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd", rs.submission),
					fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd", rs.smtps),
					"  -o smtpd_tls_wrappermode=yes")
				continue
			}
			f[4] = "n" // no chroot
			l = strings.Join(f, " ")
		}
		out = append(out, l)
	}
	os.WriteFile(filepath.Join(pf, "conf", "master.cf"), []byte(strings.Join(out, "\n")), 0o644)
	run(t, "postfix", "-c", filepath.Join(pf, "conf"), "start")
	t.Cleanup(func() {
		exec.Command("script", "-qec", "postfix -c "+filepath.Join(pf, "conf")+" stop", "/dev/null").Run()
	})
	for _, p := range []int{rs.smtp, rs.submission, rs.smtps} {
		waitPort(t, "127.0.0.1", p)
	}
	waitPort(t, "127.0.0.1", rs.imaps)
	waitPort(t, "127.0.0.2", rs.imapsExpired)
	return rs
}

func postfixUID(t *testing.T) int {
	out, err := exec.Command("id", "-u", "postfix").Output()
	if err != nil {
		t.Skipf("e2e: no postfix user: %v", err)
	}
	var uid int
	fmt.Sscan(string(out), &uid)
	return uid
}

func waitPort(t *testing.T, ip string, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", dialAddr(ip, port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("e2e: nothing listens on %s:%d", ip, port)
}

func TestE2E(t *testing.T) {
	rs := startRealServers(t)
	base := func(services ...Service) Config {
		return Config{
			Email: testUser, Username: testUser, Password: testPass,
			Services: services, CAFile: filepath.Join(rs.dir, "ca.pem"),
			Timeout: 5 * time.Second,
		}
	}
	at := func(name, ip string, port int, sec string) Service {
		return Service{Name: name, Host: ip, Port: port, Security: sec}
	}
	tests := []struct {
		name string
		cfg  func() Config
		want rootcause.Code
	}{
		{"good setup", func() Config {
			return base(at("submission", "127.0.0.1", rs.submission, "starttls"), at("submissions", "127.0.0.1", rs.smtps, "tls"),
				at("imaps", "127.0.0.1", rs.imaps, "tls"), at("pop3s", "127.0.0.1", rs.pop3s, "tls"))
		}, rootcause.Healthy},
		{"wrong password", func() Config {
			c := base(at("imaps", "127.0.0.1", rs.imaps, "tls"), at("pop3s", "127.0.0.1", rs.pop3s, "tls"))
			c.Password = "changed-on-the-web"
			return c
		}, rootcause.AuthFailed},
		{"expired certificate", func() Config {
			return base(at("imaps", "127.0.0.2", rs.imapsExpired, "tls"))
		}, rootcause.TLSCertExpired},
		{"STARTTLS required before AUTH", func() Config {
			return base(at("submission", "127.0.0.1", rs.submission, "none"))
		}, rootcause.AuthRequiresTLS},
		{"relay denied", func() Config {
			c := base(at("smtp", "127.0.0.1", rs.smtp, "none"))
			c.Username, c.Password, c.SendTo = "", "", "bob@elsewhere.example"
			return c
		}, rootcause.SMTPRelayDenied},
		{"plaintext on the implicit-TLS port", func() Config {
			return base(at("imap", "127.0.0.1", rs.imaps, "starttls"))
		}, rootcause.PortSecurityMismatchPlainOnTLS},
		{"TLS on the plaintext port", func() Config {
			return base(at("submissions", "127.0.0.1", rs.submission, "tls"))
		}, rootcause.PortSecurityMismatchTLSOnPlain},
		{"POP3 pointed at the IMAP port", func() Config {
			return base(at("pop3s", "127.0.0.1", rs.imaps, "tls"))
		}, rootcause.WrongProtocol},
		{"client restricted to CRAM-MD5", func() Config {
			c := base(at("submission", "127.0.0.1", rs.submission, "starttls"))
			c.AuthMechs = []string{"CRAM-MD5"}
			return c
		}, rootcause.AuthMechUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := diagnoseT(t, tt.cfg())
			wantRoot(t, tt.name, r, tt.want)
			var b strings.Builder
			r.WriteText(&b)
			t.Log("\n" + b.String())
		})
	}
}
