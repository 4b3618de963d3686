package imapd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// curl runs the real client against the lab; the test skips without it.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed: skipping the real-client check")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*ioTimeout)
	defer cancel()
	args = append([]string{"--silent", "--show-error", "--max-time", "10"}, args...)
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestCurl(t *testing.T) {
	l := startLab(t)
	msg := message(bob, alice, "curl check", "Delivered over SMTP, read with curl.")
	l.deliver(alice, msg)
	l.user(alice).CreateMailbox("Archive")
	base := "imap://" + l.addr

	t.Run("list", func(t *testing.T) {
		for path, want := range map[string][]string{
			"/":      {`* LIST (\HasNoChildren) "/" INBOX`, `* LIST (\HasNoChildren) "/" "Archive"`},
			"/INBOX": {`* LIST (\HasNoChildren) "/" INBOX`},
		} {
			out := curl(t, base+path, "-u", alice+":"+alicePass)
			if got := strings.Split(strings.TrimSpace(out), "\r\n"); !slices.Equal(got, want) {
				t.Errorf("curl %s%s = %q, want %q", base, path, got, want)
			}
		}
	})
	t.Run("examine", func(t *testing.T) {
		out := curl(t, base+"/INBOX", "-u", alice+":"+alicePass, "-X", "EXAMINE INBOX")
		if !strings.Contains(out, "* 1 EXISTS") {
			t.Errorf("curl EXAMINE INBOX lacks the delivered message:\n%s", out)
		}
	})
	t.Run("fetch by UID", func(t *testing.T) {
		out := curl(t, base+"/INBOX;UID=1", "-u", alice+":"+alicePass)
		if out != msg {
			t.Errorf("curl %s/INBOX;UID=1 = %q, want %q", base, out, msg)
		}
	})
}

// Only one lab runs at a time: the cleanup checks for any server
// goroutine left.

func TestCurlImplicitTLS(t *testing.T) {
	l := startLab(t, withListener(lazyTLSListener), withConfig(func(c *Config) { c.AllowInsecureAuth = false }))
	msg := message(bob, alice, "curl check", "Read over imaps.")
	l.deliver(alice, msg)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, l.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	out := curl(t, "imaps://"+l.addr+"/INBOX;UID=1", "--cacert", ca, "-u", alice+":"+alicePass)
	if out != msg {
		t.Errorf("curl over imaps = %q, want %q", out, msg)
	}
}

func TestCurlSTARTTLS(t *testing.T) {
	l := startLab(t, withConfig(func(c *Config) { c.AllowInsecureAuth = false }))
	msg := message(bob, alice, "curl check", "Read after STARTTLS.")
	l.deliver(alice, msg)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, l.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	out := curl(t, "imap://"+l.addr+"/INBOX;UID=1", "--ssl-reqd", "--cacert", ca, "-u", alice+":"+alicePass)
	if out != msg {
		t.Errorf("curl with STARTTLS = %q, want %q", out, msg)
	}
}
