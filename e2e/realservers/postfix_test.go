//go:build e2e

package realservers

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestPostfixRetriesLostPortRace: freePorts releases the ports it found
// before master(8) binds them, and on a busy machine another process may
// take one meanwhile. master then exits 1 and says why only to syslog, so
// its log is empty. StartPostfix must see the taken port and retry with
// new ones (CI once failed with "postfix (attempt 1) exited before
// listening" and an empty postfix.log).
func TestPostfixRetriesLostPortRace(t *testing.T) {
	Require(t)
	dir := workDir(t, "race")
	certs, err := NewCertSet(dir, Domain, []string{MailHost})
	if err != nil {
		t.Fatal(err)
	}
	mailDir := filepath.Join(dir, "mail")
	if err := os.Mkdir(mailDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var held []net.Listener
	t.Cleanup(func() {
		for _, ln := range held {
			ln.Close()
		}
	})
	attempts := 0
	p := StartPostfix(t, PostfixConfig{Domain: Domain, Hostname: MailHost, Certs: certs, MailDir: mailDir,
		AuthSocket: filepath.Join(dir, "no-auth"),
		Listeners:  []SMTPListener{{Name: "relay"}, {Name: "other"}},
		portsChosen: func(attempt int, addrs map[string]string) {
			attempts = attempt + 1
			if attempt > 0 {
				return
			}
			ln, err := net.Listen("tcp", addrs["other"])
			if err != nil {
				t.Errorf("take %s: %v", addrs["other"], err)
				return
			}
			held = append(held, ln)
		}})
	if attempts != 2 {
		t.Errorf("started on attempt %d, want 2 (the first lost its port)", attempts)
	}
	for _, name := range []string{"relay", "other"} {
		c, err := net.Dial("tcp", p.Addr[name])
		if err != nil {
			t.Fatalf("%s listener: %v", name, err)
		}
		c.Close()
	}
}
