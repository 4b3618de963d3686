package lab_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/lab"
)

// TestLabLogMasksPipelinedCredentials is issue 12, defect 2 end to end:
// clients that send AUTH PLAIN with its response in one write (SMTP), or
// cut an IMAP password where the rest begins with "* ", must not put the
// password in lab.log.
func TestLabLogMasksPipelinedCredentials(t *testing.T) {
	dir := t.TempDir()
	l := startLab(t, lab.Options{Dir: dir})
	s := l.Settings()
	alice := s.Accounts[0]
	blob := base64.StdEncoding.EncodeToString([]byte("\x00" + alice.Username + "\x00" + alice.Password))

	session := func(service string, steps func(c *tls.Conn, expect func(prefix string))) {
		t.Helper()
		svc := s.Services[service]
		c, err := tls.Dial("tcp", addr(svc), &tls.Config{RootCAs: l.CertPool(), ServerName: svc.Host})
		if err != nil {
			t.Fatalf("dial %s: %v", service, err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		expect := func(prefix string) {
			t.Helper()
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("%s: waiting for %q: %v", service, prefix, err)
				}
				if strings.HasPrefix(line, prefix) {
					return
				}
			}
		}
		steps(c, expect)
	}
	session("submissions", func(c *tls.Conn, expect func(string)) {
		expect("220 ")
		c.Write([]byte("EHLO client\r\nAUTH PLAIN\r\n" + blob + "\r\n"))
		expect("235 ")
		c.Write([]byte("QUIT\r\n"))
		expect("221 ")
	})
	// The user name is an email address; quote the password with a "* "
	// in the cut.
	session("imaps", func(c *tls.Conn, expect func(string)) {
		expect("* OK")
		c.Write([]byte(`a1 LOGIN "` + alice.Username + `" "` + alice.Password[:4]))
		time.Sleep(20 * time.Millisecond) // let the server read the first part alone
		c.Write([]byte(`* x"` + "\r\n"))  // a wrong password: NO is fine
		expect("a1 ")
		c.Write([]byte("a2 LOGOUT\r\n"))
		expect("a2 ")
	})
	l.Close()
	data, err := os.ReadFile(filepath.Join(dir, "lab.log"))
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	if !strings.Contains(log, "AUTH PLAIN") || !strings.Contains(log, "a1 LOGIN") {
		t.Fatalf("lab.log lacks the sessions:\n%s", log)
	}
	for _, secret := range []string{alice.Password, blob, "* x"} {
		if strings.Contains(log, secret) {
			t.Errorf("lab.log shows %q:\n%s", secret, log)
		}
	}
}
